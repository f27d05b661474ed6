"""Executor of TfdsExampleGen: a TFDS-prepared dataset to tf.Examples with Beam."""

import hashlib
import os
import sys
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

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
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.common import dataset_info
from components.common import example_bytes
from components.common import names
from components.common import progress
from components.common import tfrecord_sink
from components.tfds_example_gen import image_folder
from components.tfds_example_gen import settings
from components.tfds_example_gen import sources

# Feature names of the emitted tf.Examples (also those of schemas/).
IMAGE_FEATURE = names.IMAGE
LABEL_FEATURE = names.LABEL

# The output splits, in order.
SPLITS = settings.SPLITS


# The one split plan is the settings' (TF-free, so the benchmarks reuse it).
SplitPlanError = settings.SplitPlanError
SplitSlice = settings.SplitSlice
plan_splits = settings.plan_splits


def to_example(record: Mapping[str, np.ndarray]) -> tf.train.Example:
  """Converts one TFDS record (numpy) to a tf.Example: `image` flattened
  (row-major, channels last), `label` when the record has one."""
  feature = {IMAGE_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(
      value=np.asarray(record[IMAGE_FEATURE]).reshape(-1).astype(np.int64)))}
  if LABEL_FEATURE in record:
    feature[LABEL_FEATURE] = tf.train.Feature(int64_list=tf.train.Int64List(
        value=[int(record[LABEL_FEATURE])]))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def serialize_examples(images: np.ndarray, labels: Optional[np.ndarray],
                       image_shape: Sequence[int]) -> List[bytes]:
  """The tf.Examples `to_example` makes of many images, serialized at once
  (components/common/example_bytes.py; much faster than a proto per image:
  bench/libraries.py measures both).

  Args:
    images: uint8 [count, height, width, channels].
    labels: integers [count]; None: the dataset has no labels.
    image_shape: The dataset's (height, width, channels), which every image
      must have.
  """
  images = np.asarray(images)
  if images.shape[1:] != tuple(image_shape):
    raise ValueError(f'images of shape {images.shape[1:]}, the dataset\'s '
                     f'are {tuple(image_shape)}')
  columns = {IMAGE_FEATURE: images.reshape(len(images), -1)}
  if labels is not None:
    columns[LABEL_FEATURE] = np.asarray(labels)
  return example_bytes.serialize(columns)


def _split_lengths(builder: tfds.core.DatasetBuilder) -> Dict[str, int]:
  """Number of images of each split of a prepared TFDS dataset."""
  return {name: info.num_examples for name, info in builder.info.splits.items()}


# Images per tf.data batch read from TFDS: one Beam element each.
READ_BATCH_SIZE = 1024
# What the stock ExampleGen names its files (`write_split.WriteSplit`):
# <split dir>/data_tfrecord-SSSSS-of-NNNNN.gz.
OUTPUT_FILE_PREFIX = write_split.DEFAULT_TF_RECORD_FILE_NAME
# Where an image folder's job leaves its findings for the executor (inside
# the output, so that any runner's workers can write it; removed after).
FACTS_DIRNAME = '.ingest-facts'


