"""Image folders (data.image_dir) through TfdsExampleGen's Beam job, on tiny
PNG/JPEG folders the tests write."""

import dataclasses
import glob
import hashlib
import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.common import dataset_info
from components.common import names
from components.common import progress
from components.tfds_example_gen import component
from components.tfds_example_gen import executor
from components.tfds_example_gen import image_folder
from components.tfds_example_gen import settings
from components.tfds_example_gen import sources
from components.tfds_example_gen.image_folder import ImageFolderError


def _image(seed, height, width, channels):
  """A uint8 image unique to its seed (its first pixels encode it)."""
  pixels = np.random.default_rng(seed).integers(
      0, 256, size=(height, width, channels), dtype=np.uint8)
  pixels[0, 0, 0], pixels[0, 1, 0] = seed % 256, seed // 256
  return pixels


def _write(path, pixels, image_format='PNG', mode=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
  (image.convert(mode) if mode else image).save(path, format=image_format)


def write_class_folders(directory, classes=('dog', 'cat'), per_class=30,
                        height=12, width=11, channels=3, start=0):
  """PNGs in class subfolders; returns {relative path: pixels}."""
  written = {}
  seed = start
  for name in classes:
    for index in range(per_class):
      relative = f'{name}/{name}{index:03d}.png'
      written[relative] = _image(seed, height, width, channels)
      _write(os.path.join(directory, relative), written[relative])
      seed += 1
  return written


def write_flat_folder(directory, count=40, height=12, width=11):
  """Grey PNGs, no subfolders; returns {relative path: pixels}."""
  written = {}
  for index in range(count):
    relative = f'img{index:03d}.png'
    written[relative] = _image(index, height, width, 1)
    _write(os.path.join(directory, relative), written[relative])
  return written


def _run(output_dir, **data):
  examples = standard_artifacts.Examples()
  examples.uri = str(output_dir)
  spec = settings.DataSpec(**data)
  executor.Executor().Do({}, {'examples': [examples]},
                         component.TfdsExampleGen(spec).exec_properties)
  return examples


def _records(examples, split):
  """The tf.Examples of a split, as {feature: values} dicts."""
  files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split),
                                 '*.gz'))
  return [{name: list(feature.int64_list.value) for name, feature in
           tf.train.Example.FromString(record.numpy()).features.feature.items()}
          for record in tf.data.TFRecordDataset(files, compression_type='GZIP')]


def _split_of_images(examples):
  """{image values as bytes: split} of ingested examples."""
  return {np.array(record['image'], np.uint8).tobytes(): split
          for split in image_folder.SPLITS
          for record in _records(examples, split)}


def test_rgb_class_folders_become_labelled_colour_examples(tmp_path):
  written = write_class_folders(str(tmp_path / 'pets'))
  examples = _run(tmp_path / 'out', image_dir=str(tmp_path / 'pets'))
  assert dataset_info.recorded(examples) == dataset_info.DatasetInfo(
      'pets', (12, 11, 3), ("cat", "dog"))
  by_pixels = {pixels.reshape(-1).tobytes(): relative
               for relative, pixels in written.items()}
  seen = []
  for split in ('train', 'eval', 'test'):
    records = _records(examples, split)
    assert records, split
    for record in records:
      assert set(record) == {'image', 'label'}
      relative = by_pixels[np.array(record['image'], np.uint8).tobytes()]
      assert record['label'] == [('cat', 'dog').index(relative.split('/')[0])]
      seen.append(relative)
  assert sorted(seen) == sorted(written)  # Every image once.
  assert sum(progress.split_sizes(examples).values()) == 60


def test_a_flat_grey_folder_has_no_labels(tmp_path):
  written = write_flat_folder(str(tmp_path / 'scans'))
  examples = _run(tmp_path / 'out', image_dir=str(tmp_path / 'scans'))
  info = dataset_info.recorded(examples)
  assert info == dataset_info.DatasetInfo("scans", (12, 11, 1), ())
  assert not info.labeled
  records = [record for split in ('train', 'eval', 'test')
             for record in _records(examples, split)]
  assert all(set(record) == {'image'} and len(record["image"]) == 132
             for record in records)
  assert sorted(np.array(record['image'], np.uint8).tobytes() for record in records
                ) == sorted(pixels.reshape(-1).tobytes() for pixels in written.values())


