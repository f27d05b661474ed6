"""A newcomer's first hour, as the README's quick start runs it: a smoke run in
the project's default places, then `report`, `sample` and `denoise` with no
flag naming the profile or the run."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests import idx_files

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_S = 600


def _cli(cwd, *args):
  result = subprocess.run([sys.executable, '-m', 'pipeline.cli', *args], cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)
  assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
  return result


def test_after_a_smoke_run_the_follow_up_commands_need_no_flags(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  project = tmp_path / 'project'  # Where the user runs the commands from.
  project.mkdir()
  run = _cli(project, 'run', '--profile', 'smoke', '--source-dir', tiny.directory,
             '--set', 'data.train_examples=80', '--set', 'data.eval_examples=30',
             '--set', 'data.test_examples=20', '--set', 'training.epochs=1',
             '--set', 'training.max_train_steps=2',
             '--set', 'thresholds.min_psnr_db=0', '--set', 'thresholds.max_mse=1')
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