class _ReadTfdsBatches(beam.DoFn):
  """Reads one TFDS file instruction as lists of serialized tf.Examples.

  What `tfds.beam.ReadFromTFDS` does per file instruction (the same
  `<split>[<shard>shard]` read, skip and take: tensorflow_datasets/core/
  beam_utils.py), but in tf.data batches: ReadFromTFDS pulls one example per
  iterator `next()` (eagerly) and makes a Beam element of each, which
  takes most of the read's time. Serialized a batch at a
  time (`serialize_examples`): `image`, and `label` when `info` has classes.
  """

  def __init__(self, builder: tfds.core.DatasetBuilder, batch_size: int,
               info: dataset_info.DatasetInfo):
    self._builder = builder
    self._batch_size = batch_size
    self._info = info

  def process(self, file_instruction) -> Iterable[List[bytes]]:
    file_info = tfds_naming.FilenameInfo.from_str(file_instruction.filename)
    dataset = self._builder.as_dataset(
        split=f'{file_info.split}[{file_info.shard_index}shard]',
        shuffle_files=False)
    if file_instruction.skip > 0:
      dataset = dataset.skip(file_instruction.skip)
    if not file_instruction.takes_all:
      dataset = dataset.take(file_instruction.take)
    keys = (IMAGE_FEATURE, LABEL_FEATURE) if self._info.labeled else (IMAGE_FEATURE,)
    if set(self._builder.info.features) != set(keys):
      # Only the features ingested (others may be of any shape, or a label
      # that is no ClassLabel); MNIST's two need no extra map per image.
      dataset = dataset.map(lambda record: {key: record[key] for key in keys})
    for batch in dataset.batch(self._batch_size).as_numpy_iterator():
      yield serialize_examples(batch[IMAGE_FEATURE], batch.get(LABEL_FEATURE),
                               self._info.image_shape)


