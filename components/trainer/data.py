"""tf.data input of the Trainer: NoiseTransform's TFRecords to (noisy, clean)."""

from typing import Iterable, Optional, Tuple

import numpy as np
import tensorflow as tf

from components import features

NOISY_FEATURE = features.NOISY
CLEAN_FEATURE = features.CLEAN
LABEL_FEATURE = features.LABEL
IMAGE_SHAPE = features.IMAGE_SHAPE
PIXELS = features.PIXELS

FEATURE_SPEC = {
    NOISY_FEATURE: tf.io.FixedLenFeature([PIXELS], tf.float32),
    CLEAN_FEATURE: tf.io.FixedLenFeature([PIXELS], tf.float32),
}


def list_files(file_patterns: Iterable[str]) -> list:
  """The sorted files matching the patterns; raises when there are none."""
  files = sorted(path for pattern in file_patterns
                 for path in tf.io.gfile.glob(pattern))
  if not files:
    raise FileNotFoundError(f'no input files match {list(file_patterns)}')
  return files


def parse_batch(serialized: tf.Tensor):
  """Parses a batch of serialized examples into (noisy, clean) images."""
  features = tf.io.parse_example(serialized, FEATURE_SPEC)
  shape = (-1,) + IMAGE_SHAPE
  return (tf.reshape(features[NOISY_FEATURE], shape),
          tf.reshape(features[CLEAN_FEATURE], shape))


def make_dataset(file_patterns: Iterable[str], batch_size: int,
                 shuffle_seed: Optional[int] = None, repeat: bool = False,
                 cache: bool = True,
                 shuffle_buffer: int = 10_000) -> tf.data.Dataset:
  """Batches of (noisy, clean) float32 [batch, 28, 28, 1].

  Reads files in parallel, parses whole batches at once (vectorised), caches
  the parsed images in memory (when `cache`), shuffles with a seed (when
  `shuffle_seed` is set) and prefetches.
  """
  dataset = tf.data.TFRecordDataset(list_files(file_patterns),
                                    compression_type='GZIP',
                                    num_parallel_reads=tf.data.AUTOTUNE)
  dataset = (dataset.batch(1024)
             .map(parse_batch, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)
             .unbatch())
  if cache:
    dataset = dataset.cache()
  if shuffle_seed is not None:
    dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed,
                              reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  options = tf.data.Options()
  # Multi-worker: shard by element, which works for any number of files (file
  # sharding fails when there are fewer files than workers).
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)


def read_arrays(file_patterns: Iterable[str], limit: Optional[int] = None
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(noisy, clean, labels) of NoiseTransform records, in file order.

  Args:
    file_patterns: Globs of gzip TFRecord files of (noisy, clean, label)
      tf.Examples.
    limit: Read at most this many records (all when None).

  Returns:
    float32 [N, 28, 28, 1] noisy and clean images, int64 [N] digits.
  """
  dataset = tf.data.TFRecordDataset(list_files(file_patterns),
                                    compression_type='GZIP')
  if limit is not None:
    dataset = dataset.take(limit)
  spec = dict(FEATURE_SPEC, **{LABEL_FEATURE: tf.io.FixedLenFeature([], tf.int64)})
  noisy, clean, labels = [], [], []
  for serialized in dataset.batch(4096):
    parsed = tf.io.parse_example(serialized, spec)
    noisy.append(tf.reshape(parsed[NOISY_FEATURE], (-1,) + IMAGE_SHAPE).numpy())
    clean.append(tf.reshape(parsed[CLEAN_FEATURE], (-1,) + IMAGE_SHAPE).numpy())
    labels.append(parsed[LABEL_FEATURE].numpy())
  if not noisy:
    raise ValueError(f'no records in {list(file_patterns)}')
  return np.concatenate(noisy), np.concatenate(clean), np.concatenate(labels)
