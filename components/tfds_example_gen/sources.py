"""The ExampleGen's TFDS builders: a dataset setting (DataSpec) to a builder.

* ``vendored``: the IDX datasets of TFDS (mnist, fashion_mnist, kmnist),
  read from a local directory by a subclass of TFDS's stock builder of that
  dataset (same features, splits and version) whose ``_split_generators``
  extracts the directory's four gzipped IDX files (this repository ships
  MNIST's in ``data/mnist``) instead of downloading them. It checks what the
  stock reader does not: IDX magic numbers, image dimensions (the builder's
  own image shape), file sizes (truncation), image/label counts, labels below
  the builder's number of classes and, when the directory has a
  ``SHA256SUMS`` file, the SHA-256 of every decompressed file.
* ``tfds``: ``tfds.builder(name)`` of any TFDS image dataset, with its own
  download and checksums (or what is prepared in ``tfds_data_dir``).
An image folder (``image_dir``) has no builder: the ExampleGen reads it by
Beam (components/tfds_example_gen/image_folder.py); its fingerprint is here.

`dataset_info` describes what a builder's images are (shape, class names);
`source_fingerprint` is what the ExampleGen's cache is keyed on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import struct
import tempfile
import zlib
from typing import Dict, Iterator, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import extractor
from tensorflow_datasets.image_classification import mnist as tfds_mnist

from components.common import dataset_info as dataset_info_lib
from components.tfds_example_gen import image_folder
from components.tfds_example_gen import settings

# IDX magic numbers: two zero bytes, the type code 0x08 (unsigned byte) and
# the number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IMAGES_HEADER_BYTES = settings.IDX_IMAGES_HEADER_BYTES
LABELS_HEADER_BYTES = settings.IDX_LABELS_HEADER_BYTES

CHECKSUMS_FILENAME = 'SHA256SUMS'

# Images PNG-encoded per TF call while preparing (see encode_pngs).
PNG_ENCODE_BATCH_SIZE = 4096

SOURCE_FILENAMES: Dict[str, str] = settings.SOURCE_FILENAMES


class SourceError(ValueError):
  """A dataset's source is missing, corrupt, truncated or unusable."""


def source_path(source_dir: str, key: str) -> str:
  """Returns the path of one of the four source files of a directory."""
  return os.path.join(source_dir, SOURCE_FILENAMES[key])


def check_source_files_exist(source_dir: str) -> None:
  """Raises SourceError naming every missing source file."""
  missing = [
      source_path(source_dir, key)
      for key in SOURCE_FILENAMES
      if not os.path.isfile(source_path(source_dir, key))
  ]
  if missing:
    raise SourceError('IDX source file(s) missing: ' + ', '.join(missing))


def fingerprint_source_dir(source_dir: str) -> str:
  """Returns a fingerprint of the source files' bytes (SHA-256 of each).

  Used by the ExampleGen driver, so that any change to a source file changes
  the execution properties and the cached output is not reused.
  """
  check_source_files_exist(source_dir)
  parts = []
  for key in sorted(SOURCE_FILENAMES):
    path = source_path(source_dir, key)
    with open(path, 'rb') as source_file:
      digest = hashlib.sha256(source_file.read()).hexdigest()
    parts.append(f'{SOURCE_FILENAMES[key]}:sha256={digest}')
  return ' '.join(parts)


def source_fingerprint(data: settings.DataSpec, missing_ok: bool = False) -> str:
  """What the ExampleGen's cache is keyed on: the image folder's files, the
  vendored files' bytes, or the TFDS dataset's name. With `missing_ok`, ''
  when files are missing (the executor then fails naming them)."""
  try:
    if data.image_dir is not None:
      return image_folder.fingerprint(data.image_dir)
    if data.source == settings.SOURCE_VENDORED:
      return fingerprint_source_dir(settings.vendored_source_dir(data))
  except (SourceError, image_folder.ImageFolderError):
    if missing_ok:
      return ''
    raise
  return f'tfds:{data.dataset}'


def read_checksums(source_dir: str) -> Dict[str, str]:
  """Reads ``SHA256SUMS`` (sha256sum format) of a directory, {} when absent."""
  path = os.path.join(source_dir, CHECKSUMS_FILENAME)
  if not os.path.isfile(path):
    return {}
  checksums = {}
  with open(path, encoding='utf-8') as checksum_file:
    for line_number, line in enumerate(checksum_file, start=1):
      if not line.strip():
        continue
      fields = line.split()
      if len(fields) != 2 or len(fields[0]) != 64:
        raise SourceError(
            f'{path}:{line_number}: expected "<sha256>  <filename>", got {line!r}')
      checksums[fields[1].lstrip('*')] = fields[0].lower()
  return checksums


