"""A folder of PNG/JPEG images as a TFDS dataset (the `data.image_dir` source).

TFDS's own ``ImageFolder`` wants split subfolders (``train/``, ``test/``) and
images of any size; here the folder's layout is only its classes, so this is
a small GeneratorBasedBuilder of the same kind:

* class subfolders (``<dir>/<class>/**/<image>``): ``label`` is a
  ``ClassLabel`` of the sorted folder names; a folder of images alone
  (``<dir>/<image>``) has no ``label`` feature.
* One image size for all: the first image's (sorted paths), or
  ``image_size`` ('HxW') to which every other size is resized; without it a
  differing image is refused by name. Channels: 1 when every image is grey,
  else 3 (RGB; palette and alpha images converted).
* Splits ``train``/``eval``/``test``: each image by a hash of the split seed
  and its path in the folder against ``eval_percent``/``test_percent``, so
  adding images moves none of the others.

Files are read through ``tf.io.gfile`` (a folder may be a bucket).
"""

import dataclasses
import hashlib
import io
import os
import posixpath
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_datasets as tfds

from components.tfds_example_gen import settings

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
SPLITS = settings.SPLITS
# PIL modes of grey images (one channel once converted to 'L').
GREY_MODES = ('1', 'L', 'LA')
# PIL modes of more than 8 bits a value, which converting to 8 bits would clip.
DEEP_MODES = ('I', 'F')


class ImageFolderError(ValueError):
  """An image folder cannot be ingested (no images, mixed sizes, ...)."""


@dataclasses.dataclass(frozen=True)
class Layout:
  """The images of a folder: relative paths (sorted) and class names."""
  paths: Tuple[str, ...]
  class_names: Tuple[str, ...]  # () for a folder of images alone.

  def label(self, path: str) -> int:
    """The label of a labelled folder's image: its class folder's index."""
    return self.class_names.index(path.split('/', 1)[0])


def _is_image(name: str) -> bool:
  """PNG/JPEG by extension; hidden files (macOS's `._x.jpg`) are not images."""
  return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.')


def _is_hidden(relative_directory: str) -> bool:
  """A folder under a hidden one (`.ipynb_checkpoints/`, `.git/`) is no class."""
  return any(part.startswith('.') for part in relative_directory.split('/')
             if part not in ('', '.'))


def list_images(image_dir: str) -> Layout:
  """The images of a folder and, when they sit in subfolders, its classes.

  Raises:
    ImageFolderError: the folder holds no PNG/JPEG image, or holds images both
      beside and inside subfolders.
  """
  paths = []
  for directory, _, files in tf.io.gfile.walk(image_dir):
    relative = os.path.relpath(directory, image_dir).replace(os.sep, '/')
    if _is_hidden(relative):
      continue
    paths.extend(name if relative == '.' else f'{relative}/{name}'
                 for name in files if _is_image(name))
  paths.sort()
  if not paths:
    raise ImageFolderError(f'data.image_dir {image_dir!r} holds no PNG or JPEG '
                           'image')
  nested = [path for path in paths if '/' in path]
  if nested and len(nested) != len(paths):
    loose = next(path for path in paths if '/' not in path)
    raise ImageFolderError(
        f'data.image_dir {image_dir!r} holds images both in class subfolders '
        f'and beside them ({loose}); put every image in a class folder, or '
        'none')
  class_names = tuple(sorted({path.split('/', 1)[0] for path in nested}))
  return Layout(tuple(paths), class_names)


def fingerprint(image_dir: str) -> str:
  """The folder's images as relative paths and SHA-256 of their bytes: any
  edited, added, removed or renamed image changes it."""
  digest = hashlib.sha256()
  for path in list_images(image_dir).paths:
    with tf.io.gfile.GFile(posixpath.join(image_dir, path), 'rb') as image_file:
      digest.update(f'{path}\0{hashlib.sha256(image_file.read()).hexdigest()}\n'
                    .encode())
  return f'image_dir:sha256={digest.hexdigest()}'


def split_of(path: str, split_seed: int, eval_percent: float,
             test_percent: float) -> str:
  """The split of one image, from a hash of the seed and its path alone."""
  digest = hashlib.sha256(f'{split_seed}\0{path}'.encode()).digest()
  position = int.from_bytes(digest[:8], 'big') / 2**64 * 100  # [0, 100)
  if position < test_percent:
    return 'test'
  if position < test_percent + eval_percent:
    return 'eval'
  return 'train'


