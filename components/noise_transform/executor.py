"""Executor of NoiseTransform: a Beam pipeline adding seeded noise to every split."""

import os
from typing import Any, Dict, Iterable, List, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components import features
from components.noise_transform import noise

# Artifact keys.
EXAMPLES_KEY = 'examples'
NOISY_EXAMPLES_KEY = 'noisy_examples'

# Parameter keys.
KIND_KEY = 'kind'
STDDEV_KEY = 'stddev'
MIN_STDDEV_KEY = 'min_stddev'
MAX_STDDEV_KEY = 'max_stddev'
AMOUNT_KEY = 'amount'
CLIP_KEY = 'clip'
SEED_KEY = 'seed'

# Features read (written by TfdsExampleGen) and written.
IMAGE_FEATURE = features.IMAGE
LABEL_FEATURE = features.LABEL
CLEAN_FEATURE = features.CLEAN
NOISY_FEATURE = features.NOISY
NOISE_LEVEL_FEATURE = features.NOISE_LEVEL

OUTPUT_FILE_PREFIX = 'noisy_examples'


class BadExampleError(ValueError):
  """An input example cannot be noised (wrong shape, out-of-range pixels)."""


def spec_from_exec_properties(exec_properties: Dict[str, Any]) -> noise.NoiseSpec:
  """The NoiseSpec the component's parameters describe (validated)."""
  return noise.NoiseSpec(
      kind=exec_properties[KIND_KEY],
      stddev=float(exec_properties[STDDEV_KEY]),
      min_stddev=float(exec_properties[MIN_STDDEV_KEY]),
      max_stddev=float(exec_properties[MAX_STDDEV_KEY]),
      amount=float(exec_properties[AMOUNT_KEY]),
      clip=bool(exec_properties[CLIP_KEY]),
      seed=int(exec_properties[SEED_KEY]))


def exec_properties_from_spec(spec: noise.NoiseSpec) -> Dict[str, Any]:
  """The component's parameters for a NoiseSpec (spec_from_exec_properties's
  inverse), for callers that run the executor directly."""
  return {KIND_KEY: spec.kind, STDDEV_KEY: spec.stddev,
          MIN_STDDEV_KEY: spec.min_stddev, MAX_STDDEV_KEY: spec.max_stddev,
          AMOUNT_KEY: spec.amount, CLIP_KEY: int(spec.clip), SEED_KEY: spec.seed}


def parse_example(serialized: bytes, split: str) -> Tuple[np.ndarray, int]:
  """Reads (pixels uint8 [784], label) from a TfdsExampleGen tf.Example."""
  features = tf.train.Example.FromString(serialized).features.feature
  pixels = np.asarray(features[IMAGE_FEATURE].int64_list.value, dtype=np.int64)
  labels = features[LABEL_FEATURE].int64_list.value
  if pixels.shape != (noise.PIXELS,) or len(labels) != 1:
    raise BadExampleError(
        f'split {split!r}: example with {pixels.size} pixels and '
        f'{len(labels)} labels; expected {noise.PIXELS} and 1')
  if pixels.min() < 0 or pixels.max() > 255:
    raise BadExampleError(
        f'split {split!r}: pixel values {pixels.min()}..{pixels.max()} '
        'outside 0..255')
  return pixels.astype(np.uint8), int(labels[0])


class _NoiseBatchDoFn(beam.DoFn):
  """Noises a batch of (pixels, label) with numpy; emits serialized examples."""

  def __init__(self, spec: noise.NoiseSpec):
    self._spec = spec

  def process(self, batch: List[Tuple[np.ndarray, int]]) -> Iterable[bytes]:
    images = np.stack([pixels for pixels, _ in batch])
    labels = np.array([label for _, label in batch], dtype=np.int64)
    clean = images.astype(np.float32) / 255.0
    noisy, levels = noise.add_noise(clean, noise.example_keys(images, labels),
                                    self._spec)
    for index in range(len(batch)):
      yield tf.train.Example(features=tf.train.Features(feature={
          CLEAN_FEATURE: tf.train.Feature(
              float_list=tf.train.FloatList(value=clean[index])),
          NOISY_FEATURE: tf.train.Feature(
              float_list=tf.train.FloatList(value=noisy[index])),
          LABEL_FEATURE: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[labels[index]])),
          NOISE_LEVEL_FEATURE: tf.train.Feature(
              float_list=tf.train.FloatList(value=[levels[index]])),
      })).SerializeToString(deterministic=True)


@beam.ptransform_fn
def NoiseSplit(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, input_uri: str, output_uri: str, split: str,
    spec: noise.NoiseSpec) -> beam.pvalue.PDone:
  """Reads one split's examples, noises them in batches, writes them."""
  return (pipeline
          | 'Read' >> beam.io.ReadFromTFRecord(
              os.path.join(input_uri, '*'),
              compression_type=beam.io.filesystem.CompressionTypes.AUTO)
          | 'Parse' >> beam.Map(parse_example, split=split)
          | 'Batch' >> beam.BatchElements(min_batch_size=32, max_batch_size=1024)
          | 'Noise' >> beam.ParDo(_NoiseBatchDoFn(spec))
          | 'Write' >> beam.io.WriteToTFRecord(
              os.path.join(output_uri, OUTPUT_FILE_PREFIX),
              file_name_suffix='.gz',
              compression_type=beam.io.filesystem.CompressionTypes.GZIP))


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes, for every split, the clean and a noisy version of each image."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    spec = spec_from_exec_properties(exec_properties)
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    noisy_examples = artifact_utils.get_single_instance(
        output_dict[NOISY_EXAMPLES_KEY])
    splits = artifact_utils.decode_split_names(examples.split_names)
    noisy_examples.split_names = artifact_utils.encode_split_names(splits)
    with self._make_beam_pipeline() as pipeline:
      for split in splits:
        _ = pipeline | f'NoiseSplit[{split}]' >> NoiseSplit(  # pylint: disable=no-value-for-parameter
            artifact_utils.get_split_uri([examples], split),
            artifact_utils.get_split_uri([noisy_examples], split), split, spec)
    examples_utils.set_payload_format(
        noisy_examples, examples_utils.get_payload_format(examples))
    examples_utils.set_file_format(noisy_examples, 'tfrecords_gzip')
