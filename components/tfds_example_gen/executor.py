"""Executor of TfdsExampleGen: TFDS-prepared MNIST to tf.Examples with Beam."""

import hashlib
import os
import re
import sys
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional

from absl import logging
import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import naming as tfds_naming
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import dataset_info
from components import example_bytes
from components import features
from components import progress
from components import tfrecord_sink
from components.tfds_example_gen import mnist_source

# Feature names of the emitted tf.Examples (also those of schemas/).
IMAGE_FEATURE = features.IMAGE
LABEL_FEATURE = features.LABEL

# Execution-property keys (see component.TfdsExampleGenSpec).
SOURCE_KEY = 'source'
TFDS_DATA_DIR_KEY = 'tfds_data_dir'

# TFDS split specs this executor accepts: `train`, `train[:N]`, `train[-N:]`.
_SPLIT_SPEC = re.compile(r'^(?P<split>[a-z]+)(\[(?P<start>-?\d*):(?P<stop>-?\d*)\])?$')


class SplitPlanError(ValueError):
  """The requested splits do not fit the prepared dataset."""


def _split_range(spec: str, lengths: Mapping[str, int]):
  """Returns (split, first, stop) of a TFDS split spec, stop exclusive."""
  match = _SPLIT_SPEC.match(spec)
  if not match or match['split'] not in lengths:
    raise SplitPlanError(
        f'split spec {spec!r} is not <split>[start:stop] over one of '
        f'{sorted(lengths)}')
  length = lengths[match['split']]
  start = int(match['start']) if match['start'] else 0
  stop = int(match['stop']) if match['stop'] else length
  start, stop = (start + length if start < 0 else start,
                 stop + length if stop < 0 else stop)
  if not 0 <= start < stop <= length:
    raise SplitPlanError(
        f'split spec {spec!r} asks for images {start}..{stop - 1} but the '
        f'source\'s {match["split"]!r} split holds {length} images')
  return match['split'], start, stop


def check_split_plan(input_config: example_gen_pb2.Input,
                     lengths: Mapping[str, int]) -> Dict[str, int]:
  """Checks every output split fits its source split, without overlaps.

  Args:
    input_config: The component's input config (TFDS split specs).
    lengths: Number of images of each source split ('train', 'test').

  Returns:
    The number of images of each output split.

  Raises:
    SplitPlanError: a split asks for more images than exist, or two output
      splits share images.
  """
  sizes = {}
  taken = []
  for split in input_config.splits:
    source, start, stop = _split_range(split.pattern, lengths)
    for other_name, other_source, other_start, other_stop in taken:
      if source == other_source and start < other_stop and other_start < stop:
        raise SplitPlanError(
            f'splits {other_name!r} ({other_source}[{other_start}:{other_stop}]) '
            f'and {split.name!r} ({source}[{start}:{stop}]) overlap: the '
            f'source\'s {source!r} split holds only {lengths[source]} images')
    taken.append((split.name, source, start, stop))
    sizes[split.name] = stop - start
  return sizes


def to_example(features: Mapping[str, np.ndarray]) -> tf.train.Example:
  """Converts one TFDS MNIST record (numpy) to a tf.Example."""
  image = np.asarray(features[IMAGE_FEATURE])
  if image.shape != mnist_source.tfds_mnist.MNIST_IMAGE_SHAPE:
    raise ValueError(f'MNIST image of shape {image.shape}, expected '
                     f'{mnist_source.tfds_mnist.MNIST_IMAGE_SHAPE}')
  return tf.train.Example(features=tf.train.Features(feature={
      IMAGE_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(
          value=image.reshape(-1).astype(np.int64))),
      LABEL_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(
          value=[int(features[LABEL_FEATURE])])),
  }))


