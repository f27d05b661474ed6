"""TfdsExampleGen's executor and driver on tiny IDX files and image folders
made here."""

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

from components.common import dataset_info
from components.tfds_example_gen import component
from components.tfds_example_gen import driver
from components.tfds_example_gen import executor
from components.tfds_example_gen import settings
from components.tfds_example_gen import sources
from components.tfds_example_gen.sources import SourceError
from tests import idx_files


def _exec_properties(data):
  """What TfdsExampleGen(data) gives its executor."""
  return component.TfdsExampleGen(data).exec_properties


def _run_spec(data, output_dir):
  examples = standard_artifacts.Examples()
  examples.uri = str(output_dir)
  executor.Executor().Do({}, {'examples': [examples]}, _exec_properties(data))
  return examples


def _run(source_dir, output_dir, train=80, evaluation=30, test=20, **kwargs):
  return _run_spec(settings.DataSpec(
      source_dir=source_dir, train_examples=train, eval_examples=evaluation,
      test_examples=test, **kwargs), output_dir)


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
  builder = sources.make_builder(settings.DataSpec(source_dir=tiny_mnist.directory),
                                 str(tmp_path / 'tfds'))
  builder.download_and_prepare(
      download_dir=str(tmp_path / 'downloads'),
      download_config=tfds.download.DownloadConfig(num_shards=3))
  assert len(builder.info.splits['train'].file_instructions) == 3
  output = tmp_path / 'out'
  with beam.Pipeline() as pipeline:
    _ = pipeline | executor._WriteTfdsSplit(  # pylint: disable=protected-access,no-value-for-parameter
        builder, sources.dataset_info(builder, 'mnist'), split_spec, str(output),
        total=None)
  assert _keys(_read_files(str(output / 'data_tfrecord-*.gz'))) == _tfds_keys(
      builder, split_spec)


def test_hash_partitioned_output_config_is_refused(tiny_mnist, tmp_path):
  properties = _exec_properties(settings.DataSpec(source_dir=tiny_mnist.directory))
  properties['output_config'] = proto_utils.proto_to_json(example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(splits=[
          example_gen_pb2.SplitConfig.Split(name='train', hash_buckets=9),
          example_gen_pb2.SplitConfig.Split(name='eval', hash_buckets=1)])))
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'out')
  with pytest.raises(executor.SplitPlanError, match='split_config is not supported'):
    executor.Executor().Do({}, {'examples': [examples]}, properties)


def test_executor_records_its_split_sizes(tiny_mnist, tmp_path):
  from components.common import progress  # pylint: disable=g-import-not-at-top
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
          executor.serialize_examples(images, labels, (28, 28, 1))] == [
      executor.to_example({'image': image, 'label': label})
      for image, label in zip(images, labels)]
  with pytest.raises(ValueError, match=r'shape \(28, 28\), the dataset'):
    executor.serialize_examples(images[:, :, :, 0], labels, (28, 28, 1))
  # Unlabelled RGB images: `image` alone, channels last.
  colour = rng.integers(0, 256, size=(3, 4, 5, 3), dtype=np.uint8)
  assert [tf.train.Example.FromString(record) for record in
          executor.serialize_examples(colour, None, (4, 5, 3))] == [
      executor.to_example({'image': image}) for image in colour]


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
  with pytest.raises(executor.SplitPlanError,
                     match=r'data.test_examples \(41\) exceeds the 40 images'):
    _run(tiny_mnist.directory, tmp_path / 'out', test=41)


def test_overlapping_train_and_eval_fail(tiny_mnist, tmp_path):
  with pytest.raises(executor.SplitPlanError,
                     match=r'data.train_examples \(100\) \+ data.eval_examples '
                     r'\(30\) = 130 images, but the train split of .mnist. holds 120'):
    _run(tiny_mnist.directory, tmp_path / 'out', train=100, evaluation=30)


