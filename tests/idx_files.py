"""Tiny IDX files of a vendored dataset (mnist, fashion_mnist, kmnist) made by
the tests (never the real dataset)."""

import dataclasses
import gzip
import hashlib
import os
import struct
from typing import Dict, Optional

import numpy as np

from components.tfds_example_gen import settings
from components.tfds_example_gen import sources


@dataclasses.dataclass
class TinyIdx:
  """A directory of four gzipped IDX files and the arrays written into it."""
  directory: str
  train_images: np.ndarray  # uint8 [N, height, width]
  train_labels: np.ndarray  # uint8 [N]
  test_images: np.ndarray
  test_labels: np.ndarray

  def path(self, key: str) -> str:
    return sources.source_path(self.directory, key)


def images_idx(images: np.ndarray, magic: int = sources.IMAGES_MAGIC) -> bytes:
  count, rows, columns = images.shape
  return struct.pack('>IIII', magic, count, rows, columns) + images.tobytes()


def labels_idx(labels: np.ndarray, magic: int = sources.LABELS_MAGIC) -> bytes:
  return struct.pack('>II', magic, len(labels)) + labels.tobytes()


def write_gz(path: str, payload: bytes) -> None:
  with open(path, 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as gz:
    gz.write(payload)


def make_tiny_mnist(directory: str, **kwargs) -> TinyIdx:
  """make_tiny_idx of MNIST."""
  return make_tiny_idx(directory, 'mnist', **kwargs)


def make_tiny_idx(directory: str, dataset: str, num_train: int = 120,
                  num_test: int = 40, seed: int = 0,
                  with_checksums: bool = True) -> TinyIdx:
  """Writes digit-like images of a vendored dataset's image size, with
  labels cycling through its classes (every class present)."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  stock = sources.make_builder(
      settings.DataSpec(dataset=dataset, source_dir=directory),
      os.path.join(directory, 'unused')).info.features
  rows, columns = stock['image'].shape[:2]
  num_classes = stock['label'].num_classes

  def images(count):
    """Digit-like: black background, a few bright strokes; unique per index."""
    canvas = np.zeros((count, rows, columns), dtype=np.uint8)
    for index in range(count):
      for _ in range(rng.integers(1, 4)):
        row, column = rng.integers(4, 20, size=2)
        length, width = rng.integers(6, 12), rng.integers(2, 4)
        if rng.random() < 0.5:
          canvas[index, row:row + width, column:column + length] = rng.integers(180, 256)
        else:
          canvas[index, row:row + length, column:column + width] = rng.integers(180, 256)
      canvas[index, 0, 0], canvas[index, 0, 1] = index % 256, index // 256
    return canvas

  def labels(count):
    return (np.arange(count) % num_classes).astype(np.uint8)

  tiny = TinyIdx(directory, images(num_train), labels(num_train),
                   images(num_test), labels(num_test))
  payloads: Dict[str, bytes] = {
      'train_data': images_idx(tiny.train_images),
      'train_labels': labels_idx(tiny.train_labels),
      'test_data': images_idx(tiny.test_images),
      'test_labels': labels_idx(tiny.test_labels),
  }
  for key, payload in payloads.items():
    write_gz(tiny.path(key), payload)
  if with_checksums:
    with open(os.path.join(directory, sources.CHECKSUMS_FILENAME), 'w') as sums:
      for key, payload in payloads.items():
        name = sources.SOURCE_FILENAMES[key][:-3]
        sums.write(f'{hashlib.sha256(payload).hexdigest()}  {name}\n')
  return tiny


def rewrite(tiny: TinyIdx, key: str, payload: bytes,
            compressed: Optional[bool] = True) -> None:
  """Replaces one source file by `payload` (gzipped unless compressed=False)."""
  if compressed:
    write_gz(tiny.path(key), payload)
  else:
    with open(tiny.path(key), 'wb') as raw:
      raw.write(payload)
