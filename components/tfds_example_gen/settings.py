"""The data settings: their one definition (fields, units, defaults, checks).

The ExampleGen's own value type (no TensorFlow import), which the CLI's
configuration takes whole as its `data` section (naming a refused field
`data.<field>`). The pipeline passes it to the ExampleGen as one
JSON execution property. Split sizes are checked against the dataset itself
when it is read (the executor's split plan): only the dataset knows them.
"""

import dataclasses
import math
import os
import re
from typing import Dict, Mapping, NamedTuple, Optional, Tuple

from components.common import setting_specs

SOURCE_VENDORED = 'vendored'  # IDX files in a directory, read by a TFDS builder.
SOURCE_TFDS = 'tfds'  # TFDS's own download (online), or a prepared data dir.
SOURCES = (SOURCE_VENDORED, SOURCE_TFDS)
SPLITS = ('train', 'eval', 'test')  # What the ExampleGen writes.
# The ExampleGen's execution property holding a DataSpec's JSON.
DATA_SPEC_KEY = 'data_spec'
# The TFDS datasets whose files are IDX like MNIST's: the vendored source
# reads them from a directory (components/tfds_example_gen/sources.py).
VENDORED_DATASETS = ('mnist', 'fashion_mnist', 'kmnist')
# The vendored source: four gzipped IDX files in a directory, keyed as TFDS's
# stock builders key them (mnist, fashion_mnist and kmnist name their files
# alike), and the IDX headers before their pixels / labels (TF-free here, so
# the benchmarks read the files with numpy alone).
SOURCE_FILENAMES = {
    'train_data': 'train-images-idx3-ubyte.gz',
    'train_labels': 'train-labels-idx1-ubyte.gz',
    'test_data': 't10k-images-idx3-ubyte.gz',
    'test_labels': 't10k-labels-idx1-ubyte.gz',
}
IDX_IMAGES_HEADER_BYTES = 16
IDX_LABELS_HEADER_BYTES = 8

# A TFDS name, optionally with a config and a version: 'cifar10',
# 'emnist/letters', 'mnist:3.0.1'.
_TFDS_NAME = re.compile(r'^[a-z][a-z0-9_]*(/[a-z0-9_.-]+)?(:[0-9.*]+)?$')
_IMAGE_SIZE = re.compile(r'^\s*(\d+)\s*[xX]\s*(\d+)\s*$')

# The project's root: <root>/components/tfds_example_gen/settings.py. In the
# container image that is its WORKDIR (/pipeline).
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class InvalidDataSpec(setting_specs.InvalidSetting):
  """A data setting is invalid; `field` names it."""

  KIND = 'data'


_require = InvalidDataSpec.require


def parse_image_size(text: str, field: str = 'image_size') -> Tuple[int, int]:
  """(height, width) of 'HxW', e.g. '32x32'.

  Raises:
    InvalidDataSpec: not two positive integers joined by 'x' (naming `field`).
  """
  match = _IMAGE_SIZE.match(text or '')
  _require(bool(match) and min(int(match[1]), int(match[2])) > 0, field,
           f'{text!r} is not HxW with positive integers, e.g. 32x32')
  return int(match[1]), int(match[2])


