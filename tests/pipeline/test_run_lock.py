"""One run per pipeline root (pipeline/run_lock.py), through the real CLI."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline import cli
from pipeline import run_lock
import pipeline_config


def _config(tmp_path):
  return pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'pipeline_root': str(tmp_path / 'root'),
      'serving_dir': str(tmp_path / 'serving')})


def _run(tmp_path, *extra):
  return cli.main(['run', '--profile', 'smoke', '--pipeline-root',
                   str(tmp_path / 'root'), '--serving-dir',
                   str(tmp_path / 'serving'), *extra])


def test_second_run_on_a_busy_root_exits_at_once_naming_the_holder(tmp_path):
  # "At once": without waiting for the holder, which holds the root until the
  # second run has exited (a run that waited would never exit; the timeout
  # only ends such a failure, however slow the machine is to start Python).
  config = _config(tmp_path)
  with run_lock.hold(config) as holder:
    second = subprocess.run(
        [sys.executable, '-m', 'pipeline.cli', 'run', '--profile', 'smoke',
         '--pipeline-root', str(tmp_path / 'root'), '--serving-dir',
         str(tmp_path / 'serving')],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=pipeline_config.repository_root())
    with pytest.raises(run_lock.PipelineRootBusy):  # Still held.
      with run_lock.hold(config):
        pass
  assert second.returncode == cli.EXIT_BUSY, second.stderr
  message = second.stderr
  assert f"pid {holder['pid']}" in message and holder['started'] in message
  assert str(tmp_path / 'root') in message and '--wait' in message


def test_wait_gives_up_after_its_seconds(tmp_path, capsys):
  with run_lock.hold(_config(tmp_path)):
    started = time.monotonic()
    assert _run(tmp_path, '--wait', '1.5') == cli.EXIT_BUSY
    assert time.monotonic() - started >= 1.5
  # The seconds it waited, rounded: 2 at least, more on a busy machine.
  waited = re.search(r'after waiting (\d+) s', capsys.readouterr().err)
  assert waited and int(waited[1]) >= 2


def test_wait_takes_the_root_once_the_holder_is_done(tmp_path):
  config = _config(tmp_path)
  held, release = threading.Event(), threading.Event()

  def holder():
    with run_lock.hold(config):
      held.set()
      release.wait(300)

  thread = threading.Thread(target=holder)
  thread.start()
  assert held.wait(120)
  threading.Timer(1.0, release.set).start()
  started = time.monotonic()
  with run_lock.hold(config, wait_s=300):  # A bound on a failure alone.
    assert time.monotonic() - started >= 0.9
    assert release.is_set()  # Taken once the holder let go, not before.
  thread.join()


def test_lock_of_a_killed_run_does_not_block(tmp_path):
  config = _config(tmp_path)
  # A real process takes the lock, then dies by SIGKILL while holding it.
  script = ('import os, signal, pipeline_config\n'
            'from pipeline import run_lock\n'
            f'config = pipeline_config.with_overrides(pipeline_config.load_profile("smoke"), '
            f'{{"pipeline_root": {str(tmp_path / "root")!r}}})\n'
            'with run_lock.hold(config):\n'
            '  os.kill(os.getpid(), signal.SIGKILL)\n')
  done = subprocess.run([sys.executable, '-c', script], check=False,
                        cwd=pipeline_config.repository_root())
  assert done.returncode == -signal.SIGKILL
  assert os.path.getsize(run_lock.lock_path(config)) > 0  # It left its record.
  with run_lock.hold(config) as holder:
    assert holder['pid'] == os.getpid()


def test_bucket_roots_lock_beside_the_metadata(tmp_path):
  config = pipeline_config.with_overrides(_config(tmp_path), {
      'pipeline_root': 'gs://bucket/root',
      'metadata_path': str(tmp_path / 'mlmd.sqlite')})
  assert run_lock.lock_path(config) == str(tmp_path / 'mlmd.sqlite') + '.lock'
  with run_lock.hold(config):
    with pytest.raises(run_lock.PipelineRootBusy, match='gs://bucket/root'):
      with run_lock.hold(config):
        pass
