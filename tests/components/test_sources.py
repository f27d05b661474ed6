"""The TFDS sources (vendored IDX, stock TFDS) on tiny IDX files made here,
good and corrupt."""

import os
import pickle

import numpy as np
import pytest
import tensorflow_datasets as tfds

from components.common import dataset_info
from components.tfds_example_gen import settings
from components.tfds_example_gen import sources
from components.tfds_example_gen.sources import SourceError
from tests import idx_files


def _prepare(tiny, tmp_path, dataset='mnist'):
  builder = sources.make_builder(
      settings.DataSpec(dataset=dataset, source_dir=tiny.directory),
      str(tmp_path / 'tfds'))
  sources.prepare(builder, str(tmp_path / 'downloads'))
  return builder


def _stock_builder(tmp_path, dataset='mnist'):
  """TFDS's own builder, not prepared (the TFDS source of make_builder:
  `tfds.builder(dataset)`, with no temporary directory left behind)."""
  return sources.make_builder(
      settings.DataSpec(dataset=dataset, source=settings.SOURCE_TFDS),
      str(tmp_path / 'unused'))


def _as_sorted_pairs(images, labels):
  """(label, image bytes) pairs, order-free, for comparing splits."""
  return sorted((int(label), np.asarray(image).reshape(-1).tobytes())
                for image, label in zip(images, labels))


def test_builder_keeps_the_stock_mnist_features_and_splits(tiny_mnist, tmp_path):
  builder = _prepare(tiny_mnist, tmp_path)
  stock = tfds.builder_cls('mnist')
  assert isinstance(builder, stock)
  assert builder.version == stock.VERSION
  assert str(builder.info.features) == str(_stock_builder(tmp_path).info.features)
  assert {name: info.num_examples for name, info in builder.info.splits.items()
         } == {'train': 120, 'test': 40}


@pytest.mark.parametrize('source', settings.SOURCES)
def test_making_a_builder_leaves_no_temporary_directory(source, tiny_mnist, tmp_path,
                                                        monkeypatch):
  # TFDS's DatasetInfo.initialize_from_bucket makes a mkdtemp('tfds') it never
  # removes whenever the dataset is not prepared yet.
  temporary = tmp_path / 'tmp'
  temporary.mkdir()
  monkeypatch.setattr('tempfile.tempdir', str(temporary))
  builder = sources.make_builder(
      settings.DataSpec(source=source, source_dir=tiny_mnist.directory),
      str(tmp_path / 'tfds'))
  assert isinstance(builder, tfds.builder_cls('mnist'))
  assert list(temporary.iterdir()) == []
  import tempfile  # pylint: disable=g-import-not-at-top
  assert tempfile.tempdir == str(temporary)  # restored


def test_builder_reads_every_image_and_label_exactly(tiny_mnist, tmp_path):
  builder = _prepare(tiny_mnist, tmp_path)
  for split, images, labels in (
      ('train', tiny_mnist.train_images, tiny_mnist.train_labels),
      ('test', tiny_mnist.test_images, tiny_mnist.test_labels)):
    records = list(tfds.as_numpy(builder.as_dataset(split=split)))
    assert all(record['image'].shape == (28, 28, 1) for record in records)
    assert _as_sorted_pairs([r['image'] for r in records],
                            [r['label'] for r in records]) == _as_sorted_pairs(
                                images, labels)


def test_builder_stores_the_png_bytes_the_stock_encoder_writes(tiny_mnist, tmp_path):
  """The batched encoding (encode_pngs) changes nothing TFDS stores: each
  record's image is the bytes of TFDS's own one-image encoder, in order."""
  builder = _prepare(tiny_mnist, tmp_path)
  stock_image = _stock_builder(tmp_path).info.features['image']
  stored_pngs = sorted(record['image'] for record in tfds.as_numpy(
      builder.as_dataset(split='train',
                         decoders={'image': tfds.decode.SkipDecoding()})))
  expected_pngs = sorted(stock_image.encode_example(image[:, :, None])
                         for image in tiny_mnist.train_images)
  assert stored_pngs == expected_pngs
  assert list(sources.encode_pngs(tiny_mnist.train_images[:3, :, :, None])) == [
      stock_image.encode_example(image[:, :, None])
      for image in tiny_mnist.train_images[:3]]


def test_builder_survives_pickling_for_beam_workers(tiny_mnist, tmp_path):
  builder = _prepare(tiny_mnist, tmp_path)
  clone = pickle.loads(pickle.dumps(builder))
  assert clone._source_dir == tiny_mnist.directory  # pylint: disable=protected-access
  assert clone.info.splits['train'].num_examples == 120


def test_fingerprint_changes_with_any_byte(tiny_mnist):
  before = sources.fingerprint_source_dir(tiny_mnist.directory)
  assert before == sources.fingerprint_source_dir(tiny_mnist.directory)
  labels = tiny_mnist.train_labels.copy()
  labels[0] = (labels[0] + 1) % 10
  idx_files.rewrite(tiny_mnist, 'train_labels', idx_files.labels_idx(labels))
  assert sources.fingerprint_source_dir(tiny_mnist.directory) != before