def _open(image_dir: str, path: str, header_only: bool = False) -> Image.Image:
  """One image of the folder (its pixels read unless `header_only`).

  Raises:
    ImageFolderError: the file is not a readable 8-bit PNG/JPEG (named).
  """
  with tf.io.gfile.GFile(posixpath.join(image_dir, path), 'rb') as image_file:
    data = image_file.read()
  try:
    image = Image.open(io.BytesIO(data))
    if not header_only:
      image.load()
  except (OSError, ValueError, Image.DecompressionBombError) as error:
    raise ImageFolderError(f'data.image_dir: {path} is not a readable PNG or '
                           f'JPEG image ({error})') from None
  if image.mode.split(';')[0] in DEEP_MODES:
    raise ImageFolderError(
        f'data.image_dir: {path} has more than 8 bits per value (mode '
        f'{image.mode}); only 8-bit grey or colour images are read')
  return image


def image_shape(image_dir: str, paths: Sequence[str],
                image_size: Optional[str]) -> Tuple[int, int, int]:
  """(height, width, channels) of the folder's images once ingested.

  Raises:
    ImageFolderError: without `image_size`, an image's size differs from the
      first's (both named).
  """
  first_size, grey = None, True
  for path in paths:
    image = _open(image_dir, path, header_only=True)
    size, mode = image.size, image.mode
    grey = grey and mode in GREY_MODES
    if first_size is None:
      first_size = size
    elif size != first_size and image_size is None:
      raise ImageFolderError(
          f'data.image_dir: {path} is {size[1]}x{size[0]} (HxW) but '
          f'{paths[0]} is {first_size[1]}x{first_size[0]}; set '
          'data.image_size=HxW to resize them to one size')
  height, width = (settings.parse_image_size(image_size) if image_size
                   else (first_size[1], first_size[0]))
  return height, width, 1 if grey else 3


def read_image(image_dir: str, path: str,
               shape: Tuple[int, int, int]) -> np.ndarray:
  """One image as uint8 [height, width, channels], resized to `shape`."""
  image = _open(image_dir, path)
  image = image.convert('L' if shape[2] == 1 else 'RGB')
  if image.size != (shape[1], shape[0]):
    image = image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
  return np.asarray(image, dtype=np.uint8).reshape(shape)


class ImageFolderBuilder(tfds.core.GeneratorBasedBuilder):
  """A folder of images as a TFDS dataset with train/eval/test splits."""

  VERSION = tfds.core.Version('1.0.0')

  def __init__(self, *, image_dir: str, image_size: Optional[str] = None,
               eval_percent: float = 10.0, test_percent: float = 10.0,
               split_seed: int = 0, **kwargs):
    """Lists and sizes the images (TFDS asks for the features in __init__).

    Args:
      image_dir: The folder (see module docstring).
      image_size: 'HxW' to resize every image to; None: one size for all.
      eval_percent: Percent of the images in `eval`.
      test_percent: Percent of the images in `test`.
      split_seed: Seed of each image's split.
      **kwargs: Passed to ``tfds.core.DatasetBuilder`` (``data_dir``, ...).

    Raises:
      ImageFolderError: see `list_images`, `image_shape`; or a split would
        be empty.
    """
    self._image_dir = image_dir
    self._layout = list_images(image_dir)
    self._shape = image_shape(image_dir, self._layout.paths, image_size)
    self._split_paths = self._assign_splits(split_seed, eval_percent,
                                            test_percent)
    super().__init__(**kwargs)
    # DatasetBuilder pickles itself (for Beam workers) as its __init__
    # arguments: keep this builder's among them.
    self._original_state.update(
        image_dir=image_dir, image_size=image_size, eval_percent=eval_percent,
        test_percent=test_percent, split_seed=split_seed)

  def _assign_splits(self, split_seed: int, eval_percent: float,
                     test_percent: float) -> Dict[str, List[str]]:
    split_paths = {split: [] for split in SPLITS}
    for path in self._layout.paths:
      split_paths[split_of(path, split_seed, eval_percent,
                           test_percent)].append(path)
    for split, paths in split_paths.items():
      if not paths:
        raise ImageFolderError(
            f'data.image_dir: its {len(self._layout.paths)} images leave the '
            f'{split!r} split empty (data.eval_percent={eval_percent}, '
            f'data.test_percent={test_percent}, data.split_seed={split_seed}); '
            'add images or change those settings')
    return split_paths

  def _info(self) -> tfds.core.DatasetInfo:
    features = {'image': tfds.features.Image(shape=self._shape)}
    if self._layout.class_names:
      features['label'] = tfds.features.ClassLabel(
          names=self._layout.class_names)
    return tfds.core.DatasetInfo(
        builder=self, description=f'The images of {self._image_dir}.',
        features=tfds.features.FeaturesDict(features))

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(paths)
            for split, paths in self._split_paths.items()}

  def _generate_examples(self, paths):
    for path in paths:
      example = {'image': read_image(self._image_dir, path, self._shape)}
      if self._layout.class_names:
        example['label'] = self._layout.label(path)
      yield path, example