@dataclasses.dataclass(frozen=True)
class IdxPair:
  """A validated pair of IDX files: images and their labels."""
  images_path: str
  labels_path: str
  num_examples: int


def _read_header(path: str, display_name: str, header_bytes: int) -> bytes:
  with open(path, 'rb') as idx_file:
    header = idx_file.read(header_bytes)
  if len(header) != header_bytes:
    raise SourceError(
        f'{display_name}: truncated: {len(header)} bytes, shorter than the '
        f'{header_bytes}-byte IDX header')
  return header


def _check_size(path: str, display_name: str, expected: int) -> None:
  actual = os.path.getsize(path)
  if actual != expected:
    problem = 'truncated' if actual < expected else 'has trailing bytes'
    raise SourceError(
        f'{display_name}: {problem}: {actual} bytes decompressed, the IDX '
        f'header promises {expected}')


def check_images_file(path: str, display_name: str, rows_columns) -> int:
  """Checks an IDX3 image file of images of `rows_columns` (height, width);
  returns its number of images."""
  header = _read_header(path, display_name, IMAGES_HEADER_BYTES)
  magic, count, rows, columns = struct.unpack('>IIII', header)
  if magic != IMAGES_MAGIC:
    raise SourceError(
        f'{display_name}: wrong magic number 0x{magic:08x} for an IDX image '
        f'file (expected 0x{IMAGES_MAGIC:08x})')
  if (rows, columns) != tuple(rows_columns):
    raise SourceError(
        f'{display_name}: images are {rows}x{columns}, expected '
        f'{rows_columns[0]}x{rows_columns[1]}')
  if count == 0:
    raise SourceError(f'{display_name}: holds no images')
  _check_size(path, display_name, IMAGES_HEADER_BYTES + count * rows * columns)
  return count


def check_labels_file(path: str, display_name: str, num_classes: int) -> int:
  """Checks an IDX1 label file (magic, size, values below `num_classes`);
  returns its count."""
  header = _read_header(path, display_name, LABELS_HEADER_BYTES)
  magic, count = struct.unpack('>II', header)
  if magic != LABELS_MAGIC:
    raise SourceError(
        f'{display_name}: wrong magic number 0x{magic:08x} for an IDX label '
        f'file (expected 0x{LABELS_MAGIC:08x})')
  _check_size(path, display_name, LABELS_HEADER_BYTES + count)
  with open(path, 'rb') as idx_file:
    idx_file.seek(LABELS_HEADER_BYTES)
    largest = max(idx_file.read(), default=0)
  if largest >= num_classes:
    raise SourceError(
        f'{display_name}: label {largest} outside 0..{num_classes - 1}')
  return count


def check_sha256(path: str, display_name: str, expected: Optional[str]) -> None:
  """Compares a decompressed file with its expected SHA-256, when known."""
  if expected is None:
    return
  with open(path, 'rb') as idx_file:
    actual = hashlib.sha256(idx_file.read()).hexdigest()
  if actual != expected:
    raise SourceError(
        f'{display_name}: SHA-256 of the decompressed bytes is {actual}, '
        f'{CHECKSUMS_FILENAME} expects {expected}')


def check_idx_pair(images_path: str, labels_path: str,
                   images_name: str, labels_name: str,
                   checksums: Dict[str, str], rows_columns,
                   num_classes: int) -> IdxPair:
  """Validates decompressed image and label IDX files against each other and
  the builder's features (image `rows_columns`, `num_classes`)."""
  num_images = check_images_file(images_path, images_name, rows_columns)
  num_labels = check_labels_file(labels_path, labels_name, num_classes)
  if num_images != num_labels:
    raise SourceError(
        f'{images_name} holds {num_images} images but {labels_name} holds '
        f'{num_labels} labels')
  for path, name in ((images_path, images_name), (labels_path, labels_name)):
    check_sha256(path, name, checksums.get(_strip_gz(os.path.basename(name))))
  return IdxPair(images_path, labels_path, num_images)


def _strip_gz(filename: str) -> str:
  return filename[:-3] if filename.endswith('.gz') else filename


