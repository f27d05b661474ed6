"""TfdsExampleGen's executor and driver on tiny IDX files made here."""

import glob
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.tfds_example_gen import component
from components.tfds_example_gen import driver
from components.tfds_example_gen import executor
from components.tfds_example_gen import mnist_source
from components.tfds_example_gen.mnist_source import MnistSourceError
from tests import idx_files


def _exec_properties(source_dir, train, evaluation, test, tfds_data_dir=None):
  input_config = component.make_input_config(train, evaluation, test)
  return {
      'input_base': source_dir,
      'input_config': proto_utils.proto_to_json(input_config),
      'output_config': proto_utils.proto_to_json(
          example_gen_utils.make_default_output_config(input_config)),
      'output_data_format': example_gen_pb2.FORMAT_TF_EXAMPLE,
      'output_file_format': example_gen_pb2.FORMAT_TFRECORDS_GZIP,
      executor.SOURCE_KEY: 'vendored',
      executor.TFDS_DATA_DIR_KEY: tfds_data_dir,
  }


def _run(source_dir, output_dir, train=80, evaluation=30, test=20, **kwargs):
  examples = standard_artifacts.Examples()
  examples.uri = str(output_dir)
  executor.Executor().Do({}, {'examples': [examples]},
                         _exec_properties(source_dir, train, evaluation, test,
                                          **kwargs))
  return examples


def _read_split(examples, split):
  return _read_files(os.path.join(
      artifact_utils.get_split_uri([examples], split), '*.gz'))


def _read_files(pattern):
  """(image, [label]) of every tf.Example in the gzipped files matching."""
  files = glob.glob(pattern)
  records = []
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    example = tf.train.Example.FromString(record.numpy())
    image = np.array(example.features.feature['image'].int64_list.value)
    label = list(example.features.feature['label'].int64_list.value)
    records.append((image, label))
  return records


def _keys(records):
  return sorted((label[0], image.astype(np.uint8).tobytes())
                for image, label in records)


def _source_keys(images, labels):
  return sorted((int(label), image.reshape(-1).tobytes())
                for image, label in zip(images, labels))


def test_executor_writes_three_disjoint_splits_of_the_source(tiny_mnist, tmp_path):
  examples = _run(tiny_mnist.directory, tmp_path / 'out')
  assert artifact_utils.decode_split_names(examples.split_names) == [
      'train', 'eval', 'test']
  splits = {split: _read_split(examples, split) for split in ('train', 'eval', 'test')}
  assert {split: len(records) for split, records in splits.items()} == {
      'train': 80, 'eval': 30, 'test': 20}
  for records in splits.values():
    for image, label in records:
      assert image.shape == (784,) and image.min() >= 0 and image.max() <= 255
      assert len(label) == 1 and 0 <= label[0] <= 9
  train_keys, eval_keys = _keys(splits['train']), _keys(splits['eval'])
  source_train = _source_keys(tiny_mnist.train_images, tiny_mnist.train_labels)
  assert not set(train_keys) & set(eval_keys)
  assert set(train_keys) | set(eval_keys) <= set(source_train)
  assert set(_keys(splits['test'])) <= set(
      _source_keys(tiny_mnist.test_images, tiny_mnist.test_labels))
  assert examples.get_string_custom_property('payload_format') == 'FORMAT_TF_EXAMPLE'
  assert examples.get_string_custom_property('file_format') == 'tfrecords_gzip'
  assert glob.glob(os.path.join(artifact_utils.get_split_uri([examples], 'train'),
                                'data_tfrecord-00000-of-*.gz'))


def _tfds_keys(builder, split_spec):
  """What TFDS itself reads for a split spec, as order-free keys."""
  return sorted((int(record['label']), record['image'].reshape(-1).tobytes())
                for record in tfds.as_numpy(builder.as_dataset(split=split_spec)))


@pytest.mark.parametrize('split_spec', ['train[10:100]', 'train[-7:]', 'test'])
def test_split_holds_exactly_what_tfds_reads_for_its_spec(tiny_mnist, tmp_path,
                                                           split_spec):
  """Batched reads over several TFDS shards, with skip and take inside them."""
  builder = mnist_source.make_builder(mnist_source.SOURCE_VENDORED,
                                      tiny_mnist.directory, str(tmp_path / 'tfds'))
  builder.download_and_prepare(
      download_dir=str(tmp_path / 'downloads'),
      download_config=tfds.download.DownloadConfig(num_shards=3))
  assert len(builder.info.splits['train'].file_instructions) == 3
  output = tmp_path / 'out'
  with beam.Pipeline() as pipeline:
    _ = pipeline | executor._WriteTfdsSplit(  # pylint: disable=protected-access,no-value-for-parameter
        builder, split_spec, str(output), total=None)
  assert _keys(_read_files(str(output / 'data_tfrecord-*.gz'))) == _tfds_keys(
      builder, split_spec)