def test_corrupt_source_fails_and_writes_no_split(tiny_mnist, tmp_path):
  with open(tiny_mnist.path('train_data'), 'r+b') as source:
    source.truncate(100)
  with pytest.raises(SourceError, match='train-images-idx3-ubyte.gz'):
    _run(tiny_mnist.directory, tmp_path / 'out')
  assert not glob.glob(str(tmp_path / 'out' / 'Split-*' / '*.gz'))


def test_driver_fingerprints_the_source_files(tiny_mnist):
  splits = component.make_input_config().splits
  processor = driver.TfdsInputProcessor(
      splits, None, settings.DataSpec(source_dir=tiny_mnist.directory))
  span, version = processor.resolve_span_and_version()
  fingerprint = processor.get_input_fingerprint(span, version)
  assert (span, version) == (0, None)
  assert 'train-images-idx3-ubyte.gz:sha256=' in fingerprint
  os.remove(tiny_mnist.path('train_labels'))
  with pytest.raises(SourceError, match='train-labels-idx1-ubyte.gz'):
    processor.get_input_fingerprint(span, version)


def test_the_vendored_fashion_mnist_gives_examples_with_its_class_names(tmp_path):
  tiny = idx_files.make_tiny_idx(str(tmp_path / 'fashion'), 'fashion_mnist')
  examples = _run_spec(settings.DataSpec(
      dataset='fashion_mnist', source_dir=tiny.directory), tmp_path / 'out')
  info = dataset_info.recorded(examples)
  assert info.name == 'fashion_mnist' and info.image_shape == (28, 28, 1)
  assert info.class_names[:2] == ('T-shirt/top', 'Trouser') and len(info.class_names) == 10
  # None sizes: the dataset decides (eval 10% of its 120 train images).
  from components.common import progress  # pylint: disable=g-import-not-at-top
  assert progress.split_sizes(examples) == {'train': 108, 'eval': 12, 'test': 40}
  assert _keys(_read_split(examples, 'test')) == _source_keys(tiny.test_images,
                                                             tiny.test_labels)


def test_mnists_full_defaults_plan_its_historical_splits():
  plan = executor.plan_splits(settings.DataSpec(), {'train': 60_000, 'test': 10_000},
                              'mnist')
  assert plan == {'train': ('train[:54000]', 54_000), 'eval': ('train[-6000:]', 6000),
                  'test': ('test', 10_000)}


def test_the_plan_takes_sizes_and_percents_from_the_settings():
  lengths = {'train': 1000, 'test': 300}
  assert executor.plan_splits(settings.DataSpec(eval_percent=25, test_examples=7),
                              lengths, 'x') == {
      'train': ('train[:750]', 750), 'eval': ('train[-250:]', 250),
      'test': ('test[:7]', 7)}
  assert executor.plan_splits(settings.DataSpec(train_examples=10, eval_examples=5),
                              lengths, 'x')['train'] == ('train[:10]', 10)


@pytest.mark.parametrize('data, lengths, message', [
    (settings.DataSpec(eval_percent=1), {'train': 40, 'test': 5},
     r'data.eval_percent=1 of the 40 train images of .x. is no image'),
    (settings.DataSpec(eval_examples=50), {'train': 40, 'test': 5},
     r'data.eval_examples \(50\) leaves none of the 40 train images of .x.'),
    (settings.DataSpec(test_examples=6), {'train': 40, 'test': 5},
     r'data.test_examples \(6\) exceeds the 5 images of the test split of .x.'),
    (settings.DataSpec(), {'train': 40, 'validation': 5},
     r"dataset 'x' has no 'test' split \(its splits: train, validation\)"),
])
def test_a_plan_the_dataset_cannot_fill_is_refused_naming_settings_and_sizes(
    data, lengths, message):
  with pytest.raises(executor.SplitPlanError, match=message):
    executor.plan_splits(data, lengths, 'x')


