"""A folder of PNG/JPEG images as tf.Examples, in one Beam job (`data.image_dir`).

The folder's layout is only its classes:

* class subfolders (``<dir>/<class>/**/<image>``): ``label`` is the index of
  the image's class folder among the sorted folder names; a folder of images
  alone (``<dir>/<image>``) has no ``label``.
* One image size for all: the first image's (sorted paths), or
  ``image_size`` ('HxW') to which every image is resized; without it an
  image of another size is a bad image naming both. Or ``patch_size``: images
  of any sizes, none resized. A train image is kept whole (its pixels of
  any length, with ``height`` and ``width``), so that the Trainer crops it
  anew every epoch (components/trainer/data.py) rather than seeing the same
  patches each time; an eval or test image is cut to its centre patch here
  (`centre_corner`), so that everything that evaluates (TFMA, the report,
  the serving check) keeps examples of one shape and figures that compare
  across runs. Every example then carries ``height`` and ``width``, so that
  the schema inferred from the train split finds them in every split.
  Channels: 1 when every image is grey, else 3 (RGB; palette and alpha
  images converted).
* Splits ``train``/``eval``/``test``: each image by a hash of the split seed
  and its path in the folder against ``eval_percent``/``test_percent``, so
  adding images moves none of the others; a split's cap keeps the images of
  the smallest such hashes.

The listing (Beam's filesystems: one list call, with sizes and modification
times) is all that is known before the job: it names the images, their
classes and splits, and its digest keys the ExampleGen's cache. The job reads
each image once, in parallel on any Beam runner: decode, convert, resize,
then (once every image's mode and the first image's size are known, as side
inputs) check the size, serialize and write each split. A bad image (not a
readable 8-bit PNG/JPEG, or of another size) is named and counted;
`data.max_bad_images` says how many are skipped before the run stops.
"""

import dataclasses
import hashlib
import io
import json
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io import filesystem
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
import numpy as np
from PIL import Image

from components.common import example_bytes
from components.common import names
from components.common import progress
from components.common import tfrecord_sink
from components.tfds_example_gen import settings

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
SPLITS = settings.SPLITS
# PIL modes of grey images (one channel once converted to 'L').
GREY_MODES = ('1', 'L', 'LA')
# PIL modes of more than 8 bits a value, which converting to 8 bits would clip.
DEEP_MODES = ('I', 'F')
# Images serialized per call (example_bytes.serialize is vectorised).
SERIALIZE_BATCH = 256
# The Beam output tag of bad images: (path, reason).
BAD = 'bad'


class ImageFolderError(ValueError):
  """An image folder cannot be ingested (no images, mixed sizes, ...)."""


@dataclasses.dataclass(frozen=True)
class Layout:
  """The images of a folder: relative paths (sorted), class names, and what
  the listing says of each (bytes, modification time) for the fingerprint."""
  paths: Tuple[str, ...]
  class_names: Tuple[str, ...]  # () for a folder of images alone.
  sizes: Tuple[int, ...] = ()
  modified: Tuple[float, ...] = ()

  def label(self, path: str) -> int:
    """The label of a labelled folder's image: its class folder's index."""
    return self.class_names.index(path.split('/', 1)[0])


def _is_listed_image(relative: str) -> bool:
  """PNG/JPEG by extension, under no hidden file or folder (macOS's
  `._x.jpg`, `.ipynb_checkpoints/`, `.git/`)."""
  return (relative.lower().endswith(IMAGE_EXTENSIONS)
          and not any(part.startswith('.') for part in relative.split('/')))


def folder_uri(image_dir: str) -> str:
  """The folder as Beam's filesystems name it (a local one made absolute)."""
  if FileSystems.get_scheme(image_dir) is None:
    return os.path.abspath(image_dir)
  return image_dir.rstrip('/')


def list_images(image_dir: str) -> Layout:
  """The images of a folder and, when they sit in subfolders, its classes.

  Raises:
    ImageFolderError: the folder holds no PNG/JPEG image, or holds images both
      beside and inside subfolders.
  """
  folder = folder_uri(image_dir)
  prefix = folder + '/'
  try:
    listed = FileSystems.match([FileSystems.join(folder, '**')])[0].metadata_list
  except (OSError, BeamIOError):
    listed = []
  entries = sorted((metadata.path[len(prefix):], metadata)
                   for metadata in listed if metadata.path.startswith(prefix))
  entries = [(path, metadata) for path, metadata in entries
             if _is_listed_image(path)]
  if not entries:
    raise ImageFolderError(f'data.image_dir {image_dir!r} holds no PNG or JPEG '
                           'image')
  paths = tuple(path for path, _ in entries)
  nested = [path for path in paths if '/' in path]
  if nested and len(nested) != len(paths):
    loose = next(path for path in paths if '/' not in path)
    raise ImageFolderError(
        f'data.image_dir {image_dir!r} holds images both in class subfolders '
        f'and beside them ({loose}); put every image in a class folder, or '
        'none')
  return Layout(
      paths, tuple(sorted({path.split('/', 1)[0] for path in nested})),
      tuple(metadata.size_in_bytes for _, metadata in entries),
      tuple(metadata.last_updated_in_seconds for _, metadata in entries))