def serialize_examples(images: np.ndarray, labels: np.ndarray) -> List[bytes]:
  """The tf.Examples `to_example` makes of many images, serialized at once
  (components/example_bytes; ~35x faster than one proto per image here:
  bench/libraries.py).

  Args:
    images: uint8 [count, 28, 28, 1].
    labels: integers [count].
  """
  images = np.asarray(images)
  if images.shape[1:] != mnist_source.tfds_mnist.MNIST_IMAGE_SHAPE:
    raise ValueError(f'MNIST images of shape {images.shape[1:]}, expected '
                     f'{mnist_source.tfds_mnist.MNIST_IMAGE_SHAPE}')
  return example_bytes.serialize({IMAGE_FEATURE: images.reshape(len(images), -1),
                                  LABEL_FEATURE: np.asarray(labels)})


def _split_lengths(builder: tfds.core.DatasetBuilder) -> Dict[str, int]:
  """Number of images of each split of a prepared TFDS dataset."""
  return {name: info.num_examples for name, info in builder.info.splits.items()}


# Images per tf.data batch read from TFDS: one Beam element each.
READ_BATCH_SIZE = 1024
# What the stock ExampleGen names its files (`write_split.WriteSplit`):
# <split dir>/data_tfrecord-SSSSS-of-NNNNN.gz.
OUTPUT_FILE_PREFIX = write_split.DEFAULT_TF_RECORD_FILE_NAME


class _ReadTfdsBatches(beam.DoFn):
  """Reads one TFDS file instruction as lists of serialized tf.Examples.

  What `tfds.beam.ReadFromTFDS` does per file instruction (the same
  `<split>[<shard>shard]` read, skip and take: tensorflow_datasets/core/
  beam_utils.py), but in tf.data batches: ReadFromTFDS pulls one example per
  iterator `next()` (~290 us each here, eager) and makes a Beam element of
  each, ~32 s of the 60,000 training images' 42 s. Serialized a batch at a
  time (`serialize_examples`).
  """

  def __init__(self, builder: tfds.core.DatasetBuilder, batch_size: int):
    self._builder = builder
    self._batch_size = batch_size

  def process(self, file_instruction) -> Iterable[List[bytes]]:
    file_info = tfds_naming.FilenameInfo.from_str(file_instruction.filename)
    dataset = self._builder.as_dataset(
        split=f'{file_info.split}[{file_info.shard_index}shard]',
        shuffle_files=False)
    if file_instruction.skip > 0:
      dataset = dataset.skip(file_instruction.skip)
    if not file_instruction.takes_all:
      dataset = dataset.take(file_instruction.take)
    for batch in dataset.batch(self._batch_size).as_numpy_iterator():
      yield serialize_examples(batch[IMAGE_FEATURE], batch[LABEL_FEATURE])


@beam.ptransform_fn
def _WriteTfdsSplit(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, builder: tfds.core.DatasetBuilder,
    split_pattern: str, output_uri: str,
    total: Optional[int]) -> beam.pvalue.PDone:
  """Writes one TFDS split spec as gzipped TFRecord files of tf.Examples,
  reading the spec's TFDS shards in parallel (`total`: the number expected,
  for the progress bar's ETA)."""
  return (pipeline
          | 'FileInstructions' >> beam.Create(
              builder.info.splits[split_pattern].file_instructions)
          # Breaks fusion, so that a runner can read the shards in parallel.
          | 'Spread' >> beam.Reshuffle()
          | 'Read' >> beam.ParDo(_ReadTfdsBatches(builder, READ_BATCH_SIZE))
          | 'Progress' >> beam.ParDo(progress.CountProgress(
              f'ingest {split_pattern}', total, count=len))
          | 'Frame' >> beam.Map(tfrecord_sink.frame_records)
          | 'Write' >> tfrecord_sink.WriteFramedTFRecords(
              os.path.join(output_uri, OUTPUT_FILE_PREFIX)))


def _input_config(exec_properties: Mapping[str, Any]) -> example_gen_pb2.Input:
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
  return input_config


