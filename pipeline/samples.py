"""Noisy test images of the latest run: .npy files for saved_model_cli, and
PNGs to look at."""

import posixpath
from typing import List, Tuple

import numpy as np

from components.common import dataset_info
from components.common import names
from pipeline import run_summary


class _RecordedArtifact:
  """An output artifact as its MLMD record has it: its URI and custom
  properties, read the way TFX's Artifact reads them (dataset_info.recorded)
  without importing TFX."""

  def __init__(self, uri: str, properties):
    self.uri = uri
    self._properties = properties

  def has_custom_property(self, name: str) -> bool:
    return name in self._properties

  def get_string_custom_property(self, name: str) -> str:
    return self._properties[name]


def read_test_images(metadata_path: str, count: int) -> Tuple[np.ndarray, np.ndarray]:
  """(noisy, clean) float32 [count, height, width, channels] from the latest
  test split, in the shape its DatasetInfo records.

  Raises:
    FileNotFoundError: no run recorded NoiseTransform's examples.
    MissingDatasetInfo: they record no DatasetInfo.
  """
  from components.common import examples as examples_lib  # pylint: disable=g-import-not-at-top
  _, record = run_summary.latest_output_record(metadata_path, names.NOISE_TRANSFORM_NODE,
                                               names.NOISY_EXAMPLES_KEY)
  examples = _RecordedArtifact(record.output_uris[names.NOISY_EXAMPLES_KEY],
                               record.output_properties.get(names.NOISY_EXAMPLES_KEY, {}))
  noisy, clean, _ = examples_lib.read_arrays([f'{examples.uri}/Split-test/*'],
                                     dataset_info.recorded(examples), limit=count)
  return noisy, clean


def _stem(output: str) -> str:
  return output[:-len('.npy')] if output.endswith('.npy') else output


def write_samples(output: str, noisy: np.ndarray, clean: np.ndarray) -> List[str]:
  """Writes the images: `output` (.npy, float32 [N, H, W, C]) and
  `<stem>.clean.npy`, and each image as a PNG beside them (`<stem>.png` and
  `<stem>.clean.png`; `<stem>-<i>...` for several). Returns the paths.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from pipeline import denoise  # pylint: disable=g-import-not-at-top
  directory = posixpath.dirname(output)
  if directory:
    tf.io.gfile.makedirs(directory)  # A path or a bucket.
  stem = _stem(output)
  written = []
  for images, suffix in ((noisy, ''), (clean, '.clean')):
    array_path = output if not suffix else f'{stem}{suffix}.npy'
    with tf.io.gfile.GFile(array_path, 'wb') as array_file:
      np.save(array_file, images)
    written.append(array_path)
    for index, image in enumerate(images):
      numbered = stem if len(images) == 1 else f'{stem}-{index}'
      png_path = f'{numbered}{suffix}.png'
      with tf.io.gfile.GFile(png_path, 'wb') as png:
        png.write(denoise.encode_png(image))
      written.append(png_path)
  return written