def test_hash_partitioned_output_config_is_refused(tiny_mnist, tmp_path):
  properties = _exec_properties(tiny_mnist.directory, 80, 30, 20)
  properties['output_config'] = proto_utils.proto_to_json(example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(splits=[
          example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=9),
          example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1)])))
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'out')
  with pytest.raises(executor.SplitPlanError, match='split_config is not supported'):
    executor.Executor().Do({}, {'examples': [examples]}, properties)


def test_executor_records_its_split_sizes(tiny_mnist, tmp_path):
  from components import progress  # pylint: disable=g-import-not-at-top
  examples = _run(tiny_mnist.directory, tmp_path / 'out')
  assert progress.split_sizes(examples) == {'train': 80, 'eval': 30, 'test': 20}


def test_batched_serialisation_writes_the_examples_protobuf_makes():
  rng = np.random.default_rng(4)
  images = rng.integers(0, 256, size=(50, 28, 28, 1), dtype=np.uint8)
  images[0], images[1] = 0, 255  # All one-byte and all two-byte varints.
  labels = rng.integers(0, 10, size=50)
  labels[2] = 300  # A label of two varint bytes.
  # The same examples; the encoder's feature map order varies, so not the bytes.
  assert [tf.train.Example.FromString(record) for record in
          executor.serialize_examples(images, labels)] == [
      executor.to_example({'image': image, 'label': label})
      for image, label in zip(images, labels)]
  with pytest.raises(ValueError, match=r'shape \(28, 28\)'):
    executor.serialize_examples(images[:, :, :, 0], labels)


def test_executor_output_is_deterministic(tiny_mnist, tmp_path):
  first = _run(tiny_mnist.directory, tmp_path / 'first')
  second = _run(tiny_mnist.directory, tmp_path / 'second')
  for split in ('train', 'eval', 'test'):
    assert _keys(_read_split(first, split)) == _keys(_read_split(second, split))


def test_tfds_data_dir_is_keyed_by_the_source_bytes(tiny_mnist, tmp_path):
  data_dir = tmp_path / 'tfds'
  _run(tiny_mnist.directory, tmp_path / 'a', tfds_data_dir=str(data_dir))
  # New, well-formed label bytes (no SHA256SUMS to contradict them).
  os.remove(os.path.join(tiny_mnist.directory, 'SHA256SUMS'))
  idx_files.rewrite(tiny_mnist, 'train_labels',
                    idx_files.labels_idx(np.full(120, 7, np.uint8)))
  examples = _run(tiny_mnist.directory, tmp_path / 'b', tfds_data_dir=str(data_dir))
  # The changed labels are read, not a stale preparation of the old bytes.
  assert {label[0] for _, label in _read_split(examples, 'train')} == {7}
  assert len(os.listdir(data_dir)) == 2


def test_more_images_than_the_source_holds_fail(tiny_mnist, tmp_path):
  with pytest.raises(executor.SplitPlanError, match="'test' split holds 40"):
    _run(tiny_mnist.directory, tmp_path / 'out', test=41)


def test_overlapping_train_and_eval_fail(tiny_mnist, tmp_path):
  with pytest.raises(executor.SplitPlanError, match='overlap'):
    _run(tiny_mnist.directory, tmp_path / 'out', train=100, evaluation=30)


def test_corrupt_source_fails_and_writes_no_split(tiny_mnist, tmp_path):
  with open(tiny_mnist.path('train_data'), 'r+b') as source:
    source.truncate(100)
  with pytest.raises(MnistSourceError, match='train-images-idx3-ubyte.gz'):
    _run(tiny_mnist.directory, tmp_path / 'out')
  assert not glob.glob(str(tmp_path / 'out' / 'Split-*' / '*.gz'))


@pytest.mark.parametrize('train, evaluation, test', [(0, 10, None), (10, -1, None),
                                                     (10, 10, 0)])
def test_component_rejects_non_positive_sizes(train, evaluation, test):
  with pytest.raises(ValueError, match='positive'):
    component.make_input_config(train, evaluation, test)


def test_component_rejects_unknown_source():
  with pytest.raises(ValueError, match='source must be one of'):
    component.TfdsExampleGen(source='ftp', source_dir='/tmp')


def test_driver_fingerprints_the_source_files(tiny_mnist):
  splits = component.make_input_config(10, 10, None).splits
  processor = driver.TfdsInputProcessor(splits, None, tiny_mnist.directory)
  span, version = processor.resolve_span_and_version()
  fingerprint = processor.get_input_fingerprint(span, version)
  assert (span, version) == (0, None)
  assert 'train-images-idx3-ubyte.gz:sha256=' in fingerprint
  os.remove(tiny_mnist.path('train_labels'))
  with pytest.raises(MnistSourceError, match='train-labels-idx1-ubyte.gz'):
    processor.get_input_fingerprint(span, version)
