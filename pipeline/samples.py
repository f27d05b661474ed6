"""Noisy test images of the latest run, as .npy files for saved_model_cli."""

from typing import Tuple

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