def test_caps_limit_each_split(tmp_path):
  write_class_folders(str(tmp_path / 'pets'))
  lengths = progress.split_sizes(_run(tmp_path / 'full',
                                     image_dir=str(tmp_path / 'pets')))
  examples = _run(tmp_path / 'out', image_dir=str(tmp_path / 'pets'),
                  train_examples=5, eval_examples=2, test_examples=10_000)
  assert progress.split_sizes(examples) == {
      'train': 5, 'eval': 2, 'test': lengths['test']}
  assert len(_records(examples, 'train')) == 5


def test_images_of_another_size_are_refused_naming_the_first(tmp_path):
  directory = tmp_path / 'pets'
  write_class_folders(str(directory))
  _write(str(directory / 'dog' / 'dog010.png'), _image(99, 14, 10, 3))
  with pytest.raises(ImageFolderError,
                     match=r'dog/dog010.png is 14x10 \(HxW\) but cat/cat000.png '
                     r'is 12x11; set data.image_size'):
    _run(tmp_path / 'out', image_dir=str(directory))


def test_image_size_resizes_every_image_to_it(tmp_path):
  directory = tmp_path / 'pets'
  write_class_folders(str(directory), per_class=20)
  _write(str(directory / 'dog' / 'dog010.png'), _image(99, 30, 25, 3))
  examples = _run(tmp_path / 'out', image_dir=str(directory), image_size='13x12')
  assert dataset_info.recorded(examples).image_shape == (13, 12, 3)
  records = [record for split in image_folder.SPLITS
             for record in _records(examples, split)]
  assert len(records) == 40
  assert all(len(record['image']) == 13 * 12 * 3 for record in records)


def test_jpeg_images_of_any_extension_case_are_read(tmp_path):
  directory = tmp_path / 'photos'
  pixels = {}
  for index in range(30):
    pixels[index] = np.full((12, 12, 3), index * 8, np.uint8)  # Flat: JPEG-exact.
    _write(str(directory / f'p{index:02d}.JPG' if index % 2 else
               directory / f'p{index:02d}.jpeg'), pixels[index], 'JPEG')
  (directory / 'notes.txt').write_text('not an image')
  read = _split_of_images(_run(tmp_path / 'out', image_dir=str(directory)))
  assert len(read) == 30
  assert sorted(read) == sorted(image.tobytes() for image in pixels.values())


def test_palette_and_alpha_images_make_a_colour_dataset(tmp_path):
  directory = tmp_path / 'mixed'
  grey = write_flat_folder(str(directory), count=30, height=12, width=11)
  _write(str(directory / 'rgba.png'), _image(1, 12, 11, 3), mode='RGBA')
  _write(str(directory / 'palette.png'), _image(2, 12, 11, 3), mode='P')
  examples = _run(tmp_path / 'out', image_dir=str(directory))
  assert dataset_info.recorded(examples).image_shape == (12, 11, 3)
  read = _split_of_images(examples)
  assert len(read) == 32
  # A grey image of a colour dataset: its value in each channel.
  assert np.repeat(grey['img003.png'], 3, axis=2).tobytes() in read


def test_adding_images_moves_no_other_image_between_splits(tmp_path):
  directory = tmp_path / 'pets'
  write_class_folders(str(directory))
  before = _split_of_images(_run(tmp_path / 'before', image_dir=str(directory)))
  for index in range(30):  # New images, a new class among them.
    _write(str(directory / ('dog', 'cat', 'eel')[index % 3] / f'new{index:02d}.png'),
           _image(1000 + index, 12, 11, 3))
  after = _split_of_images(_run(tmp_path / 'after', image_dir=str(directory)))
  assert len(before) == 60 and len(after) == 90
  assert {pixels: after[pixels] for pixels in before} == before


def test_a_split_left_empty_is_refused(tmp_path):
  write_flat_folder(str(tmp_path / 'few'), count=2)  # Three splits: one is empty.
  with pytest.raises(ImageFolderError, match=r"2 images leave the '(train|eval|test)' "
                     r'split empty \(data.eval_percent=10.0'):
    _run(tmp_path / 'out', image_dir=str(tmp_path / 'few'))