def _check_output_config(exec_properties: Mapping[str, Any]) -> None:
  """The output splits are the input config's; a hash-partitioned output
  config (the stock ExampleGen's other mode) is refused, not ignored."""
  output_config = example_gen_pb2.Output()
  proto_utils.json_to_proto(
      exec_properties.get(standard_component_specs.OUTPUT_CONFIG_KEY) or '{}',
      output_config)
  if output_config.split_config.splits:
    raise SplitPlanError(
        'TfdsExampleGen takes its splits from input_config (TFDS split '
        'specs); an output_config with split_config is not supported')


class Executor(base_beam_executor.BaseBeamExecutor):
  """Prepares MNIST with TFDS, then writes each split's tf.Examples by Beam.

  Writes what TFX's ExampleGen writes (gzipped TFRecord files
  `data_tfrecord-*.gz` per split directory, payload and file format set on
  the artifact) without its per-record `WriteSplit`: records are read,
  serialized, framed and written a batch at a time (components/tfrecord_sink).
  Record order within a split follows TFDS's; nothing downstream depends on
  it (the Trainer shuffles).
  """

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    source = exec_properties[SOURCE_KEY]
    source_dir = exec_properties.get(standard_component_specs.INPUT_BASE_KEY)
    input_config = _input_config(exec_properties)
    _check_output_config(exec_properties)
    file_format = write_split.to_file_format_str(
        exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        or example_gen_pb2.FILE_FORMAT_UNSPECIFIED)
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    with tempfile.TemporaryDirectory(prefix='tfds-example-gen-') as work_dir:
      data_dir = self._data_dir(exec_properties, work_dir)
      builder = mnist_source.make_builder(source, source_dir, data_dir)
      logging.info('Preparing %s (source %s) in %s', builder.name, source,
                   data_dir)
      if not (progress.enabled() and sys.stderr.isatty()):
        # TFDS's nested bars redraw with escape codes: on a terminal only.
        tfds.disable_progress_bar()
      mnist_source.prepare(builder, os.path.join(work_dir, 'downloads'))
      sizes = check_split_plan(input_config, _split_lengths(builder))
      logging.info('Split sizes: %s', sizes)
      examples.split_names = artifact_utils.encode_split_names(
          [split.name for split in input_config.splits])
      with self._make_beam_pipeline() as pipeline:
        for split in input_config.splits:
          _ = pipeline | f'WriteSplit[{split.name}]' >> _WriteTfdsSplit(  # pylint: disable=no-value-for-parameter
              builder, split.pattern,
              artifact_utils.get_split_uri([examples], split.name),
              sizes[split.name])
    examples_utils.set_payload_format(
        examples, exec_properties.get(
            standard_component_specs.OUTPUT_DATA_FORMAT_KEY) or
        example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, file_format)
    progress.record_split_sizes(examples, sizes)
    # Interim: MNIST's description (the generic one comes from the builder).
    dataset_info.record(examples, dataset_info.DatasetInfo(
        'mnist', (28, 28, 1), tuple(str(label) for label in range(10))))
    logging.info('Examples generated.')

  @staticmethod
  def _data_dir(exec_properties: Mapping[str, Any], work_dir: str) -> Optional[str]:
    """Where TFDS prepares the data; never reuses data of other source bytes."""
    configured = exec_properties.get(TFDS_DATA_DIR_KEY)
    if exec_properties[SOURCE_KEY] == mnist_source.SOURCE_TFDS:
      return configured  # None: TFDS's default; the stock builder checksums.
    if not configured:
      return os.path.join(work_dir, 'tfds')
    fingerprint = exec_properties.get(example_gen_utils.FINGERPRINT_PROPERTY_NAME)
    if not fingerprint:
      fingerprint = mnist_source.fingerprint_source_dir(
          exec_properties[standard_component_specs.INPUT_BASE_KEY])
    return os.path.join(configured,
                        hashlib.sha256(fingerprint.encode()).hexdigest()[:16])
