"""Reading NoiseTransform's examples: the parsing spec, the files, arrays.

Shared by the Trainer's input (components/trainer/data.py), the report's
pictures and `dae-pipeline sample`. The images' shape, and whether the
examples carry a label, are the dataset's: every function takes the
DatasetInfo recorded on the examples (components/common/dataset_info.py).
"""

from typing import Iterable, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.common import dataset_info as dataset_info_lib
from components.common import names

NOISY_FEATURE = names.NOISY
CLEAN_FEATURE = names.CLEAN
LABEL_FEATURE = names.LABEL

DatasetInfo = dataset_info_lib.DatasetInfo


def feature_spec(info: DatasetInfo, *names: str, label: bool = False) -> dict:
  """The parsing spec of NoiseTransform's image features `names` (default:
  noisy and clean) for the dataset's images, and with `label` its label
  when the dataset has labels."""
  spec = {name: tf.io.FixedLenFeature([info.pixels], tf.float32)
          for name in names or (NOISY_FEATURE, CLEAN_FEATURE)}
  if label and info.labeled:
    spec[LABEL_FEATURE] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def images(flat: tf.Tensor, info: DatasetInfo) -> tf.Tensor:
  """[batch, pixels] to [batch, height, width, channels]."""
  return tf.reshape(flat, (-1,) + info.image_shape)


def list_files(file_patterns: Iterable[str]) -> list:
  """The sorted files matching the patterns; raises when there are none."""
  files = sorted(path for pattern in file_patterns
                 for path in tf.io.gfile.glob(pattern))
  if not files:
    raise FileNotFoundError(f'no input files match {list(file_patterns)}')
  return files


def read_arrays(file_patterns: Iterable[str], info: DatasetInfo,
                limit: Optional[int] = None
                ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
  """(noisy, clean, labels) of NoiseTransform records, in file order.

  Args:
    file_patterns: Globs of gzip TFRecord files of (noisy, clean[, label])
      tf.Examples.
    info: The dataset's description (the examples' DatasetInfo).
    limit: Read at most this many records (all when None).

  Returns:
    float32 [N, height, width, channels] noisy and clean images, int64 [N]
    classes (None for a dataset without labels).
  """
  dataset = tf.data.TFRecordDataset(list_files(file_patterns),
                                    compression_type='GZIP')
  if limit is not None:
    dataset = dataset.take(limit)
  spec = feature_spec(info, label=True)
  noisy, clean, labels = [], [], []
  for serialized in dataset.batch(4096):
    parsed = tf.io.parse_example(serialized, spec)
    noisy.append(images(parsed[NOISY_FEATURE], info).numpy())
    clean.append(images(parsed[CLEAN_FEATURE], info).numpy())
    if info.labeled:
      labels.append(parsed[LABEL_FEATURE].numpy())
  if not noisy:
    raise ValueError(f'no records in {list(file_patterns)}')
  return (np.concatenate(noisy), np.concatenate(clean),
          np.concatenate(labels) if info.labeled else None)
