"""tf.data input of the Trainer: NoiseTransform's TFRecords to (noisy, clean).

The images' shape, and whether the examples carry a label, are the
dataset's: every function takes the DatasetInfo recorded on the examples
(components/common/dataset_info.py).

A train split of whole images of any size (`data.patch_size`) is cropped
here, after the cache, so that every pass sees new crops of the patch size
rather than the same ones (`_crop_passes`); the crops are seeded by the
training seed and each element's position in the repeated stream, so the
same run gives the same crops.
"""

from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

from components.common import dataset_info as dataset_info_lib
from components.common import examples as examples_lib
from components.common import names
from components.common import noise
from components.trainer import memory

DatasetInfo = dataset_info_lib.DatasetInfo


def parse_batch(serialized: tf.Tensor, info: DatasetInfo):
  """Parses a batch of serialized examples into (noisy, clean) images."""
  features = tf.io.parse_example(serialized, examples_lib.feature_spec(info))
  return (examples_lib.images(features[examples_lib.NOISY_FEATURE], info),
          examples_lib.images(features[examples_lib.CLEAN_FEATURE], info))


def _pack_clean(images: tf.Tensor) -> tf.Tensor:
  """Clean images as the 8-bit values they are: NoiseTransform wrote
  clean = pixels / 255 in float32, so rounding x 255 gives the pixels back
  exactly, and the cache and shuffle buffer hold 1 byte a value, not 4."""
  return tf.cast(tf.round(images * 255.0), tf.uint8)


def _unpack_clean(pixels: tf.Tensor) -> tf.Tensor:
  """The float32 clean images of `_pack_clean`, bit for bit (one correctly
  rounded division, as NoiseTransform's)."""
  return tf.cast(pixels, tf.float32) / 255.0


def _read_records(file_patterns: Iterable[str]) -> tf.data.Dataset:
  """The serialized records of the files, read in parallel, in batches of 1,024."""
  return tf.data.TFRecordDataset(examples_lib.list_files(file_patterns),
                                 compression_type='GZIP',
                                 num_parallel_reads=tf.data.AUTOTUNE).batch(1024)


def _parse_clean_and_keys(serialized: tf.Tensor, info: DatasetInfo):
  """Parses a batch into clean pixels float32 [batch, pixels] and the
  examples' noise keys (noise.example_keys, as int64 bits), for fresh noise;
  examples of a dataset without labels are keyed without one."""
  parsed = tf.io.parse_example(serialized,
                              examples_lib.feature_spec(
                                  info, examples_lib.CLEAN_FEATURE, label=True))

  def keys(clean: np.ndarray, *labels: np.ndarray) -> np.ndarray:
    # NoiseTransform wrote clean = pixels / 255 in float32: exactly invertible.
    pixels = np.rint(clean * 255.0).astype(np.uint8)
    return noise.example_keys(pixels, *labels).view(np.int64)

  inputs = [parsed[examples_lib.CLEAN_FEATURE]] + (
      [parsed[examples_lib.LABEL_FEATURE]] if info.labeled else [])
  example_keys = tf.numpy_function(keys, inputs, tf.int64, stateful=False)
  return parsed[examples_lib.CLEAN_FEATURE], tf.reshape(example_keys, [-1])