def test_a_folder_without_images_is_refused(tmp_path):
  (tmp_path / 'empty' / 'sub').mkdir(parents=True)
  (tmp_path / 'empty' / 'readme.txt').write_text('no images')
  with pytest.raises(ImageFolderError, match='holds no PNG or JPEG image'):
    image_folder.list_images(str(tmp_path / 'empty'))


def test_images_beside_class_folders_are_refused(tmp_path):
  write_class_folders(str(tmp_path / 'pets'), per_class=2)
  _write(str(tmp_path / 'pets' / 'stray.png'), _image(5, 12, 11, 3))
  with pytest.raises(ImageFolderError, match=r'both in class subfolders and beside '
                     r'them \(stray.png\)'):
    image_folder.list_images(str(tmp_path / 'pets'))


def test_hidden_files_and_folders_are_neither_images_nor_classes(tmp_path):
  write_class_folders(str(tmp_path / 'pets'), per_class=2)
  _write(str(tmp_path / 'pets' / 'cat' / '._0.png'), _image(6, 12, 11, 3))
  _write(str(tmp_path / 'pets' / '.ipynb_checkpoints' / 'x.png'), _image(7, 12, 11, 3))
  layout = image_folder.list_images(str(tmp_path / 'pets'))
  assert layout.class_names == ('cat', 'dog')
  assert not any('/.' in path or path.startswith('.') for path in layout.paths)


@pytest.mark.parametrize('content', [b'', b'not an image at all',
                                     b'\x89PNG\r\n\x1a\n truncated'])
def test_an_unreadable_image_is_refused_naming_it(tmp_path, content):
  write_flat_folder(str(tmp_path / 'flat'), count=3)
  (tmp_path / 'flat' / 'broken.png').write_bytes(content)
  with pytest.raises(ImageFolderError, match=r'broken.png is not a readable PNG '
                     r'or JPEG image'):
    _run(tmp_path / 'out', image_dir=str(tmp_path / 'flat'))


