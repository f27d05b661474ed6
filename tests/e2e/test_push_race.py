"""Two `dae-pipeline run`s on different pipeline roots and one serving dir,
started together: exactly one pushes; the other says why it did not.

Both find nothing served when they start, so both Evaluators bless against
nothing. Whether the second run's ServedModel, or only its Pusher, comes
after the first push depends on timing; the test takes the interleaving
that raced before compare-and-push: it holds the serving dir's push lock
(components/common/serving_lock.py) until both Pushers wait for it, then lets them
go. Each run is a real CLI process (LocalDagRunner, SQLite MLMD, Beam, TFMA)
on tiny IDX data, the smoke profile shrunk as in the other e2e tests.
"""

import os
import re
import subprocess
import sys
import time

import pytest

from components.common import serving_dir
from components.common import serving_lock
from tests import idx_files

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_S = 900
# What a Pusher logs while another holds the serving dir's lock.
WAITING = 'Waiting up to'


def _run_args(tmp_path, source_dir, root_name):
  return [sys.executable, '-m', 'pipeline.cli', 'run', '--profile', 'smoke',
          '--pipeline-root', str(tmp_path / root_name),
          '--serving-dir', str(tmp_path / 'serving'),
          '--source-dir', source_dir,
          '--set', 'data.train_examples=80', '--set', 'data.eval_examples=30',
          '--set', 'data.test_examples=20',
          '--set', 'training.epochs=1', '--set', 'training.max_train_steps=2',
          # Floors off: both candidates are blessed (against nothing served).
          '--set', 'thresholds.min_psnr_db=0', '--set', 'thresholds.max_mse=1']


def _read(path):
  with open(path, encoding='utf-8', errors='replace') as log:
    return log.read()


def test_two_runs_started_together_push_once_and_the_other_says_why(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  serving = str(tmp_path / 'serving')
  logs = [tmp_path / f'run{index}.log' for index in range(2)]
  with serving_lock.hold(serving):
    runs = []
    for index, log in enumerate(logs):
      with open(log, 'w', encoding='utf-8') as log_file:
        runs.append(subprocess.Popen(
            _run_args(tmp_path, tiny.directory, f'root{index}'),
            stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path,
            env=dict(os.environ)))
    deadline = time.monotonic() + TIMEOUT_S
    try:
      while not all(WAITING in _read(log) for log in logs):
        ended = [run for run in runs if run.poll() is not None]
        assert not ended and time.monotonic() < deadline, [
            _read(log)[-3000:] for log in logs]
        time.sleep(1)
    except BaseException:
      for run in runs:
        run.kill()
      raise
  # The lock is free: one Pusher takes it and pushes, then the other.
  outputs = []
  for run, log in zip(runs, logs):
    run.wait(timeout=300)
    outputs.append(_read(log))
    assert run.returncode == 0, outputs[-1][-3000:]

  assert len(serving_dir.versions(serving)) == 1
  served = serving_dir.newest_complete_version(serving)
  verdicts = sorted((next(line for line in output.splitlines()
                          if line.startswith('verdict: ')) for output in outputs),
                    key=lambda line: 'not pushed' in line)
  assert verdicts[0].startswith(f'verdict: blessed; pushed as version {served} '), verdicts
  assert re.match(rf'verdict: blessed; not pushed: {re.escape(serving)} serves '
                  rf'version {served} now, not nothing as when this candidate '
                  'was evaluated', verdicts[1]), verdicts