def _fresh_noise_passes(examples: tf.data.Dataset, spec: noise.NoiseSpec,
                        info: DatasetInfo,
                        batch_size: int, shuffle_seed: Optional[int],
                        shuffle_buffer: int,
                        count: Optional[int] = None) -> tf.data.Dataset:
  """Endless passes over (clean, key) examples (clean packed by
  `_pack_clean`), each with new noise.

  Shuffled as the fixed-noise input is (same seed, reshuffled every pass);
  pass p corrupts every example with draw p of its noise (noise.redraw_keys):
  pass 0 reproduces NoiseTransform's noisy images exactly, later passes draw
  new noise with the same settings.
  """
  # Which pass an element belongs to: its position in the repeated stream
  # over the number of examples (counted here when not given; that pass
  # fills the cache, or reads the records once more when streaming).
  if count is None:
    count = int(examples.reduce(np.int64(0), lambda total, _: total + 1))
  if count == 0:
    raise ValueError('no training examples to draw fresh noise for')
  if shuffle_seed is not None:
    examples = examples.shuffle(shuffle_buffer, seed=shuffle_seed,
                                reshuffle_each_iteration=True)
  passes = examples.repeat().enumerate().map(
      lambda index, example: (example[0], example[1], index // count))

  def corrupt(clean, keys, pass_indices):
    clean = _unpack_clean(clean)

    def draw(clean_batch, key_batch, pass_batch):
      noisy, _ = noise.add_noise(
          clean_batch,
          noise.redraw_keys(key_batch.view(np.uint64), pass_batch), spec)
      return noisy
    noisy = tf.numpy_function(draw, [clean, keys, pass_indices], tf.float32,
                              stateful=False)
    return examples_lib.images(noisy, info), examples_lib.images(clean, info)

  return passes.batch(batch_size).map(
      corrupt, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _parse_whole_image(serialized: tf.Tensor, info: DatasetInfo):
  """One example of a whole image of any size: (noisy float32, clean packed
  by `_pack_clean`), each [its height, its width, channels]."""
  whole = tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True)
  size = tf.io.FixedLenFeature([], tf.int64)
  parsed = tf.io.parse_single_example(serialized, {
      examples_lib.NOISY_FEATURE: whole, examples_lib.CLEAN_FEATURE: whole,
      names.HEIGHT: size, names.WIDTH: size})
  shape = tf.stack([parsed[names.HEIGHT], parsed[names.WIDTH],
                    tf.constant(info.image_shape[2], tf.int64)])
  return (tf.reshape(parsed[examples_lib.NOISY_FEATURE], shape),
          _pack_clean(tf.reshape(parsed[examples_lib.CLEAN_FEATURE], shape)))


def _crop_passes(images: tf.data.Dataset, info: DatasetInfo,
                 seed: int) -> tf.data.Dataset:
  """One crop of `info.image_shape` of each (noisy, packed clean) whole
  image, the same window of both.

  The crop's seed is (`seed`, the element's position in the stream): with
  the stream repeated, pass p's k-th element is at p x count + k, so every
  pass crops anew, and a run with the same seed (and so the same shuffle)
  crops the same.
  """
  crop_shape = (2,) + info.image_shape

  def crop(position, noisy, clean):
    pair = tf.stack([noisy, tf.cast(clean, tf.float32)])
    window = tf.image.stateless_random_crop(
        pair, crop_shape, seed=tf.stack([tf.constant(seed, tf.int64), position]))
    # The clean values are whole numbers 0..255: back to 8 bits exactly.
    return window[0], tf.cast(window[1], tf.uint8)

  return images.enumerate().map(
      lambda position, pair: crop(position, *pair),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_dataset(file_patterns: Iterable[str], batch_size: int,
                 info: DatasetInfo, shuffle_seed: Optional[int] = None, repeat: bool = False,
                 cache: bool = True,
                 shuffle_buffer: int = memory.SHUFFLE_BUFFER,
                 fresh_noise: Optional[noise.NoiseSpec] = None,
                 examples_count: Optional[int] = None,
                 whole_images: bool = False) -> tf.data.Dataset:
  """Batches of (noisy, clean) float32 [batch, height, width, channels].

  Reads files in parallel, parses whole batches at once (vectorised), caches
  the parsed images in memory (when `cache`), shuffles with a seed (when
  `shuffle_seed` is set) and prefetches.

  Args:
    file_patterns: Globs of NoiseTransform's gzipped TFRecords.
    batch_size: Examples per batch.
    info: The dataset's description (the examples' DatasetInfo): the shape
      of its images, whether its examples carry labels.
    shuffle_seed: Seed of the shuffle; None: file order.
    repeat: Repeat endlessly (reshuffled every pass).
    cache: Keep the parsed examples in memory after the first pass.
    shuffle_buffer: Examples in the shuffle buffer.
    fresh_noise: The settings NoiseTransform noised the records with (see
      noise.recorded_spec_json): every pass then gets new noise of that kind
      drawn here (pass 0: the records' own), instead of the records' one
      noisy copy every pass. Implies `repeat`.
    examples_count: The number of examples the files hold, when known (the
      split size recorded on the examples): fresh noise needs it, and counts
      them in one more read otherwise.
    whole_images: The files hold whole images of any size with their
      `height` and `width` (the train split of `data.patch_size`): each pass
      takes a new seeded crop of `info.image_shape` of each (seed:
      `shuffle_seed`, 0 when None). Not with `fresh_noise`.
  """
  if whole_images:
    if fresh_noise is not None:
      raise ValueError('training.fresh_noise does not apply to a train split '
                       'of whole images (data.patch_size)')
    return _whole_image_dataset(file_patterns, batch_size, info, shuffle_seed,
                                repeat, cache, shuffle_buffer)
  # Fresh noise needs the clean images and each example's noise key; the
  # records' noisy copy is not read.
  if fresh_noise is None:
    def parse(serialized):
      noisy, clean = parse_batch(serialized, info)
      return noisy, _pack_clean(clean)
  else:
    def parse(serialized):
      clean, keys = _parse_clean_and_keys(serialized, info)
      return _pack_clean(clean), keys
  dataset = (_read_records(file_patterns)
             .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
             .unbatch())
  if cache:
    dataset = dataset.cache()
  if fresh_noise is not None:
    return _finish(_fresh_noise_passes(dataset, fresh_noise, info, batch_size,
                                       shuffle_seed, shuffle_buffer,
                                       examples_count))
  if shuffle_seed is not None:
    dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed,
                              reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  return _finish(dataset.batch(batch_size).map(
      lambda noisy, clean: (noisy, _unpack_clean(clean)),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))


def _whole_image_dataset(file_patterns: Iterable[str], batch_size: int,
                         info: DatasetInfo, shuffle_seed: Optional[int],
                         repeat: bool, cache: bool,
                         shuffle_buffer: int) -> tf.data.Dataset:
  """make_dataset's batches of crops of whole images: parsed one by one
  (each of its own size), cached whole, shuffled, cropped anew every pass."""
  dataset = tf.data.TFRecordDataset(
      examples_lib.list_files(file_patterns), compression_type='GZIP',
      num_parallel_reads=tf.data.AUTOTUNE).map(
          lambda serialized: _parse_whole_image(serialized, info),
          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if cache:
    dataset = dataset.cache()
  if shuffle_seed is not None:
    dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed,
                              reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  return _finish(_crop_passes(dataset, info, shuffle_seed or 0)
                 .batch(batch_size).map(
                     lambda noisy, clean: (noisy, _unpack_clean(clean)),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))


def _finish(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Prefetches the batches; shards by element under multi-worker training."""
  options = tf.data.Options()
  # Multi-worker: shard by element, which works for any number of files (file
  # sharding fails when there are fewer files than workers).
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
