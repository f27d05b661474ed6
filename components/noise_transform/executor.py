"""Executor of NoiseTransform: a Beam pipeline adding seeded noise to every split.

A train split of whole images of any size (`data.patch_size`:
DatasetInfo.whole_train_images) is noised image by image at its own size and
written with each image's `height` and `width`, for the Trainer to crop; its
noise is keyed by the whole image, as any example's is by its pixels.
"""

import dataclasses
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io import fileio
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components.common import dataset_info as dataset_info_lib
from components.common import example_bytes
from components.common import names
from components.common import progress
from components.common import tfrecord_sink
from components.common import noise

# Artifact keys.
EXAMPLES_KEY = 'examples'
NOISY_EXAMPLES_KEY = names.NOISY_EXAMPLES_KEY

# Parameter keys: the NoiseSpec as JSON, and the settings that may be set
# per run (Kubeflow's RuntimeParameters), applied onto it when present.
SPEC_KEY = 'noise_spec'
PER_RUN_FIELDS = ('stddev', 'amount', 'seed')

# Features read (written by TfdsExampleGen) and written.
IMAGE_FEATURE = names.IMAGE
LABEL_FEATURE = names.LABEL
CLEAN_FEATURE = names.CLEAN
NOISY_FEATURE = names.NOISY
NOISE_LEVEL_FEATURE = names.NOISE_LEVEL
HEIGHT_FEATURE = names.HEIGHT
WIDTH_FEATURE = names.WIDTH

OUTPUT_FILE_PREFIX = 'noisy_examples'
# Records per batch that is parsed, noised and serialized at once.
READ_BATCH_SIZE = 1024


class BadExampleError(ValueError):
  """An input example cannot be noised (wrong shape, out-of-range pixels)."""


def spec_from_exec_properties(exec_properties: Dict[str, Any]) -> noise.NoiseSpec:
  """The NoiseSpec the component's parameters describe, per-run settings
  applied (validated).

  Raises:
    InvalidNoiseSpec: a setting, per-run or not, is out of range.
  """
  spec = noise.NoiseSpec.from_json(exec_properties[SPEC_KEY])
  per_run = {name: exec_properties[name] for name in PER_RUN_FIELDS
             if exec_properties.get(name) is not None}
  return dataclasses.replace(spec, **per_run)


def exec_properties_from_spec(spec: noise.NoiseSpec) -> Dict[str, Any]:
  """The component's parameters for a NoiseSpec (spec_from_exec_properties's
  inverse), for callers that run the executor directly."""
  return {SPEC_KEY: spec.to_json()}


def parse_example(serialized: bytes, split: str,
                  info: dataset_info_lib.DatasetInfo
                  ) -> Tuple[np.ndarray, Optional[int]]:
  """Reads (pixels uint8 [pixels], label) from one TfdsExampleGen tf.Example
  (the slow path, which names what is wrong with a bad example); the label
  is None for a dataset without labels."""
  features = tf.train.Example.FromString(serialized).features.feature
  pixels = np.asarray(features[IMAGE_FEATURE].int64_list.value, dtype=np.int64)
  labels = features[LABEL_FEATURE].int64_list.value
  expected_labels = 1 if info.labeled else 0
  if pixels.shape != (info.pixels,) or len(labels) != expected_labels:
    raise BadExampleError(
        f'split {split!r}: example with {pixels.size} pixels and '
        f'{len(labels)} labels; expected {info.pixels} and {expected_labels} '
        f'(dataset {info.name!r}, images {info.image_shape})')
  _check_pixel_range(pixels, split)
  return pixels.astype(np.uint8), int(labels[0]) if labels else None


def _check_pixel_range(pixels: np.ndarray, split: str) -> None:
  if pixels.min() < 0 or pixels.max() > 255:
    raise BadExampleError(
        f'split {split!r}: pixel values {pixels.min()}..{pixels.max()} '
        'outside 0..255')


def _parse_spec(info: dataset_info_lib.DatasetInfo) -> Dict[str, Any]:
  """What parse_batch reads of a TfdsExampleGen example of the dataset."""
  spec = {IMAGE_FEATURE: tf.io.FixedLenFeature([info.pixels], tf.int64)}
  if info.labeled:
    spec[LABEL_FEATURE] = tf.io.FixedLenFeature([1], tf.int64)
  return spec