def _cut_in_its_pixels(pixels):
  """A grey PNG of `pixels` cut off halfway through its image data: its
  header (size, mode) reads as a good image's, its pixels do not."""
  buffer = io.BytesIO()
  Image.fromarray(pixels[:, :, 0]).save(buffer, format='PNG')
  data = buffer.getvalue()
  idat = data.index(b'IDAT')
  data_length = int.from_bytes(data[idat - 4:idat], 'big')
  return data[:idat + 4 + data_length // 2]


def test_an_image_with_a_good_header_and_a_cut_off_body_is_refused_naming_it(tmp_path):
  # Neither skipped nor read with its missing pixels filled in: the dataset
  # would silently hold fewer images, or a black band.
  write_flat_folder(str(tmp_path / 'flat'), count=30)
  cut = _cut_in_its_pixels(_image(99, 12, 11, 1))
  (tmp_path / 'flat' / 'img007.png').write_bytes(cut)
  header = Image.open(io.BytesIO(cut))
  assert (header.format, header.size, header.mode) == ('PNG', (11, 12), 'L')
  with pytest.raises(ImageFolderError, match=r'img007.png is not a readable PNG '
                     r'or JPEG image'):
    _run(tmp_path / 'out', image_dir=str(tmp_path / 'flat'))


def test_a_16_bit_image_is_refused_not_clipped(tmp_path):
  write_flat_folder(str(tmp_path / 'flat'), count=3)
  Image.fromarray(np.full((9, 7), 40000, np.uint16)).save(
      str(tmp_path / 'flat' / 'deep.png'))
  with pytest.raises(ImageFolderError, match=r'deep.png has more than 8 bits'):
    _run(tmp_path / 'out', image_dir=str(tmp_path / 'flat'))


def test_the_fingerprint_follows_the_listing_and_reads_no_image(tmp_path):
  directory = tmp_path / 'pets'
  write_class_folders(str(directory), per_class=3)
  before = sources.source_fingerprint(settings.DataSpec(image_dir=str(directory)))
  assert before == image_folder.fingerprint(str(directory))
  _write(str(directory / 'cat' / 'cat001.png'), _image(77, 12, 11, 3))
  edited = image_folder.fingerprint(str(directory))
  os.rename(directory / 'cat' / 'cat002.png', directory / 'cat' / 'cat009.png')
  renamed = image_folder.fingerprint(str(directory))
  # The same bytes written again: the listing's modification time moves.
  stat = os.stat(directory / 'dog' / 'dog000.png')
  os.utime(directory / 'dog' / 'dog000.png',
           ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
  touched = image_folder.fingerprint(str(directory))
  assert len({before, edited, renamed, touched}) == 4
  # Unreadable images fingerprint all the same: nothing is read.
  for path in directory.glob('*/*.png'):
    path.chmod(0)
  try:
    assert image_folder.fingerprint(str(directory)) == touched
  finally:
    for path in directory.glob('*/*.png'):
      path.chmod(0o644)


def test_images_too_small_for_the_evaluation_are_refused_before_training(tmp_path):
  write_flat_folder(str(tmp_path / 'icons'), count=20, height=9, width=7)
  with pytest.raises(sources.SourceError, match=r'9x7 \(HxW\); the evaluation '
                     r'\(SSIM\) needs at least 11 pixels a side'):
    _run(str(tmp_path / 'out'), image_dir=str(tmp_path / 'icons'))


# The examples the TFDS ImageFolderBuilder wrote for write_class_folders'
# default folder (pets) and write_flat_folder(count=40) (scans) before the
# Beam job replaced it: per split, the number of examples and the SHA-256 of
# their deterministic serializations' SHA-256s, sorted.
TFDS_PATH_EXAMPLES = {
    'pets': {
        'train': (46, '74dc06012cd8893bde73d8b3631e900ea51cbb2c855bb7fa6b21cddf7595fcb2'),
        'eval': (12, 'e609c2b3253cc987677bfd89a83f8ed9aa7cafab6a71070ccd7678bb9ac2826d'),
        'test': (2, '49a5553e1b995a0aba0093d800f0f2948b4c986f27b7c8f87b805644f27733d4'),
    },
    'scans': {
        'train': (33, 'c58aec3fcad5702f5d13e194dc49849eeecb6ac5edd1ad4cbf9e49e9e20aacad'),
        'eval': (4, 'cfac68ceae2aa0290e999baaa86a64f252ff541394177eeb9f2831e8739385fb'),
        'test': (3, '4a1ccc1e3567d877baa4f6b52ebff84366231843d2ac145d2e51f9e90c8d4ee6'),
    },
}


def split_digests(examples):
  """Per split: (count, digest of the examples) as TFDS_PATH_EXAMPLES has them."""
  digests = {}
  for split in image_folder.SPLITS:
    files = glob.glob(os.path.join(
        artifact_utils.get_split_uri([examples], split), '*.gz'))
    records = sorted(
        tf.train.Example.FromString(record.numpy()).SerializeToString(
            deterministic=True)
        for record in tf.data.TFRecordDataset(files, compression_type='GZIP'))
    digests[split] = (len(records), hashlib.sha256(b''.join(
        hashlib.sha256(record).digest() for record in records)).hexdigest())
  return digests


def test_the_beam_job_writes_the_examples_the_tfds_path_wrote(tmp_path):
  write_class_folders(str(tmp_path / 'pets'))
  write_flat_folder(str(tmp_path / 'scans'), count=40)
  for name in ('pets', 'scans'):
    examples = _run(tmp_path / f'out-{name}', image_dir=str(tmp_path / name))
    assert split_digests(examples) == TFDS_PATH_EXAMPLES[name], name


def test_bad_images_up_to_the_setting_are_skipped_named_and_counted(
    tmp_path, caplog):
  directory = tmp_path / 'flat'
  write_flat_folder(str(directory), count=30)
  (directory / 'broken.png').write_bytes(b'not an image at all')
  (directory / 'img007.png').write_bytes(_cut_in_its_pixels(_image(99, 12, 11, 1)))
  _write(str(directory / 'wide.png'), _image(98, 12, 30, 1))
  examples = _run(tmp_path / 'out', image_dir=str(directory), max_bad_images=3)
  assert examples.get_int_custom_property(names.SKIPPED_IMAGES_PROPERTY) == 3
  # 32 images listed, 3 bad: broken.png, img007.png (cut off), wide.png.
  assert sum(progress.split_sizes(examples).values()) == 29
  assert len(_split_of_images(examples)) == 29
  for reason in ('broken.png is not a readable PNG or JPEG image (not a PNG or '
                 'JPEG image)', 'img007.png is not a readable PNG or JPEG image',
                 'wide.png is 12x30 (HxW) but img000.png is 12x11'):
    assert reason in caplog.text
  with pytest.raises(ImageFolderError, match=r'broken.png is not a readable PNG '
                     r'or JPEG image .*\(3 of the 32 images are bad; '
                     r'data.max_bad_images=2\)'):
    _run(tmp_path / 'out2', image_dir=str(directory), max_bad_images=2)


def test_a_good_folder_records_no_skipped_image(tmp_path):
  write_flat_folder(str(tmp_path / 'flat'), count=30)
  examples = _run(tmp_path / 'out', image_dir=str(tmp_path / 'flat'))
  assert examples.get_int_custom_property(names.SKIPPED_IMAGES_PROPERTY) == 0


def _mixed_sizes(directory):
  """Grey PNGs of five sizes, each at least 14x12; returns {path: pixels}."""
  written = {}
  sizes = [(14, 12), (20, 24), (31, 17), (14, 40), (25, 25)]
  for index in range(40):
    relative = f'img{index:03d}.png'
    written[relative] = _image(index, *sizes[index % len(sizes)], 1)
    _write(os.path.join(directory, relative), written[relative])
  return written


def test_patch_size_keeps_train_images_whole_and_cuts_eval_test_centres(tmp_path):
  written = _mixed_sizes(str(tmp_path / 'mixed'))
  examples = _run(tmp_path / 'out', image_dir=str(tmp_path / 'mixed'),
                  patch_size='14x12')
  layout = image_folder.list_images(str(tmp_path / 'mixed'))
  split_paths = image_folder.assign_splits(layout, settings.DataSpec(
      image_dir=str(tmp_path / 'mixed')))
  info = dataset_info.recorded(examples)
  assert info.image_shape == (14, 12, 1)  # The model's training shape.
  assert info.whole_train_images
  assert info.whole_train_values == sum(written[path].size
                                        for path in split_paths['train'])
  assert progress.split_sizes(examples) == {
      split: len(paths) for split, paths in split_paths.items()}
  # Train: each image whole, with its size.
  train = {np.array(record['image'], np.uint8).tobytes():
           (record['height'], record['width'])
           for record in _records(examples, 'train')}
  assert train == {written[path].tobytes(): ([written[path].shape[0]],
                                             [written[path].shape[1]])
                   for path in split_paths['train']}
  assert len({shape for shape in map(str, train.values())}) > 1
  # Eval and test: the centre patch, sized as one.
  for split in ('eval', 'test'):
    records = _records(examples, split)
    assert all(record['height'] == [14] and record['width'] == [12]
               for record in records)
    centres = set()
    for path in split_paths[split]:
      pixels = written[path]
      top, left = image_folder.centre_corner(pixels.shape[:2],
                                             settings.Patches(14, 12))
      assert (top, left) == ((pixels.shape[0] - 14) // 2,
                             (pixels.shape[1] - 12) // 2)
      centres.add(pixels[top:top + 14, left:left + 12].tobytes())
    assert {np.array(record['image'], np.uint8).tobytes()
            for record in records} == centres
  # The same examples again.
  again = _run(tmp_path / 'again', image_dir=str(tmp_path / 'mixed'),
               patch_size='14x12')
  assert split_digests(again) == split_digests(examples)


def test_without_patch_size_the_dataset_is_described_as_before():
  info = dataset_info.DatasetInfo('pets', (12, 11, 3), ('cat', 'dog'))
  assert not info.whole_train_images
  assert 'whole_train_values' not in info.to_json()
  whole = dataclasses.replace(info, whole_train_values=500)
  assert dataset_info.DatasetInfo.from_json(whole.to_json()) == whole


def test_an_image_smaller_than_the_patch_is_a_bad_image(tmp_path):
  _mixed_sizes(str(tmp_path / 'mixed'))
  _write(str(tmp_path / 'mixed' / 'tiny.png'), _image(99, 13, 30, 1))
  with pytest.raises(ImageFolderError, match=r'tiny.png is 13x30 \(HxW\), smaller '
                     r'than data.patch_size=14x12'):
    _run(tmp_path / 'out', image_dir=str(tmp_path / 'mixed'), patch_size='14x12')
  examples = _run(tmp_path / 'out2', image_dir=str(tmp_path / 'mixed'),
                  patch_size='14x12', max_bad_images=1)
  assert examples.get_int_custom_property(names.SKIPPED_IMAGES_PROPERTY) == 1