def test_the_component_carries_the_data_spec_and_its_fingerprint(tiny_mnist):
  data = settings.DataSpec(source_dir=tiny_mnist.directory, train_examples=80)
  properties = component.TfdsExampleGen(data).exec_properties
  assert settings.DataSpec.from_json(properties['data_spec']) == data
  assert properties['source_fingerprint'] == sources.fingerprint_source_dir(
      tiny_mnist.directory)
  assert [split.name for split in component.make_input_config().splits] == [
      'train', 'eval', 'test']
  missing = settings.DataSpec(source_dir=tiny_mnist.directory + '-nowhere')
  assert component.TfdsExampleGen(missing).exec_properties['source_fingerprint'] == ''
  assert component.TfdsExampleGen(settings.DataSpec(
      source='tfds', dataset='cifar10')).exec_properties['source_fingerprint'] == (
          'tfds:cifar10')


def test_the_driver_fingerprints_an_image_folder(tmp_path):
  from tests.components import test_image_folder  # pylint: disable=g-import-not-at-top
  test_image_folder.write_flat_folder(str(tmp_path / 'scans'), count=3)
  data = settings.DataSpec(image_dir=str(tmp_path / 'scans'))
  exec_properties = component.TfdsExampleGen(data).exec_properties
  resolved = driver.TfdsDriver(metadata_handle=None).resolve_exec_properties(
      dict(exec_properties), None, None)
  from components.tfds_example_gen import image_folder  # pylint: disable=g-import-not-at-top
  assert resolved[example_gen_utils.FINGERPRINT_PROPERTY_NAME] == (
      image_folder.fingerprint(str(tmp_path / 'scans')))
  assert resolved[example_gen_utils.SPAN_PROPERTY_NAME] == 0


class TinyColourSet(tfds.core.GeneratorBasedBuilder):
  """A TFDS dataset defined here (registered `tiny_colour_set`), so that the
  `tfds` source runs offline: RGB 6x5 images, a ClassLabel and a feature of
  varying length (which a batch of all features could not hold)."""

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(12, 11, 3)),
        'label': tfds.features.ClassLabel(names=['red', 'green', 'blue']),
        'strokes': tfds.features.Tensor(shape=(None,), dtype=np.int64)}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(50, 0), 'test': self._generate_examples(9, 50)}

  def _generate_examples(self, count, first):
    for index in range(first, first + count):
      image = np.full((12, 11, 3), index, np.uint8)
      yield index, {'image': image, 'label': index % 3,
                    'strokes': np.arange(index % 4 + 1)}


def test_any_tfds_image_dataset_is_ingested_with_its_shape_and_classes(tmp_path):
  examples = _run_spec(settings.DataSpec(
      dataset='tiny_colour_set', source=settings.SOURCE_TFDS,
      tfds_data_dir=str(tmp_path / 'tfds')), tmp_path / 'out')
  assert dataset_info.recorded(examples) == dataset_info.DatasetInfo(
      'tiny_colour_set', (12, 11, 3), ('red', 'green', 'blue'))
  from components.common import progress  # pylint: disable=g-import-not-at-top
  assert progress.split_sizes(examples) == {'train': 45, 'eval': 5, 'test': 9}
  test = _read_split(examples, 'test')
  assert sorted((int(image[0]), label[0]) for image, label in test) == [
      (index, index % 3) for index in range(50, 59)]
  assert all(image.shape == (396,) for image, _ in test)


@pytest.mark.parametrize('info, line', [
    (dataset_info.DatasetInfo('mnist', (28, 28, 1), tuple('0123456789')),
     'mnist: 28x28x1 images, 10 classes (0, 1, 2, 3, 4, ...)'),
    (dataset_info.DatasetInfo('photos', (32, 32, 3), ('cats', 'dogs')),
     'photos: 32x32x3 images, 2 classes (cats, dogs)'),
    (dataset_info.DatasetInfo('mixed', (16, 16, 3), (), whole_train_values=768),
     'mixed: 16x16x3 patches of whole train images, no labels'),
])
def test_the_log_describes_a_dataset_in_words_not_reprs(info, line):
  assert info.describe() == line