@dataclasses.dataclass(frozen=True)
class DataSpec(setting_specs.JsonSpec):
  """Which images are ingested and how they are split.

  Attributes:
    dataset: A TFDS image dataset ('mnist', 'fashion_mnist', 'cifar10', ...).
      Ignored when `image_dir` is set.
    source: 'vendored' (the dataset's IDX files in `source_dir`, offline:
      only for mnist, fashion_mnist and kmnist) or 'tfds' (TFDS's download,
      online, or what is already prepared in `tfds_data_dir`).
    source_dir: Directory of the four gzipped IDX files of the vendored
      source; None: `data/<dataset>` in the project.
    tfds_data_dir: Where TFDS prepares the dataset. None: a fresh temporary
      directory per run for the vendored source and image folders, TFDS's
      default directory for the 'tfds' source.
    image_dir: A folder of PNG/JPEG images to ingest instead of a TFDS
      dataset: its subfolders are the classes (labels, per-class slices); a
      folder of images alone has no labels.
    image_size: 'HxW': resize every image of `image_dir` to it. None: the
      images must share one size (the first that differs is named), unless
      `patch_size` is set.
    patch_size: 'HxW': train on seeded random crops of this size from the
      images of `image_dir`, which may then be of any sizes (none is
      resized, which would change the very noise a denoiser learns): the
      train split keeps each image whole with its size, and the Trainer
      crops it anew every epoch; each eval and test image is cut to its
      centre patch here, so the evaluation is the same every run. An image
      smaller than the patch is a bad image (`max_bad_images`). The model
      trains on patches and serves images of any size.
    train_examples: Images of the `train` split. A TFDS dataset: the head of
      its train split (None: all of it but `eval`). An image folder: at most
      this many of its train images (None: all).
    eval_examples: Images of the `eval` split. A TFDS dataset: the tail of its
      train split, never overlapping `train` (None: `eval_percent` of it). An
      image folder: at most this many (None: all).
    test_examples: Images of the `test` split (None: all): the head of a TFDS
      dataset's test split, or an image folder's test images.
    eval_percent: Percent of the images that make the `eval` split when
      `eval_examples` is None (of a TFDS train split), or of an image folder.
    test_percent: Percent of an image folder's images in the `test` split.
    split_seed: Seed of an image folder's split. Each image's split is a hash
      of the seed and its path in the folder, so adding images moves none.
    max_bad_images: Images of `image_dir` that may be bad (not a readable
      8-bit PNG/JPEG, or of another size than the first without
      `image_size`) and are skipped, each named in the log and their count
      in the report; one more stops the run naming the first. 0: the first
      bad image stops it.
  """
  dataset: str = 'mnist'
  source: str = SOURCE_VENDORED
  source_dir: Optional[str] = None
  tfds_data_dir: Optional[str] = None
  image_dir: Optional[str] = None
  image_size: Optional[str] = None
  patch_size: Optional[str] = None
  train_examples: Optional[int] = None
  eval_examples: Optional[int] = None
  test_examples: Optional[int] = None
  eval_percent: float = 10.0
  test_percent: float = 10.0
  split_seed: int = 0
  max_bad_images: int = 0

  def __post_init__(self):
    if self.image_dir is None:
      _require(bool(_TFDS_NAME.match(self.dataset or '')), 'dataset',
               f'{self.dataset!r} is not a TFDS dataset name (e.g. mnist, '
               'fashion_mnist, cifar10)')
      _require(self.source in SOURCES, 'source',
               f'{self.source!r} is not one of {", ".join(SOURCES)}')
      _require(self.source != SOURCE_VENDORED or self.dataset in VENDORED_DATASETS,
               'source', f'the vendored source reads IDX files, which only '
               f'{", ".join(VENDORED_DATASETS)} have; use source=tfds for '
               f'{self.dataset!r}')
      for name in ('image_size', 'patch_size'):
        _require(getattr(self, name) is None, name,
                 'applies to the images of image_dir; image_dir is not set')
    else:
      _require(bool(self.image_dir.strip()), 'image_dir', 'must not be empty')
      if self.image_size is not None:
        parse_image_size(self.image_size)
      if self.patch_size is not None:
        _require(self.image_size is None, 'patch_size',
                 'takes patches of images of any size; image_size resizes '
                 'them to one: set one of the two')
        parse_image_size(self.patch_size, 'patch_size')
    for name in ('train_examples', 'eval_examples', 'test_examples'):
      value = getattr(self, name)
      _require(value is None or value > 0, name,
               f'must be a positive number of images or None, got {value}')
    _require(self.max_bad_images >= 0, 'max_bad_images',
             f'must be >= 0, got {self.max_bad_images}')
    for name in ('eval_percent', 'test_percent'):
      value = getattr(self, name)
      _require(math.isfinite(value) and 0 < value < 100, name,
               f'must be a percentage between 0 and 100, got {value}')
    _require(self.eval_percent + self.test_percent < 100, 'test_percent',
             f'eval_percent + test_percent = '
             f'{self.eval_percent + self.test_percent} leaves no train images')


