"""Shared fixtures: tiny IDX datasets and quiet TensorFlow logs."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # pylint: disable=g-import-not-at-top

from tests import idx_files  # pylint: disable=g-import-not-at-top


@pytest.fixture
def tiny_mnist(tmp_path):
  """120 train and 40 test images in MNIST's IDX format, with SHA256SUMS."""
  return idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