def fingerprint(image_dir: str) -> str:
  """The folder's listing: relative paths, sizes and modification times. An
  image edited, added, removed or renamed changes it, and it reads no image
  (an object store's listing carries both)."""
  layout = list_images(image_dir)
  digest = hashlib.sha256()
  for path, size, modified in zip(layout.paths, layout.sizes, layout.modified):
    digest.update(f'{path}\0{size}\0{modified!r}\n'.encode())
  return f'image_dir:listing-sha256={digest.hexdigest()}'


def _position(path: str, split_seed: int) -> float:
  """Where an image falls in [0, 100): a hash of the seed and its path."""
  digest = hashlib.sha256(f'{split_seed}\0{path}'.encode()).digest()
  return int.from_bytes(digest[:8], 'big') / 2**64 * 100


def split_of(path: str, split_seed: int, eval_percent: float,
             test_percent: float) -> str:
  """The split of one image, from a hash of the seed and its path alone."""
  position = _position(path, split_seed)
  if position < test_percent:
    return 'test'
  if position < test_percent + eval_percent:
    return 'eval'
  return 'train'


def assign_splits(layout: Layout, data: settings.DataSpec) -> Dict[str, List[str]]:
  """Each split's images (sorted), at most `<split>_examples` of them.

  Raises:
    ImageFolderError: a split would be empty.
  """
  split_paths = {split: [] for split in SPLITS}
  for path in layout.paths:
    split_paths[split_of(path, data.split_seed, data.eval_percent,
                         data.test_percent)].append(path)
  for split, paths in split_paths.items():
    if not paths:
      raise ImageFolderError(
          f'data.image_dir: its {len(layout.paths)} images leave the '
          f'{split!r} split empty (data.eval_percent={data.eval_percent}, '
          f'data.test_percent={data.test_percent}, data.split_seed='
          f'{data.split_seed}); add images or change those settings')
    cap = getattr(data, f'{split}_examples')
    if cap is not None and cap < len(paths):
      kept = sorted(paths, key=lambda path: _position(path, data.split_seed))[:cap]
      split_paths[split] = sorted(kept)
  return split_paths


def _reason(error: BaseException) -> str:
  """Why PIL could not read an image, in words (no object reprs)."""
  if isinstance(error, Image.UnidentifiedImageError):
    return 'not a PNG or JPEG image'
  text = str(error).split('\n')[0]
  return text or type(error).__name__


def decode(path: str, contents: bytes,
           size: Optional[Tuple[int, int]]) -> np.ndarray:
  """One image's pixels, uint8 [height, width, 1 (grey) or 3], resized to
  `size` (height, width) when given.

  Raises:
    ImageFolderError: not a readable 8-bit PNG/JPEG (named), a body cut off
      included (PIL's `load` refuses it rather than fill it in).
  """
  try:
    image = Image.open(io.BytesIO(contents))
    image.load()
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
    raise ImageFolderError(f'data.image_dir: {path} is not a readable PNG or '
                           f'JPEG image ({_reason(error)})') from None
  if image.mode.split(';')[0] in DEEP_MODES:
    raise ImageFolderError(
        f'data.image_dir: {path} has more than 8 bits per value (mode '
        f'{image.mode}); only 8-bit grey or colour images are read')
  grey = image.mode in GREY_MODES
  # Resizing a grey image then repeating its channel gives what resizing its
  # RGB conversion gives: the filter works on each channel alone.
  image = image.convert('L' if grey else 'RGB')
  if size is not None and image.size != (size[1], size[0]):
    image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
  pixels = np.asarray(image, dtype=np.uint8)
  return pixels[:, :, np.newaxis] if grey else pixels


@dataclasses.dataclass(frozen=True)
class _Decoded:
  """An image read and decoded by the job."""
  path: str
  split: str
  label: Optional[int]
  pixels: np.ndarray


class _ReadImage(beam.DoFn):
  """Reads and decodes one image (through Beam's filesystems); a bad one
  goes to the `BAD` output with its reason."""

  def __init__(self, folder: str, size: Optional[Tuple[int, int]]):
    self._folder = folder
    self._size = size

  def process(self, element: Tuple[str, str, Optional[int]]) -> Iterable:
    path, split, label = element
    try:
      with FileSystems.open(FileSystems.join(self._folder, path),
                            compression_type=filesystem.CompressionTypes.UNCOMPRESSED
                            ) as image_file:
        contents = image_file.read()
      yield _Decoded(path, split, label, decode(path, contents, self._size))
    except ImageFolderError as error:
      yield beam.pvalue.TaggedOutput(BAD, (path, str(error)))
    except (OSError, BeamIOError) as error:
      yield beam.pvalue.TaggedOutput(
          BAD, (path, f'data.image_dir: {path} cannot be read ({_reason(error)})'))


