"""stopped_by_signals: SIGINT/SIGTERM become RunInterrupted, and one that a
finalizer swallowed is raised again until the run's code acknowledges it."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline import local_runner


def _signal_soon(signal_number, delay_s=0.2):
  threading.Timer(delay_s, os.kill, (os.getpid(), signal_number)).start()


# How long a test waits for a signal, or for it to be raised again, before it
# fails: it bounds a failure alone (a loaded machine may start the timer's
# thread late), not how soon either comes.
NEVER_S = 120


@pytest.mark.parametrize('signal_number', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_becomes_run_interrupted_naming_it(signal_number):
  before = signal.getsignal(signal.SIGTERM)
  with pytest.raises(local_runner.RunInterrupted) as raised:
    with local_runner.stopped_by_signals():
      _signal_soon(signal_number)
      time.sleep(NEVER_S)
  assert raised.value.signal_number == signal_number
  assert raised.value.signal_name == signal.Signals(signal_number).name
  assert signal.getsignal(signal.SIGTERM) is before  # Restored.
  assert logging.getLogger().isEnabledFor(logging.ERROR)  # Logging back on.


def test_an_interrupt_swallowed_once_is_raised_again_until_acknowledged():
  swallowed = []
  started = time.monotonic()
  with pytest.raises(local_runner.RunInterrupted) as raised:
    with local_runner.stopped_by_signals():
      _signal_soon(signal.SIGTERM)
      while time.monotonic() - started < NEVER_S:
        try:
          time.sleep(0.01)
        except local_runner.RunInterrupted:
          if swallowed:  # The second time: caught by the run's code.
            raise
          swallowed.append(1)  # As Python ignores one raised in a __del__.
  # The first signal's name, though the second came through SIGINT.
  assert raised.value.signal_number == signal.SIGTERM
  # Raised again by itself while the run's code went on (no second signal
  # came): how soon is _REINTERRUPT_S, which a loaded machine stretches.
  assert swallowed


def test_a_second_signal_while_closing_down_stops_at_once():
  code = '\n'.join([
      'import os, signal, sys, time',
      'from pipeline import local_runner',
      'with local_runner.stopped_by_signals():',
      '  try:',
      '    os.kill(os.getpid(), signal.SIGINT)',
      '    time.sleep(10)',
      '  except local_runner.RunInterrupted as interrupted:',
      '    interrupted.acknowledge()',
      '    time.sleep(1.5)  # Past a re-interrupt: it must not stop this.',
      '    print("closing down", flush=True)',
      '    os.kill(os.getpid(), signal.SIGTERM)',
      '    time.sleep(10)',
      'print("not reached")'])
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300, check=False)  # Bounds a hang.
  assert result.returncode == 128 + signal.SIGTERM, result
  assert result.stdout == 'closing down\n'
