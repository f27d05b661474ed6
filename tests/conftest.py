"""Shared fixtures: tiny IDX datasets and quiet TensorFlow logs."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # pylint: disable=g-import-not-at-top

from tests import idx_files  # pylint: disable=g-import-not-at-top


@pytest.fixture
def tiny_mnist(tmp_path):
  """120 train and 40 test images in MNIST's IDX format, with SHA256SUMS."""
  return idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))


# The test files that take minutes (whole pipeline runs), costliest first:
# `make test` spreads files over the cores (pytest-xdist, --dist loadfile),
# and starting them first keeps one of them from running alone at the end.
SLOWEST_FIRST = ('tests/kfp/', 'tests/e2e/test_local_pipeline.py',
                 'tests/e2e/test_reliability.py', 'tests/e2e/', 'tests/distributed/',
                 'tests/components/test_trainer.py',
                 'tests/components/test_evaluator_gate.py')


def _cost_rank(item) -> int:
  path = os.path.relpath(str(item.path), os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  return next((rank for rank, prefix in enumerate(SLOWEST_FIRST)
               if path.startswith(prefix)), len(SLOWEST_FIRST))


def pytest_collection_modifyitems(items):
  """Runs the slowest files first (stable otherwise: each file's tests stay
  together and in order)."""
  items.sort(key=_cost_rank)
