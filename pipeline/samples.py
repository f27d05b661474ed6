"""Noisy test images of the latest run, as .npy files for saved_model_cli."""

from typing import Tuple

import numpy as np

from pipeline import run_summary

NOISE_NODE = 'NoiseTransform'
NOISY_EXAMPLES_KEY = 'noisy_examples'


def read_test_images(metadata_path: str, count: int) -> Tuple[np.ndarray, np.ndarray]:
  """(noisy, clean) float32 [count, 28, 28, 1] from the latest test split."""
  from components.trainer import data  # pylint: disable=g-import-not-at-top
  _, uri = run_summary.latest_output(metadata_path, NOISE_NODE, NOISY_EXAMPLES_KEY)
  noisy, clean, _ = data.read_arrays([f'{uri}/Split-test/*'], limit=count)
  return noisy, clean