class Patches(NamedTuple):
  """The size of the patches of an image folder (DataSpec's patch_size)."""
  height: int
  width: int


def patches(data: 'DataSpec') -> Optional[Patches]:
  """The patches of `data`; None: images of one size."""
  if data.patch_size is None:
    return None
  return Patches(*parse_image_size(data.patch_size, 'patch_size'))


def default_source_dir(dataset: str = 'mnist') -> str:
  """Where the vendored source of a dataset lives in the project."""
  return os.path.join(PROJECT_ROOT, 'data', dataset)


def vendored_source_dir(data: DataSpec) -> str:
  """The directory the vendored source reads: `source_dir` (a relative one is
  inside the project, the same path locally and in the container image), or
  the dataset's directory in the project."""
  if data.source_dir is None:
    return default_source_dir(data.dataset)
  return os.path.join(PROJECT_ROOT, data.source_dir)  # An absolute one stays.


class SplitPlanError(ValueError):
  """The requested splits do not fit the dataset."""


class SplitSlice(NamedTuple):
  """One output split: the TFDS split spec it reads and its number of images."""
  pattern: str
  size: int


def plan_splits(data: DataSpec, lengths: Mapping[str, int],
                name: str) -> Dict[str, SplitSlice]:
  """The one split plan: each output split's TFDS slice of the dataset.

  A TFDS dataset: `train` is the head of its train split (`train_examples`,
  None: all but `eval`), `eval` its tail (`eval_examples`, None:
  `eval_percent` of it), `test` the head of its test split (`test_examples`,
  None: all). (An image folder's splits are its images' path hashes:
  image_folder.assign_splits.)

  Args:
    data: The data settings.
    lengths: Number of images of each split of the prepared dataset.
    name: The dataset's name, for errors.

  Raises:
    SplitPlanError: the settings ask for more images than the dataset has
      (naming the settings and the dataset's sizes), or it lacks a split.
  """
  for split in ('train', 'test'):
    if split not in lengths:
      raise SplitPlanError(f'dataset {name!r} has no {split!r} split (its '
                           f'splits: {", ".join(sorted(lengths))})')
  available, test_available = lengths['train'], lengths['test']
  evaluation = data.eval_examples or round(available * data.eval_percent / 100)
  if evaluation < 1:
    raise SplitPlanError(
        f'data.eval_percent={data.eval_percent} of the {available} train '
        f'images of {name!r} is no image; set data.eval_examples')
  if data.train_examples is None and evaluation >= available:
    raise SplitPlanError(
        f'data.eval_examples ({evaluation}) leaves none of the {available} '
        f'train images of {name!r} for the train split')
  train = data.train_examples or available - evaluation
  if train + evaluation > available:
    raise SplitPlanError(
        f'data.train_examples ({train}) + data.eval_examples ({evaluation}) '
        f'= {train + evaluation} images, but the train split of {name!r} '
        f'holds {available}')
  test = data.test_examples or test_available
  if test > test_available:
    raise SplitPlanError(
        f'data.test_examples ({test}) exceeds the {test_available} images of '
        f'the test split of {name!r}')
  return {
      'train': SplitSlice(f'train[:{train}]', train),
      'eval': SplitSlice(f'train[-{evaluation}:]', evaluation),
      'test': SplitSlice('test' if data.test_examples is None
                         else f'test[:{test}]', test),
  }