def _first(paths_and_sizes):
  """The (path, (height, width)) of the first path; None for none (Beam
  combines partial results too, an empty bundle's None among them). Not
  annotated: Beam would take the hints as the combine's element types."""
  return min((entry for entry in paths_and_sizes if entry is not None),
             default=None)


def centre_corner(size: Tuple[int, int],
                  patches: settings.Patches) -> Tuple[int, int]:
  """The (top, left) of the centre patch of an image of `size` (height,
  width): an eval or test image's one patch, the same every run."""
  return (size[0] - patches.height) // 2, (size[1] - patches.width) // 2


class _Finish(beam.DoFn):
  """Gives an image the dataset's channels and its size: checks it against
  the first image's (without `image_size`), or (`patch_size`) keeps a train
  image whole and cuts an eval or test image to its centre patch; an image
  of another size, or smaller than the patch, is bad."""

  def __init__(self, patches: Optional[settings.Patches]):
    self._patches = patches

  def _size_problem(self, image: _Decoded,
                    first: Tuple[str, Tuple[int, int]]) -> Optional[str]:
    """Why the image's size does not do, or None."""
    (height, width), patches = image.pixels.shape[:2], self._patches
    if patches is not None:
      if height < patches.height or width < patches.width:
        return (f'data.image_dir: {image.path} is {height}x{width} (HxW), '
                f'smaller than data.patch_size={patches.height}x{patches.width}')
      return None
    first_path, (first_height, first_width) = first
    if (height, width) != (first_height, first_width):
      return (f'data.image_dir: {image.path} is {height}x{width} (HxW) but '
              f'{first_path} is {first_height}x{first_width}; set '
              'data.image_size=HxW to resize them to one size, or '
              'data.patch_size=HxW to train on patches of any size')
    return None

  def process(self, image: _Decoded, all_grey: bool,
              first: Optional[Tuple[str, Tuple[int, int]]]) -> Iterable:
    problem = self._size_problem(image, first)
    if problem:
      yield beam.pvalue.TaggedOutput(BAD, (image.path, problem))
      return
    pixels = image.pixels
    if not all_grey and pixels.shape[2] == 1:
      pixels = np.repeat(pixels, 3, axis=2)
    if self._patches is not None and image.split != 'train':
      top, left = centre_corner(pixels.shape[:2], self._patches)
      pixels = pixels[top:top + self._patches.height,
                      left:left + self._patches.width]
    yield dataclasses.replace(image, pixels=pixels)


def serialize(images: Sequence[_Decoded], labeled: bool,
              sized: bool = False) -> List[bytes]:
  """The tf.Examples of a batch of images: `image` flattened (row-major,
  channels last), as int64; `label` when the folder has classes; with
  `sized`, each image's `height` and `width` (its pixels may then be of any
  length)."""
  columns = {names.IMAGE: [image.pixels.reshape(-1) for image in images]}
  if labeled:
    columns[names.LABEL] = np.array([image.label for image in images])
  if sized:
    columns[names.HEIGHT] = np.array([image.pixels.shape[0] for image in images])
    columns[names.WIDTH] = np.array([image.pixels.shape[1] for image in images])
  return example_bytes.serialize(columns)


@dataclasses.dataclass(frozen=True)
class Ingested:
  """What the job found: the images' shape (None: no image was read; the
  patch's with `patch_size`), each split's count, the bad images, and with
  `patch_size` the values of the whole train images (None without)."""
  image_shape: Optional[Tuple[int, int, int]]
  split_sizes: Dict[str, int]
  bad: Tuple[Tuple[str, str], ...]  # (path, reason), sorted by path.
  whole_train_values: Optional[int] = None


def _facts(counts: Mapping[str, int], all_grey: bool,
           first: Optional[Tuple[str, Tuple[int, int]]],
           bad: Sequence[Tuple[str, str]],
           patches: Optional[settings.Patches], train_values: int) -> str:
  """The job's findings as one JSON line (read back by `read_facts`)."""
  size = first and (first[1] if patches is None else
                    (patches.height, patches.width))
  shape = None if first is None else [*size, 1 if all_grey else 3]
  return json.dumps({'image_shape': shape, 'split_sizes': dict(counts),
                     'bad': sorted(bad),
                     'whole_train_values': train_values if patches else None})