def parse_batch(serialized: List[bytes], split: str,
                info: dataset_info_lib.DatasetInfo
                ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """Reads (pixels uint8 [batch, pixels], labels int64 [batch]) from a batch
  of TfdsExampleGen tf.Examples at once (TensorFlow's vectorised parser);
  labels None for a dataset without labels.

  Raises:
    BadExampleError: an example has the wrong shape or out-of-range pixels.
  """
  try:
    parsed = tf.io.parse_example(serialized, _parse_spec(info))
  except tf.errors.InvalidArgumentError:
    for record in serialized:  # Finds and names the bad example.
      parse_example(record, split, info)
    raise
  pixels = parsed[IMAGE_FEATURE].numpy()
  _check_pixel_range(pixels, split)
  labels = parsed[LABEL_FEATURE].numpy()[:, 0] if info.labeled else None
  return pixels.astype(np.uint8), labels


def parse_whole_batch(serialized: List[bytes], split: str,
                      info: dataset_info_lib.DatasetInfo
                      ) -> Tuple[List[np.ndarray], np.ndarray, Optional[np.ndarray]]:
  """Reads a batch of whole images of any size (a train split of
  `data.patch_size`): (pixels uint8 [height * width * channels] each,
  sizes int64 [batch, 2] (height, width), labels int64 [batch] or None).

  Raises:
    BadExampleError: an example lacks its size, its pixels do not match it,
      it is smaller than the dataset's patch, or its pixels are out of range.
  """
  spec = {IMAGE_FEATURE: tf.io.RaggedFeature(tf.int64),
          HEIGHT_FEATURE: tf.io.FixedLenFeature([1], tf.int64),
          WIDTH_FEATURE: tf.io.FixedLenFeature([1], tf.int64)}
  if info.labeled:
    spec[LABEL_FEATURE] = tf.io.FixedLenFeature([1], tf.int64)
  try:
    parsed = tf.io.parse_example(serialized, spec)
  except tf.errors.InvalidArgumentError:
    raise BadExampleError(
        f'split {split!r}: an example lacks its {HEIGHT_FEATURE!r} and '
        f'{WIDTH_FEATURE!r} (or its label); whole images of any size need '
        f'them (dataset {info.name!r})') from None
  sizes = np.concatenate([parsed[HEIGHT_FEATURE].numpy(),
                          parsed[WIDTH_FEATURE].numpy()], axis=1)
  channels = info.image_shape[2]
  images = []
  for flat, (height, width) in zip(parsed[IMAGE_FEATURE].numpy(), sizes):
    if (flat.size != height * width * channels or height < info.image_shape[0]
        or width < info.image_shape[1]):
      raise BadExampleError(
          f'split {split!r}: example of {flat.size} pixels for a '
          f'{height}x{width}x{channels} image; expected that many, of at least '
          f'{info.image_shape[0]}x{info.image_shape[1]} (dataset {info.name!r})')
    _check_pixel_range(flat, split)
    images.append(flat.astype(np.uint8))
  labels = parsed[LABEL_FEATURE].numpy()[:, 0] if info.labeled else None
  return images, sizes, labels


def noise_whole_images(images: List[np.ndarray], labels: Optional[np.ndarray],
                       spec: noise.NoiseSpec
                       ) -> Tuple[List[np.ndarray], List[np.ndarray], np.ndarray]:
  """(clean, noisy float32 each at its own length, levels float32 [batch])
  of whole images of any size: each keyed and noised alone, exactly as a
  batch of one (the noise of a pixel depends on its key and index only)."""
  clean, noisy, levels = [], [], []
  for index, pixels in enumerate(images):
    label = None if labels is None else labels[index:index + 1]
    image_clean = pixels[np.newaxis].astype(np.float32) / 255.0
    image_noisy, level = noise.add_noise(
        image_clean, noise.example_keys(pixels[np.newaxis], label), spec)
    clean.append(image_clean[0])
    noisy.append(image_noisy[0])
    levels.append(level[0])
  return clean, noisy, np.array(levels, dtype=np.float32)


def serialize_examples(clean, noisy, labels: Optional[np.ndarray],
                       levels: np.ndarray,
                       sizes: Optional[np.ndarray] = None) -> List[bytes]:
  """The output tf.Examples of a batch (clean, noisy, label, noise level).

  Args:
    clean, noisy: float32 [batch, pixels], or (whole images of any size) a
      list of each image's float32 pixels.
    labels: integers [batch]; None: the examples get no label feature (a
      dataset without labels).
    levels: float32 [batch].
    sizes: int64 [batch, 2], each image's (height, width), written as its
      `height` and `width`; None: none written (images of one shape).
  """
  columns = {CLEAN_FEATURE: clean, NOISY_FEATURE: noisy,
             NOISE_LEVEL_FEATURE: levels}
  if labels is not None:
    columns[LABEL_FEATURE] = labels
  if sizes is not None:
    columns[HEIGHT_FEATURE], columns[WIDTH_FEATURE] = sizes[:, 0], sizes[:, 1]
  return example_bytes.serialize(columns)


class _ReadRecordBatches(beam.DoFn):
  """Reads a TFRecord file (gzipped when its name ends in .gz, as TFX's
  ExampleGen writes them) in lists of up to `batch_size` records.

  tf.data reads and checks the records in C++, through TensorFlow's
  filesystems (local, gs://, ...), instead of `beam.io.ReadFromTFRecord`'s
  Python reader and a Beam element per record until `BatchElements`. A gzip file cannot be split, so a file is
  the unit of parallelism either way.
  """

  def __init__(self, batch_size: int):
    self._batch_size = batch_size

  def process(self, path: str) -> Iterable[List[bytes]]:
    dataset = tf.data.TFRecordDataset(
        path, compression_type='GZIP' if path.endswith('.gz') else '')
    for batch in dataset.batch(self._batch_size).as_numpy_iterator():
      yield batch.tolist()


class _NoiseBatchDoFn(beam.DoFn):
  """Parses, noises and serializes a batch of examples with array operations."""

  def __init__(self, spec: noise.NoiseSpec, split: str,
               info: dataset_info_lib.DatasetInfo):
    self._spec = spec
    self._split = split
    self._info = info

  def process(self, batch: List[bytes]) -> Iterable[bytes]:
    """Yields the batch's noisy examples as one block of framed TFRecords."""
    if self._split == 'train' and self._info.whole_train_images:
      images, sizes, labels = parse_whole_batch(batch, self._split, self._info)
      clean, noisy, levels = noise_whole_images(images, labels, self._spec)
      yield tfrecord_sink.frame_records(
          serialize_examples(clean, noisy, labels, levels, sizes))
      return
    images, labels = parse_batch(batch, self._split, self._info)
    clean = images.astype(np.float32) / 255.0
    noisy, levels = noise.add_noise(clean, noise.example_keys(images, labels),
                                    self._spec)
    yield tfrecord_sink.frame_records(serialize_examples(clean, noisy, labels, levels))


@beam.ptransform_fn
def NoiseSplit(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, input_uri: str, output_uri: str, split: str,
    spec: noise.NoiseSpec, info: dataset_info_lib.DatasetInfo,
    total: Optional[int] = None) -> beam.pvalue.PDone:
  """Reads one split's examples of the dataset `info` describes, noises them
  in batches, writes them (`total`: the number expected, for the progress
  bar's ETA)."""
  return (pipeline
          | 'Match' >> fileio.MatchFiles(os.path.join(input_uri, '*'))
          | 'Paths' >> beam.Map(lambda metadata: metadata.path)
          # Breaks fusion, so that a runner can read the files in parallel.
          | 'Spread' >> beam.Reshuffle()
          | 'Read' >> beam.ParDo(_ReadRecordBatches(READ_BATCH_SIZE))
          | 'Progress' >> beam.ParDo(progress.CountProgress(
              f'noise {split}', total, count=len))
          | 'Noise' >> beam.ParDo(_NoiseBatchDoFn(spec, split, info))
          | 'Write' >> tfrecord_sink.WriteFramedTFRecords(
              os.path.join(output_uri, OUTPUT_FILE_PREFIX)))


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes, for every split, the clean and a noisy version of each image."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    spec = spec_from_exec_properties(exec_properties)
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    noisy_examples = artifact_utils.get_single_instance(
        output_dict[NOISY_EXAMPLES_KEY])
    info = dataset_info_lib.recorded(examples)
    splits = artifact_utils.decode_split_names(examples.split_names)
    noisy_examples.split_names = artifact_utils.encode_split_names(splits)
    sizes = progress.split_sizes(examples)
    with self._make_beam_pipeline() as pipeline:
      for split in splits:
        _ = pipeline | f'NoiseSplit[{split}]' >> NoiseSplit(  # pylint: disable=no-value-for-parameter
            artifact_utils.get_split_uri([examples], split),
            artifact_utils.get_split_uri([noisy_examples], split), split, spec,
            info, sizes.get(split))
    if sizes:
      progress.record_split_sizes(noisy_examples, sizes)
    noise.record_spec(noisy_examples, spec)
    dataset_info_lib.copy(examples, noisy_examples)
    if examples.has_custom_property(names.SKIPPED_IMAGES_PROPERTY):
      noisy_examples.set_int_custom_property(
          names.SKIPPED_IMAGES_PROPERTY,
          examples.get_int_custom_property(names.SKIPPED_IMAGES_PROPERTY))
    examples_utils.set_payload_format(
        noisy_examples, examples_utils.get_payload_format(examples))
    examples_utils.set_file_format(noisy_examples, 'tfrecords_gzip')