@beam.ptransform_fn
def _WriteTfdsSplit(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, builder: tfds.core.DatasetBuilder,
    info: dataset_info.DatasetInfo, split_pattern: str, output_uri: str,
    total: Optional[int]) -> beam.pvalue.PDone:
  """Writes one TFDS split spec as gzipped TFRecord files of tf.Examples
  (of the dataset `info` describes), reading the spec's TFDS shards in
  parallel (`total`: the number expected, for the progress bar's ETA)."""
  return (pipeline
          | 'FileInstructions' >> beam.Create(
              builder.info.splits[split_pattern].file_instructions)
          # Breaks fusion, so that a runner can read the shards in parallel.
          | 'Spread' >> beam.Reshuffle()
          | 'Read' >> beam.ParDo(_ReadTfdsBatches(builder, READ_BATCH_SIZE, info))
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
  """Prepares the dataset with TFDS, then writes each split's tf.Examples by
  Beam.

  Writes what TFX's ExampleGen writes (gzipped TFRecord files
  `data_tfrecord-*.gz` per split directory, payload and file format set on
  the artifact) without its per-record `WriteSplit`: records are read,
  serialized, framed and written a batch at a time (components/tfrecord_sink).
  Record order within a split follows TFDS's; nothing downstream depends on
  it (the Trainer shuffles). Records the dataset's description (image shape,
  class names: components/dataset_info) and split sizes on the artifact.
  """

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    data = settings.DataSpec.from_json(exec_properties[settings.DATA_SPEC_KEY])
    split_names = [split.name for split in _input_config(exec_properties).splits]
    if sorted(split_names) != sorted(SPLITS):
      raise SplitPlanError(f'input_config splits {split_names}; TfdsExampleGen '
                           f'writes {", ".join(SPLITS)}')
    _check_output_config(exec_properties)
    file_format = write_split.to_file_format_str(
        exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        or example_gen_pb2.FILE_FORMAT_UNSPECIFIED)
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    examples.split_names = artifact_utils.encode_split_names(split_names)
    if data.image_dir is not None:
      info, sizes = self._ingest_folder(data, examples)
    else:
      info, sizes = self._ingest_tfds(data, exec_properties, examples,
                                      split_names)
    examples_utils.set_payload_format(
        examples, exec_properties.get(
            standard_component_specs.OUTPUT_DATA_FORMAT_KEY) or
        example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(examples, file_format)
    progress.record_split_sizes(examples, sizes)
    dataset_info.record(examples, info)
    logging.info('Examples generated: %s', info.describe())

  def _ingest_tfds(self, data: settings.DataSpec,
                   exec_properties: Mapping[str, Any], examples: types.Artifact,
                   split_names: Sequence[str]):
    """Prepares a TFDS dataset, then writes each split's slice by Beam;
    returns the dataset's description and the split sizes."""
    with tempfile.TemporaryDirectory(prefix='tfds-example-gen-') as work_dir:
      data_dir = self._data_dir(data, exec_properties, work_dir)
      builder = sources.make_builder(data, data_dir)
      name = sources.dataset_name(data)
      sources.dataset_info(builder, name)  # Refuses a dataset of no fixed shape.
      logging.info('Preparing %s (%s) in %s', name, builder.name, data_dir)
      if not (progress.enabled() and sys.stderr.isatty()):
        # TFDS's nested bars redraw with escape codes: on a terminal only.
        tfds.disable_progress_bar()
      sources.prepare(builder, os.path.join(work_dir, 'downloads'))
      # Again once prepared: some builders learn their class names then.
      info = sources.dataset_info(builder, name)
      plan = plan_splits(data, _split_lengths(builder), info.name)
      sizes = {split: plan[split].size for split in split_names}
      logging.info('Split plan: %s', ', '.join(
          f'{split} {plan[split].size} ({plan[split].pattern})' for split in plan))
      with self._make_beam_pipeline() as pipeline:
        for split in split_names:
          _ = pipeline | f'WriteSplit[{split}]' >> _WriteTfdsSplit(  # pylint: disable=no-value-for-parameter
              builder, info, plan[split].pattern,
              artifact_utils.get_split_uri([examples], split), sizes[split])
    return info, sizes

  def _ingest_folder(self, data: settings.DataSpec, examples: types.Artifact):
    """Reads an image folder into each split by one Beam job (image_folder);
    returns the dataset's description and the split sizes.

    Raises:
      ImageFolderError: more bad images than data.max_bad_images allows.
      SourceError: the images are too small for the evaluation.
    """
    layout = image_folder.list_images(data.image_dir)
    split_paths = image_folder.assign_splits(layout, data)
    logging.info('Image folder %s: %d images, split %s', data.image_dir,
                 len(layout.paths),
                 {split: len(paths) for split, paths in split_paths.items()})
    facts_dir = os.path.join(examples.uri, FACTS_DIRNAME)
    facts_path = os.path.join(facts_dir, 'facts.json')
    with self._make_beam_pipeline() as pipeline:
      _ = pipeline | 'IngestFolder' >> image_folder.IngestFolder(  # pylint: disable=no-value-for-parameter
          data.image_dir, layout, split_paths, data.image_size,
          {split: artifact_utils.get_split_uri([examples], split)
           for split in SPLITS}, OUTPUT_FILE_PREFIX, facts_path,
          settings.patches(data))
    ingested = image_folder.read_facts(facts_path)
    fileio.rmtree(facts_dir)
    image_folder.check_bad_images(ingested, data.max_bad_images,
                                  len(layout.paths))
    for path, reason in ingested.bad:
      logging.warning('Skipped a bad image: %s', reason)
    if ingested.bad:
      print(f'TfdsExampleGen: skipped {len(ingested.bad)} bad image(s) of '
            f'{data.image_dir} (data.max_bad_images={data.max_bad_images}); '
            f'the first: {ingested.bad[0][1]}', file=sys.stderr, flush=True)
    examples.set_int_custom_property(names.SKIPPED_IMAGES_PROPERTY,
                                     len(ingested.bad))
    info = dataset_info.DatasetInfo(sources.dataset_name(data),
                                    ingested.image_shape, layout.class_names,
                                    ingested.whole_train_values)
    sources.check_image_size(info)
    return info, ingested.split_sizes

  @staticmethod
  def _data_dir(data: settings.DataSpec, exec_properties: Mapping[str, Any],
                work_dir: str) -> Optional[str]:
    """Where TFDS prepares the data; never reuses a preparation of other
    source bytes or other folder settings."""
    configured = data.tfds_data_dir
    if data.source == settings.SOURCE_TFDS:
      return configured  # None: TFDS's default; the stock builder checksums.
    if not configured:
      return os.path.join(work_dir, 'tfds')
    fingerprint = (exec_properties.get(example_gen_utils.FINGERPRINT_PROPERTY_NAME)
                   or sources.source_fingerprint(data))
    return os.path.join(configured,
                        hashlib.sha256(fingerprint.encode()).hexdigest()[:16])