class _VendoredIdx:
  """Mixin of a stock TFDS IDX builder reading gzipped IDX files from a local
  directory.

  Same features, splits and version as the stock builder; only the origin of
  the four files differs, so the stock checksums (which register the original
  archives' bytes) are replaced by the IDX checks of this module.
  """

  def __init__(self, *, source_dir: str, **kwargs):
    """Creates the builder.

    Args:
      source_dir: Directory holding the four ``*-ubyte.gz`` files.
      **kwargs: Passed to ``tfds.core.DatasetBuilder`` (``data_dir``, ...).
    """
    self._source_dir = os.fspath(source_dir)
    super().__init__(**kwargs)
    # DatasetBuilder pickles itself (for Beam workers) as its __init__
    # arguments: keep the source directory among them.
    self._original_state['source_dir'] = self._source_dir

  def _log_download_bytes(self) -> None:
    """Says which files are read, in place of TFDS's "Downloading and
    preparing dataset Unknown size" (nothing is downloaded)."""
    logging.info('Reading %s from %s: %s', self.STOCK_NAME, self._source_dir,
                 ', '.join(SOURCE_FILENAMES.values()))

  def _log_download_done(self) -> None:
    """Nothing: the stock "downloaded and prepared" line would be the second
    one about the same files."""

  def _split_generators(self, dl_manager):
    """Extracts and checks the local files; returns the stock splits."""
    check_source_files_exist(self._source_dir)
    checksums = read_checksums(self._source_dir)
    extracted = {}
    for key in SOURCE_FILENAMES:
      path = source_path(self._source_dir, key)
      try:
        extracted[key] = os.fspath(dl_manager.extract(path))
      except (extractor.ExtractError, OSError, EOFError, zlib.error) as error:
        raise SourceError(
            f'{path}: cannot be decompressed ({type(error).__name__}: '
            f'{error}); the file is corrupt or truncated') from error
    builder_features = self.info.features
    pairs = {
        split: check_idx_pair(
            extracted[f'{split}_data'], extracted[f'{split}_labels'],
            source_path(self._source_dir, f'{split}_data'),
            source_path(self._source_dir, f'{split}_labels'), checksums,
            builder_features['image'].shape[:2],
            builder_features['label'].num_classes)
        for split in ('train', 'test')
    }
    return [
        tfds.core.SplitGenerator(
            name=split_name,
            gen_kwargs=dict(
                num_examples=pairs[split].num_examples,
                data_path=pairs[split].images_path,
                label_path=pairs[split].labels_path,
            ),
        ) for split, split_name in (('train', tfds.Split.TRAIN),
                                    ('test', tfds.Split.TEST))
    ]

  def _generate_examples(self, num_examples, data_path, label_path):
    """The stock generator's examples (same keys, images, labels), with the
    images PNG-encoded in batches (see `encode_pngs`)."""
    images = tfds_mnist._extract_mnist_images(data_path, num_examples)  # pylint: disable=protected-access
    labels = tfds_mnist._extract_mnist_labels(label_path, num_examples)  # pylint: disable=protected-access
    for index, (png, label) in enumerate(zip(encode_pngs(images), labels.tolist())):
      yield index, {'image': png, 'label': label}


def encode_pngs(images: np.ndarray) -> Iterator[bytes]:
  """PNG-encodes images exactly as TFDS's ``Image`` feature does one at a time.

  TFDS's stock MNIST generator yields numpy images, and its ``Image`` feature
  encodes each with ``tf.image.encode_png`` (default compression) in one
  TensorFlow call per image, most of the time MNIST's prepare takes. The same op mapped over a ``tf.data`` pipeline in parallel,
  read back a batch at a time, gives the same bytes for a fraction of the
  calls; the feature stores bytes as they come (``encode_image_or_path``).

  Args:
    images: uint8 ``[count, height, width, channels]``.

  Yields:
    The PNG bytes of each image, in order.
  """
  dataset = (tf.data.Dataset.from_tensor_slices(images)
             .map(tf.io.encode_png, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)
             .batch(PNG_ENCODE_BATCH_SIZE))
  for batch in dataset.as_numpy_iterator():
    yield from batch.tolist()



class VendoredMnist(_VendoredIdx, tfds_mnist.MNIST):
  """TFDS's `mnist` from a local directory (registered `vendored_mnist`)."""
  STOCK_NAME = 'mnist'


class VendoredFashionMnist(_VendoredIdx, tfds_mnist.FashionMNIST):
  """TFDS's `fashion_mnist` from a local directory."""
  STOCK_NAME = 'fashion_mnist'


class VendoredKmnist(_VendoredIdx, tfds_mnist.KMNIST):
  """TFDS's `kmnist` from a local directory."""
  STOCK_NAME = 'kmnist'