def _corrupt(tiny, case):
  """Applies one corruption; returns the path the error must name."""
  if case == 'missing file':
    os.remove(tiny.path('test_labels'))
    return tiny.path('test_labels')
  if case == 'truncated gzip':
    with open(tiny.path('train_data'), 'rb') as source:
      data = source.read()
    idx_files.rewrite(tiny, 'train_data', data[:len(data) // 2], compressed=False)
    return tiny.path('train_data')
  if case == 'not gzip':
    idx_files.rewrite(tiny, 'test_data', b'this is not a gzip file', compressed=False)
    return tiny.path('test_data')
  if case == 'wrong image magic':
    idx_files.rewrite(tiny, 'train_data',
                      idx_files.images_idx(tiny.train_images, magic=0x00000801))
    return tiny.path('train_data')
  if case == 'wrong label magic':
    idx_files.rewrite(tiny, 'test_labels',
                      idx_files.labels_idx(tiny.test_labels, magic=0x00000803))
    return tiny.path('test_labels')
  if case == 'truncated idx':
    payload = idx_files.images_idx(tiny.train_images)
    idx_files.rewrite(tiny, 'train_data', payload[:-100])
    return tiny.path('train_data')
  if case == 'count mismatch':
    idx_files.rewrite(tiny, 'train_labels', idx_files.labels_idx(tiny.train_labels[:-1]))
    return tiny.path('train_labels')
  if case == 'wrong image size':
    idx_files.rewrite(tiny, 'test_data',
                      idx_files.images_idx(np.zeros((40, 32, 32), np.uint8)))
    return tiny.path('test_data')
  if case == 'label out of range':
    labels = tiny.test_labels.copy()
    labels[3] = 12
    idx_files.rewrite(tiny, 'test_labels', idx_files.labels_idx(labels))
    return tiny.path('test_labels')
  if case == 'checksum mismatch':
    images = tiny.train_images.copy()
    images[0, 0, 0] ^= 0xFF  # Well-formed IDX, wrong bytes.
    idx_files.rewrite(tiny, 'train_data', idx_files.images_idx(images))
    return tiny.path('train_data')
  raise AssertionError(case)


@pytest.mark.parametrize('case, message', [
    ('missing file', 'missing'),
    ('truncated gzip', 'corrupt or truncated'),
    ('not gzip', 'corrupt or truncated'),
    ('wrong image magic', 'wrong magic number'),
    ('wrong label magic', 'wrong magic number'),
    ('truncated idx', 'truncated'),
    ('count mismatch', '120 images but .* 119 labels'),
    ('wrong image size', '32x32'),
    ('label out of range', 'label 12 outside'),
    ('checksum mismatch', 'SHA-256'),
])
def test_bad_source_files_fail_naming_the_file(tiny_mnist, tmp_path, case, message):
  bad_path = _corrupt(tiny_mnist, case)
  with pytest.raises(SourceError, match=message) as raised:
    _prepare(tiny_mnist, tmp_path)
  assert bad_path in str(raised.value)
  # Nothing was published as a prepared dataset.
  assert not list((tmp_path / 'tfds').glob('vendored_mnist/*/dataset_info.json'))


@pytest.mark.parametrize('dataset, stock_class', [
    ('fashion_mnist', 'FashionMNIST'), ('kmnist', 'KMNIST')])
def test_other_idx_datasets_keep_their_stock_builders_features(
    dataset, stock_class, tmp_path):
  tiny = idx_files.make_tiny_idx(str(tmp_path / dataset), dataset)
  builder = _prepare(tiny, tmp_path, dataset)
  stock = _stock_builder(tmp_path, dataset)
  assert type(stock).__name__ == stock_class
  assert isinstance(builder, type(stock)) and builder.version == stock.version
  assert str(builder.info.features) == str(stock.info.features)
  info = sources.dataset_info(builder, dataset)
  assert info.image_shape == (28, 28, 1)
  assert info.class_names == tuple(stock.info.features['label'].names)
  assert {name: split.num_examples for name, split in builder.info.splits.items()
         } == {'train': 120, 'test': 40}


def test_mnists_classes_are_its_digits(tiny_mnist, tmp_path):
  info = sources.dataset_info(_prepare(tiny_mnist, tmp_path), 'mnist')
  assert info == dataset_info.DatasetInfo(
      'mnist', (28, 28, 1), tuple('0123456789'))


def test_a_fashion_mnist_label_beyond_its_classes_is_refused(tmp_path):
  tiny = idx_files.make_tiny_idx(str(tmp_path / 'fashion'), 'fashion_mnist',
                                 with_checksums=False)
  labels = tiny.test_labels.copy()
  labels[0] = 10
  idx_files.rewrite(tiny, 'test_labels', idx_files.labels_idx(labels))
  with pytest.raises(SourceError, match='label 10 outside 0..9'):
    _prepare(tiny, tmp_path, 'fashion_mnist')


def test_a_tfds_dataset_without_a_fixed_image_shape_is_refused(tmp_path):
  # imagenette: images of any size (None, None, 3); never downloaded here.
  with pytest.raises(SourceError, match="'imagenette' has no \"image\" feature of a "
                     r'fixed .*\(None, None, 3\)'):
    sources.dataset_info(_stock_builder(tmp_path, 'imagenette'), 'imagenette')


def test_a_tfds_colour_dataset_is_described_by_its_features(tmp_path):
  info = sources.dataset_info(_stock_builder(tmp_path, 'cifar10'), 'cifar10')
  assert info.image_shape == (32, 32, 3) and len(info.class_names) == 10


def test_an_unknown_tfds_dataset_is_refused_naming_it(tmp_path):
  with pytest.raises(SourceError, match="data.dataset 'no_such_set'"):
    _stock_builder(tmp_path, 'no_such_set')


def test_the_vendored_source_reads_data_of_the_dataset_in_the_project():
  assert settings.vendored_source_dir(settings.DataSpec(dataset='kmnist')) == (
      os.path.join(settings.PROJECT_ROOT, 'data', 'kmnist'))
  assert settings.vendored_source_dir(settings.DataSpec(source_dir='data/x')) == (
      os.path.join(settings.PROJECT_ROOT, 'data', 'x'))
  assert settings.vendored_source_dir(settings.DataSpec(source_dir='/abs')) == '/abs'
