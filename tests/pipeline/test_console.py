"""What a person sees of a run: log-line filter, verbosities, progress bars."""

import io
import logging
import os

import apache_beam as beam
import pytest

from components import progress
from components.trainer import run_fn
from pipeline import console


def _record(message, level=logging.INFO, path='/x/site-packages/tfx/orchestration/launcher.py'):
  return logging.LogRecord('absl', level, path, 1, message, None, None)


PROJECT_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'components', 'noise_transform', 'executor.py')


@pytest.mark.parametrize('record, shown', [
    (_record('Component Trainer is running.'), True),
    (_record('Component Trainer is finished.'), True),
    (_record('Going to run a new execution 7'), False),  # orchestration
    (_record('Split sizes: {"train": 5}', path=PROJECT_FILE), True),
    (_record('Generating statistics for split train.',
             path='/v/site-packages/tfx/components/statistics_gen/executor.py'), True),
    (_record('line one\nline two', path=PROJECT_FILE), False),  # a dump
    (_record('x' * 400, path=PROJECT_FILE), False),
    (_record('disk almost full', level=logging.WARNING), True),
    (_record('ArtifactQuery.property_predicate is not supported.',
             level=logging.WARNING), False),
    (_record('debug detail', level=logging.DEBUG, path=PROJECT_FILE), False),
])
def test_normal_verbosity_shows_executor_lines_and_warnings(record, shown):
  assert console.ExecutorLines().filter(record) is shown


@pytest.fixture
def restore_progress():
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  handlers = list(absl_logging.get_absl_logger().handlers)
  verbosity = absl_logging.get_verbosity()
  yield
  progress.set_enabled(True)
  absl_logging.get_absl_logger().handlers[:] = handlers
  absl_logging.get_absl_logger().propagate = True
  absl_logging.set_verbosity(verbosity)


@pytest.mark.parametrize('verbosity, info_shown, progress_shown', [
    (console.QUIET, False, False),
    (console.NORMAL, True, True),
    (console.VERBOSE, True, True),
])
def test_verbosity_sets_log_lines_and_progress(verbosity, info_shown, progress_shown,
                                               restore_progress):
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  stream = io.StringIO()
  console.configure(verbosity, stream=stream)
  absl_logging.info('Component Trainer is running.')
  absl_logging.info('Going to run a new execution 7')
  absl_logging.warning('a warning')
  lines = stream.getvalue()
  assert ('Component Trainer is running.' in lines) is info_shown
  assert ('Going to run' in lines) is (verbosity == console.VERBOSE)
  assert 'a warning' in lines
  assert progress.enabled() is progress_shown
  assert run_fn.fit_verbosity(io.StringIO()) == (2 if progress_shown else 0)


def test_log_lines_follow_stderr_when_it_is_replaced_and_closed(restore_progress,
                                                                 monkeypatch):
  # A CLI run inside a process whose stderr is swapped later (a notebook, a
  # test's capture): its lines go to the stderr of the moment, and a closed
  # earlier stderr raises no "--- Logging error ---".
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  first, second = io.StringIO(), io.StringIO()
  monkeypatch.setattr('sys.stderr', first)
  console.configure(console.NORMAL)
  absl_logging.warning('first line')
  first.close()
  monkeypatch.setattr('sys.stderr', second)
  absl_logging.warning('second line')
  assert 'second line' in second.getvalue()
  assert 'Logging error' not in second.getvalue()


def test_unknown_verbosity_is_rejected():
  with pytest.raises(ValueError, match='loud'):
    console.configure('loud')


class _Terminal(io.StringIO):

  def isatty(self):
    return True


def test_fit_shows_a_live_bar_on_a_terminal_and_epoch_lines_elsewhere():
  assert run_fn.fit_verbosity(_Terminal()) == 1
  assert run_fn.fit_verbosity(io.StringIO()) == 2


def test_bar_writes_whole_lines_with_count_total_and_eta_off_a_terminal():
  stream = io.StringIO()
  bar = progress.bar('noise train', 200, stream=stream)
  bar.update(50)
  bar.close()
  lines = stream.getvalue().splitlines()
  assert lines and all('\r' not in line for line in lines)
  assert lines[-1].startswith('noise train:') and '50/200' in lines[-1]
  assert '<' in lines[-1]  # elapsed<remaining: the ETA


def test_count_progress_counts_what_a_beam_pipeline_passes(capsys):
  with beam.Pipeline() as pipeline:
    _ = (pipeline | beam.Create([[1, 2], [3], [4, 5, 6]])
         | beam.ParDo(progress.CountProgress('items', 6, unit='items', count=len))
         | beam.FlatMap(lambda batch: batch))
  err = capsys.readouterr().err
  assert '6/6' in err and 'items:' in err


def test_disabled_progress_writes_nothing(restore_progress):
  progress.set_enabled(False)
  stream = io.StringIO()
  bar = progress.bar('noise train', 10, stream=stream)
  bar.update(10)
  bar.close()
  assert stream.getvalue() == ''


def test_bars_open_at_once_write_no_cursor_moves_off_a_terminal():
  stream = io.StringIO()
  first = progress.bar('noise train', 10, stream=stream)
  second = progress.bar('noise eval', 10, stream=stream)
  first.update(10)
  second.update(10)
  second.close()
  first.close()
  text = stream.getvalue()
  assert '\x1b' not in text and '\r' not in text
  assert 'noise train: 100%' in text and 'noise eval: 100%' in text
