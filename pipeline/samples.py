"""Noisy test images of the latest run, as .npy files for saved_model_cli."""

from typing import Tuple

import numpy as np

from pipeline import run_summary

NOISE_NODE = 'NoiseTransform'
NOISY_EXAMPLES_KEY = 'noisy_examples'


def latest_noisy_examples_uri(metadata_path: str) -> str:
  """The NoiseTransform output of the newest run that has one."""
  store = run_summary.open_store(metadata_path)
  for run_id in reversed(run_summary.run_ids(store)):
    for record in run_summary.run_executions(store, run_id):
      if (record.node_id == NOISE_NODE and record.state in ('COMPLETE', 'CACHED')
          and NOISY_EXAMPLES_KEY in record.output_uris):
        return record.output_uris[NOISY_EXAMPLES_KEY]
  raise FileNotFoundError(f'no {NOISE_NODE} output recorded in {metadata_path}; '
                          'run the pipeline first')


def read_test_images(metadata_path: str, count: int) -> Tuple[np.ndarray, np.ndarray]:
  """(noisy, clean) float32 [count, 28, 28, 1] from the latest test split."""
  from components.trainer import data  # pylint: disable=g-import-not-at-top
  uri = latest_noisy_examples_uri(metadata_path)
  noisy, clean, _ = data.read_arrays([f'{uri}/Split-test/*'], limit=count)
  return noisy, clean
