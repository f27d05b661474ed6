"""Executor of TfdsExampleGen: TFDS-prepared MNIST to tf.Examples with Beam."""

import hashlib
import os
import re
import sys
import tempfile
from typing import Any, Dict, List, Mapping, Optional

from absl import logging
import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import example_bytes
from components import features
from components import progress
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
  """`to_example(...).SerializeToString(deterministic=True)` of many images,
  written with array operations (~10x faster than one proto per image here).

  Args:
    images: uint8 [count, 28, 28, 1].
    labels: integers [count].
  """
  images = np.asarray(images)
  if images.shape[1:] != mnist_source.tfds_mnist.MNIST_IMAGE_SHAPE:
    raise ValueError(f'MNIST images of shape {images.shape[1:]}, expected '
                     f'{mnist_source.tfds_mnist.MNIST_IMAGE_SHAPE}')
  pixels, lengths = example_bytes.packed_uint8_varints(
      images.reshape(len(images), -1).astype(np.uint8))
  ends = np.cumsum(lengths).tolist()
  label_features = {}  # The few distinct labels' Feature messages, made once.
  records = []
  for index, label in enumerate(np.asarray(labels).tolist()):
    if label not in label_features:
      label_features[label] = example_bytes.int64_feature(example_bytes.varint(label))
    start = ends[index] - int(lengths[index])
    records.append(example_bytes.example({
        IMAGE_FEATURE: example_bytes.int64_feature(pixels[start:ends[index]]),
        LABEL_FEATURE: label_features[label]}))
  return records


def _split_lengths(builder: tfds.core.DatasetBuilder) -> Dict[str, int]:
  """Number of images of each split of a prepared TFDS dataset."""
  return {name: info.num_examples for name, info in builder.info.splits.items()}


def _serialize_batch(batch: List[Mapping[str, np.ndarray]]) -> List[bytes]:
  return serialize_examples(np.stack([item[IMAGE_FEATURE] for item in batch]),
                            np.array([int(item[LABEL_FEATURE]) for item in batch]))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _TfdsSplitToExample(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
    split_pattern: str, builder: tfds.core.DatasetBuilder
) -> beam.pvalue.PCollection:
  """Reads one TFDS split spec in parallel (by shard) as serialized
  tf.Examples, serialized in batches."""
  del exec_properties  # Everything needed is in the prepared builder.
  _, start, stop = _split_range(split_pattern, _split_lengths(builder))
  return (pipeline
          | 'ReadFromTFDS' >> tfds.beam.ReadFromTFDS(builder, split=split_pattern)
          | 'ToNumpy' >> beam.Map(tfds.as_numpy)
          | 'Batch' >> beam.BatchElements(min_batch_size=64, max_batch_size=1024)
          | 'ToExamples' >> beam.FlatMap(_serialize_batch)
          | 'Progress' >> beam.ParDo(progress.CountProgress(
              f'ingest {split_pattern}', stop - start)))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
  """Prepares MNIST with TFDS, then writes each split's tf.Examples by Beam."""

  _builder: Optional[tfds.core.DatasetBuilder] = None

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    builder = self._builder

    def input_to_example(exec_properties, split_pattern):
      return _TfdsSplitToExample(exec_properties, split_pattern, builder)  # pylint: disable=no-value-for-parameter

    return input_to_example

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    source = exec_properties[SOURCE_KEY]
    source_dir = exec_properties.get(standard_component_specs.INPUT_BASE_KEY)
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    with tempfile.TemporaryDirectory(prefix='tfds-example-gen-') as work_dir:
      data_dir = self._data_dir(exec_properties, work_dir)
      self._builder = mnist_source.make_builder(source, source_dir, data_dir)
      try:
        logging.info('Preparing %s (source %s) in %s', self._builder.name,
                     source, data_dir)
        if not (progress.enabled() and sys.stderr.isatty()):
          # TFDS's nested bars redraw with escape codes: on a terminal only.
          tfds.disable_progress_bar()
        mnist_source.prepare(self._builder, os.path.join(work_dir, 'downloads'))
        sizes = check_split_plan(input_config, _split_lengths(self._builder))
        logging.info('Split sizes: %s', sizes)
        super().Do(input_dict, output_dict, exec_properties)
        for examples in output_dict[standard_component_specs.EXAMPLES_KEY]:
          progress.record_split_sizes(examples, sizes)
      finally:
        self._builder = None

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
