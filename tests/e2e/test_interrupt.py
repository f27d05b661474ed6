"""Ctrl-C and SIGTERM during a real `dae-pipeline run`, then the run again.

The interrupted run must end in one line (no traceback) with 128 + the
signal's number, close its running execution in MLMD at once (CANCELED,
`interrupted` naming the signal), and the next run must resume from the
cache, end with its verdict, and print no TensorFlow E/W line or Python
warning on stderr.
"""

import glob
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from components.common import serving_dir
from pipeline import recovery
from pipeline import run_summary
from tests import idx_files

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN_TIMEOUT_S = 600
STOP_TIMEOUT_S = 120


def _args(tmp_path, source_dir, epochs=400, steps=4000):
  return [sys.executable, '-m', 'pipeline.cli', 'run', '--profile', 'smoke',
          '--pipeline-root', str(tmp_path / 'root'),
          '--serving-dir', str(tmp_path / 'serving'),
          '--source-dir', source_dir,
          '--set', 'data.train_examples=80', '--set', 'data.eval_examples=30',
          '--set', 'data.test_examples=20',
          # Many short epochs: the Trainer runs long enough to be interrupted.
          '--set', f'training.epochs={epochs}', '--set', 'training.batch_size=8',
          '--set', f'training.max_train_steps={steps}',
          '--set', 'thresholds.min_psnr_db=0', '--set', 'thresholds.max_mse=1']


def _interrupt_in_trainer(args, tmp_path, signal_number):
  """Runs the pipeline, sends `signal_number` once the Trainer is writing;
  returns (exit status, stdout, stderr)."""
  process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  deadline = time.monotonic() + RUN_TIMEOUT_S
  # The Trainer's TensorBoard logs appear once `fit` has begun.
  pattern = str(tmp_path / 'root' / 'Trainer' / 'model_run' / '*' / '*')
  while not glob.glob(pattern):
    assert process.poll() is None, process.communicate()
    assert time.monotonic() < deadline, 'the Trainer never started'
    time.sleep(0.2)
  time.sleep(3)  # Inside `fit`, between and within steps.
  process.send_signal(signal_number)
  try:
    stdout, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
  except subprocess.TimeoutExpired:
    process.kill()
    stdout, stderr = process.communicate()
    pytest.fail(f'still running {STOP_TIMEOUT_S} s after the signal: '
                f'{stdout[-2000:]}\n{stderr[-3000:]}')
  return process.returncode, stdout, stderr


def _closed_trainer_executions(tmp_path):
  store = run_summary.open_store(str(tmp_path / 'root' / 'metadata.sqlite'))
  return [execution for execution in store.get_executions()
          if run_summary.execution_node_id(store, execution) == 'Trainer'
          and recovery.INTERRUPTED_PROPERTY in execution.custom_properties]


def test_ctrl_c_and_sigterm_end_in_one_line_and_the_next_run_resumes(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  args = _args(tmp_path, tiny.directory)
  for signal_number, count in ((signal.SIGINT, 1), (signal.SIGTERM, 2)):
    status, stdout, stderr = _interrupt_in_trainer(args, tmp_path, signal_number)
    name = signal.Signals(signal_number).name
    assert status == 128 + signal_number, (stdout, stderr[-3000:])
    assert 'Traceback' not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f'dae-pipeline: run interrupted ({name}); run the '
                           'same command again to resume'), last
    closed = _closed_trainer_executions(tmp_path)
    assert len(closed) == count, closed
    assert name in closed[-1].custom_properties[
        recovery.INTERRUPTED_PROPERTY].string_value
  # The next run: upstream from the cache, then a model, pushed, and its verdict.
  args = _args(tmp_path, tiny.directory, epochs=1, steps=2)
  result = subprocess.run(args, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  # A normal run's stderr: nothing a user can do nothing about.
  noise = [line for line in result.stderr.splitlines()
           if re.match(r'^(\S+ \S+: )?[EWF] ', line) or 'Warning' in line
           or ' WARNING ' in line or ' ERROR ' in line]
  assert not noise, noise
  table = dict(line.split()[:2] for line in result.stdout.splitlines()
               if line.split()[:1] and line.split()[0] in (
                   'TfdsExampleGen', 'NoiseTransform', 'Trainer'))
  assert table == {'TfdsExampleGen': 'CACHED', 'NoiseTransform': 'CACHED',
                   'Trainer': 'COMPLETE'}, result.stdout
  verdict = result.stdout.strip().splitlines()[-4:]
  assert verdict[0].startswith('verdict: blessed; pushed as version '), verdict
  assert str(tmp_path / 'serving') in verdict[0]
  assert verdict[1].startswith('test set (20 images): PSNR '), verdict
  assert verdict[2].startswith('  noisy input: PSNR '), verdict
  assert 'last blessed model: none (nothing served yet)' in verdict[2]
  assert verdict[3].startswith('next: ') and ' report --pipeline-root ' in verdict[3]
  assert serving_dir.complete_versions(str(tmp_path / 'serving'))