# The vendored builder of each dataset of settings.VENDORED_DATASETS.
VENDORED_BUILDERS = {builder.STOCK_NAME: builder for builder in (
    VendoredMnist, VendoredFashionMnist, VendoredKmnist)}
assert tuple(VENDORED_BUILDERS) == settings.VENDORED_DATASETS



@contextlib.contextmanager
def _scratch_temporary_files():
  """Sends the temporary files made inside to a directory deleted after.

  A TFDS builder whose dataset is not prepared yet calls
  ``DatasetInfo.initialize_from_bucket`` in its ``__init__``, which makes a
  ``tempfile.mkdtemp("tfds")`` directory before it asks GCS for precomputed
  metadata and never removes it (tensorflow_datasets 4.9,
  ``core/dataset_info.py``): an empty ``/tmp/tmp*tfds`` per ingestion,
  thousands on a long-lived worker. Only `make_builder`'s construction runs
  inside; it starts no thread.
  """
  with tempfile.TemporaryDirectory(prefix='dae-tfds-builder-') as scratch:
    previous = tempfile.tempdir
    tempfile.tempdir = scratch
    try:
      yield
    finally:
      tempfile.tempdir = previous


def make_builder(data: settings.DataSpec,
                 data_dir: Optional[str]) -> tfds.core.DatasetBuilder:
  """Returns the TFDS builder of a data setting (see module docstring)."""
  with _scratch_temporary_files():
    if data.image_dir is not None:
      raise SourceError('an image folder has no TFDS builder: the ExampleGen '
                        'reads it by Beam (image_folder.IngestFolder)')
    if data.source == settings.SOURCE_VENDORED:
      return VENDORED_BUILDERS[data.dataset](
          source_dir=settings.vendored_source_dir(data), data_dir=data_dir)
    try:
      return tfds.builder(data.dataset, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
      raise SourceError(f'data.dataset {data.dataset!r} is not a TFDS dataset '
                        f'of this tensorflow_datasets: {error}') from None


def dataset_name(data: settings.DataSpec) -> str:
  """What a dataset is called: its TFDS name, or the image folder's name."""
  if data.image_dir is None:
    return data.dataset
  return os.path.basename(data.image_dir.rstrip('/')) or data.image_dir


def dataset_info(builder: tfds.core.DatasetBuilder,
                 name: str) -> dataset_info_lib.DatasetInfo:
  """What a builder's images are, from its features: the `image` feature's
  (height, width, channels) and the `label` ClassLabel's names (none: ()).

  Raises:
    SourceError: no `image` feature of a fixed (H, W, 1 or 3) shape, or one
      smaller than dataset_info.MIN_SIDE.
  """
  builder_features = builder.info.features
  image = builder_features['image'] if 'image' in builder_features else None
  shape = getattr(image, 'shape', None)
  if (not isinstance(image, tfds.features.Image) or len(shape) != 3 or
      None in shape or shape[2] not in dataset_info_lib.CHANNELS):
    raise SourceError(
        f'dataset {name!r} has no "image" feature of a fixed (height, width, '
        f'1 or 3) shape (image: {shape}), which this pipeline ingests')
  label = builder_features['label'] if 'label' in builder_features else None
  class_names = (tuple(label.names)
                 if isinstance(label, tfds.features.ClassLabel) else ())
  info = dataset_info_lib.DatasetInfo(name, shape, class_names)
  check_image_size(info)
  return info


def check_image_size(info: dataset_info_lib.DatasetInfo) -> None:
  """Refuses images too small for the evaluation (SSIM's window).

  Raises:
    SourceError: a side shorter than dataset_info.MIN_SIDE.
  """
  height, width = info.image_shape[:2]
  if min(height, width) < dataset_info_lib.MIN_SIDE:
    raise SourceError(
        f'dataset {info.name!r} has images of {height}x{width} (HxW); the '
        f'evaluation (SSIM) needs at least {dataset_info_lib.MIN_SIDE} pixels a '
        'side: set data.image_size=HxW to resize them')


def prepare(builder: tfds.core.DatasetBuilder, download_dir: str) -> None:
  """Runs ``download_and_prepare`` with downloads and extractions in a dir.

  TFDS reuses an extraction found at the same path whatever the archive's
  bytes now are, so callers pass a fresh ``download_dir`` for local sources.
  """
  builder.download_and_prepare(
      download_dir=download_dir,
      download_config=tfds.download.DownloadConfig(
          extract_dir=os.path.join(download_dir, 'extracted'),
          try_download_gcs=False))
