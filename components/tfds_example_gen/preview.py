"""The image shape the ExampleGen will record, known before it runs.

Runners check it against the model served in the serving dir before the
first component (a model of another shape cannot be the baseline, and the
Evaluator would refuse it only after ingestion and training). Each source is
read as cheaply as it can tell: an IDX file's header, a TFDS builder's
features, an image folder's first image's header (or `data.image_size`).
"""

import gzip
import struct
from typing import NamedTuple, Optional

from apache_beam.io import filesystem
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from components.tfds_example_gen import image_folder
from components.tfds_example_gen import settings
from components.tfds_example_gen import sources


class ShapePreview(NamedTuple):
  """The images' (height, width, channels); channels None where only every
  image can tell (a folder whose first image is grey may hold colour ones)."""
  height: int
  width: int
  channels: Optional[int]

  def differs_from(self, shape) -> bool:
    """Whether images of this preview can not be of `shape` (H, W, C)."""
    return ((self.height, self.width) != tuple(shape[:2]) or
            self.channels not in (None, shape[2]))

  def __str__(self) -> str:
    channels = '?' if self.channels is None else self.channels
    return f'{self.height}x{self.width}x{channels}'


def _vendored(data: settings.DataSpec) -> ShapePreview:
  """From the header of the vendored train images' IDX file."""
  path = sources.source_path(settings.vendored_source_dir(data), 'train_data')
  with gzip.open(path, 'rb') as idx_file:
    header = idx_file.read(settings.IDX_IMAGES_HEADER_BYTES)
  _, _, rows, columns = struct.unpack('>IIII', header)
  return ShapePreview(rows, columns, 1)


def _tfds(data: settings.DataSpec) -> ShapePreview:
  """From the TFDS builder's image feature (defined in its code)."""
  builder = sources.make_builder(data, data.tfds_data_dir)
  return ShapePreview(*sources.dataset_info(
      builder, sources.dataset_name(data)).image_shape)


def _folder(data: settings.DataSpec) -> ShapePreview:
  """`data.image_size` or `patch_size`, else the first image's size; its
  channels only when it is in colour (one colour image makes the whole
  dataset RGB)."""
  layout = image_folder.list_images(data.image_dir)
  path = FileSystems.join(image_folder.folder_uri(data.image_dir), layout.paths[0])
  with FileSystems.open(path, compression_type=(
      filesystem.CompressionTypes.UNCOMPRESSED)) as image_file:
    image = Image.open(image_file)  # Reads the header alone.
    width, height = image.size
    grey = image.mode in image_folder.GREY_MODES
  if data.image_size or data.patch_size:
    height, width = settings.parse_image_size(data.image_size or data.patch_size)
  return ShapePreview(height, width, None if grey else 3)


def image_shape(data: settings.DataSpec) -> Optional[ShapePreview]:
  """The shape of the images the ExampleGen will record for `data`; None
  when the source cannot tell before it is read (unreadable, missing, not
  an image dataset): the ExampleGen then names the problem itself."""
  try:
    if data.image_dir is not None:
      return _folder(data)
    if data.source == settings.SOURCE_VENDORED:
      return _vendored(data)
    return _tfds(data)
  except Exception:  # pylint: disable=broad-except
    return None
