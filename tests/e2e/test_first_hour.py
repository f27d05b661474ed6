"""A newcomer's first hours, as the README runs them: a smoke run in the
project's default places, then `report`, `sample` and `denoise` with no flag
naming the profile or the run; then the README's own-images line in the same
checkout, which goes to the folder's own locations, and, pointed at MNIST's
serving dir, stops before anything runs."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests import idx_files
from tests.e2e import test_any_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_S = 600


def _cli(cwd, *args):
  result = subprocess.run([sys.executable, '-m', 'pipeline.cli', *args], cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)
  assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
  return result


# A few steps: the runs test the way through, not quality.
QUICK = ('--set', 'training.epochs=1', '--set', 'training.max_train_steps=2',
         '--set', 'thresholds.min_psnr_db=0', '--set', 'thresholds.max_mse=1')


def _own_images(project):
  """Writes photos/<class>/*.png of 16x16 RGB images under `project`."""
  images = test_any_dataset._blobs(np.random.default_rng(0), 40, 16, 16, 3)  # pylint: disable=protected-access
  for index, image in enumerate(images):
    test_any_dataset._write_png(  # pylint: disable=protected-access
        project / 'photos' / ('cat' if index % 2 else 'dog') / f'{index:02d}.png', image)


def test_after_a_smoke_run_the_follow_up_commands_need_no_flags(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  project = tmp_path / 'project'  # Where the user runs the commands from.
  project.mkdir()
  run = _cli(project, 'run', '--profile', 'smoke', '--source-dir', tiny.directory,
             '--set', 'data.train_examples=80', '--set', 'data.eval_examples=30',
             '--set', 'data.test_examples=20', *QUICK)
  assert run.stdout.strip().splitlines()[-1].startswith('next: ')
  assert 'report --' not in run.stdout  # The default root: no flags needed.

  report = _cli(project, 'report')
  assert report.stdout.strip().endswith('(smoke profile) to build/smoke/report.html')
  assert (project / 'build' / 'smoke' / 'report.html').is_file()

  _cli(project, 'sample', '--count', '1', '--output', 'noisy.npy')
  noisy = np.load(project / 'noisy.npy')[0]
  png = project / 'digit.png'
  tf.io.write_file(str(png), tf.io.encode_png(
      np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)))
  denoise = _cli(project, 'denoise', 'digit.png', '--reference', 'noisy.clean.npy',
                 '--output', 'denoised')
  assert denoise.stderr == '', denoise.stderr
  assert 'smoke/serving' in denoise.stdout  # The smoke run's served model.
  assert 'digit.png: PSNR ' in denoise.stdout, denoise.stdout
  assert os.path.isfile(project / 'denoised' / 'digit.png')

  # The README's own-images line: the folder's own locations, no flags.
  _own_images(project)
  own = _cli(project, 'run', '--profile', 'smoke', '--set', 'data.image_dir=photos',
             '--set', 'data.eval_percent=20', '--set', 'data.test_percent=20', *QUICK)
  assert 'report --' not in own.stdout  # Follow-up commands find it.
  own_serving = project / 'build' / 'smoke' / 'datasets' / 'photos' / 'serving'
  assert len([name for name in os.listdir(own_serving) if name.isdigit()]) == 1
  assert len([name for name in os.listdir(project / 'build' / 'smoke' / 'serving')
              if name.isdigit()]) == 1  # MNIST's: untouched.
  _cli(project, 'report')
  assert (project / 'build' / 'smoke' / 'datasets' / 'photos' / 'report.html').is_file()

  # Pointed at MNIST's serving dir, it stops before anything runs, in one line.
  started = time.monotonic()
  refused = subprocess.run(
      [sys.executable, '-m', 'pipeline.cli', 'run', '--profile', 'smoke', '--set',
       'data.image_dir=photos', '--serving-dir', 'build/smoke/serving', *QUICK],
      cwd=project, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
  assert refused.returncode == 2, (refused.stdout[-2000:], refused.stderr[-3000:])
  assert time.monotonic() - started < 120  # The imports; no component ran.
  [line] = refused.stderr.strip().splitlines()
  assert 'takes 28x28x1 images but the photos examples are 16x16x3' in line, line
  assert 'TfdsExampleGen' not in refused.stdout + refused.stderr