@beam.ptransform_fn
def IngestFolder(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, image_dir: str, layout: Layout,
    split_paths: Mapping[str, Sequence[str]], image_size: Optional[str],
    split_uris: Mapping[str, str], file_prefix: str,
    facts_path: str, patches: Optional[settings.Patches] = None
) -> beam.pvalue.PDone:
  """The job: every listed image read once (with `patches`, train images
  kept whole and the others cut to their centre patch), each split written as gzipped TFRecords under its URI, and the
  findings (`Ingested`) as one JSON file at `facts_path`."""
  folder = folder_uri(image_dir)
  size = settings.parse_image_size(image_size) if image_size else None
  labeled = bool(layout.class_names)
  work = [(path, split, layout.label(path) if labeled else None)
          for split in SPLITS for path in split_paths[split]]
  read = (pipeline
          | 'List' >> beam.Create(work)
          # Breaks fusion, so that a runner reads the images in parallel.
          | 'Spread' >> beam.Reshuffle()
          | 'Read' >> beam.ParDo(_ReadImage(folder, size)).with_outputs(
              BAD, main='images'))
  decoded = read.images
  all_grey = (decoded
              | 'IsGrey' >> beam.Map(lambda image: image.pixels.shape[2] == 1)
              | 'AllGrey' >> beam.CombineGlobally(all))
  first = (decoded
           | 'PathAndSize' >> beam.Map(
               lambda image: (image.path, tuple(image.pixels.shape[:2])))
           | 'First' >> beam.CombineGlobally(_first))
  finished = decoded | 'Finish' >> beam.ParDo(
      _Finish(patches), beam.pvalue.AsSingleton(all_grey),
      beam.pvalue.AsSingleton(first)).with_outputs(BAD, main='images')
  by_split = finished.images | 'BySplit' >> beam.Partition(
      lambda image, _: SPLITS.index(image.split), len(SPLITS))
  counts = []
  for split, images in zip(SPLITS, by_split):
    _ = (images
         | f'Batch[{split}]' >> beam.BatchElements(
             min_batch_size=1, max_batch_size=SERIALIZE_BATCH)
         | f'Serialize[{split}]' >> beam.Map(serialize, labeled,
                                             patches is not None)
         | f'Progress[{split}]' >> beam.ParDo(progress.CountProgress(
             f'ingest {split}', len(split_paths[split]), count=len))
         | f'Frame[{split}]' >> beam.Map(tfrecord_sink.frame_records)
         | f'Write[{split}]' >> tfrecord_sink.WriteFramedTFRecords(
             FileSystems.join(split_uris[split], file_prefix)))
    counts.append(images | f'Count[{split}]' >> beam.combiners.Count.Globally()
                  | f'Key[{split}]' >> beam.Map(
                      lambda count, split=split: (split, count)))
  bad = ((read[BAD], finished[BAD]) | 'AllBad' >> beam.Flatten()
         | 'BadList' >> beam.combiners.ToList())
  # What the Trainer's memory plan counts for a train split of whole images.
  train_values = (by_split[SPLITS.index('train')]
                  | 'TrainValues' >> beam.Map(lambda image: image.pixels.size)
                  | 'SumTrainValues' >> beam.CombineGlobally(sum))
  return (tuple(counts) | 'Counts' >> beam.Flatten()
          | 'CountDict' >> beam.combiners.ToDict()
          | 'Facts' >> beam.Map(_facts, beam.pvalue.AsSingleton(all_grey),
                                beam.pvalue.AsSingleton(first),
                                beam.pvalue.AsSingleton(bad), patches,
                                beam.pvalue.AsSingleton(train_values))
          | 'WriteFacts' >> beam.io.WriteToText(
              facts_path, num_shards=1, shard_name_template=''))


def read_facts(facts_path: str) -> Ingested:
  """The findings IngestFolder wrote."""
  with FileSystems.open(facts_path,
                        compression_type=filesystem.CompressionTypes.UNCOMPRESSED
                        ) as facts_file:
    facts = json.loads(facts_file.read().decode())
  shape = facts['image_shape']
  return Ingested(tuple(shape) if shape else None,
                  {split: facts['split_sizes'].get(split, 0) for split in SPLITS},
                  tuple(tuple(entry) for entry in facts['bad']),
                  facts.get('whole_train_values'))


def check_bad_images(ingested: Ingested, max_bad_images: int,
                     listed: int) -> None:
  """Stops the run when more images are bad than the setting allows.

  Raises:
    ImageFolderError: the first bad image's reason, and how many there are.
  """
  bad = ingested.bad
  if len(bad) > max_bad_images:
    more = (f' ({len(bad)} of the {listed} images are bad; '
            f'data.max_bad_images={max_bad_images})' if len(bad) > 1 else '')
    raise ImageFolderError(bad[0][1] + more)
  if ingested.image_shape is None:
    raise ImageFolderError('data.image_dir: none of its images could be read')
