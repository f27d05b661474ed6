"""What a person sees of a run: log-line filter, verbosities, progress bars."""

import io
import logging
import os
import re
import subprocess
import sys
import time

import apache_beam as beam
import pytest

from components.common import progress
from components.tfds_example_gen import settings as data_settings
from components.tfds_example_gen import sources
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
    # The launcher's bare line before the error the CLI prints whole.
    (logging.LogRecord('absl', logging.ERROR, '/x/launcher.py', 1,
                       'Execution %d failed.', (2,), None), False),
    (_record('Execution of the probe failed: disk full', level=logging.ERROR), True),
])
def test_normal_verbosity_shows_executor_lines_and_warnings(record, shown):
  assert console.ExecutorLines().filter(record) is shown


def test_the_evaluator_s_line_of_an_unnamed_model_has_no_double_space():
  evaluator = '/v/site-packages/tfx/components/evaluator/executor.py'
  unnamed = logging.LogRecord('absl', logging.INFO, evaluator, 1,
                              'Using %s as %s model.', ('/m/Format-Serving', ''), None)
  assert console.ExecutorLines().filter(unnamed)
  assert unnamed.getMessage() == 'Using /m/Format-Serving as the model.'
  named = logging.LogRecord('absl', logging.INFO, evaluator, 1,
                            'Using %s as %s model.', ('/m', 'candidate'), None)
  assert console.ExecutorLines().filter(named)
  assert named.getMessage() == 'Using /m as candidate model.'


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


# One line of TensorFlow's C++ log, absl's format:
# "E0000 00:00:1796614588.433021   24962 file.cc:12] text".
_TF_CPP_LINE = re.compile(r'^([IWEF])\d{4} [\d:.]+\s+\d+ (\S+)\] (.*)$')
_IMPORT_NOISE = 'Could not find cuda drivers on your machine'
# Written only on CPUs whose instructions oneDNN's custom operations use.
_ONEDNN_NOTICE = 'oneDNN custom operations are on.'
_ABSL_NOTICE = 'WARNING: All log messages before absl::InitializeLog() is called'


def _configure_in_a_fresh_process(verbosity, **environment):
  """Starts `console.configure(verbosity)`, then TensorFlow's import, in a
  new interpreter; returns the process, for `_stderr`."""
  code = (f'from pipeline import console; console.configure({verbosity!r}); '
          'import tensorflow')
  # Without the level an earlier configure() of this process put in os.environ.
  inherited = {name: value for name, value in os.environ.items()
               if name != 'TF_CPP_MIN_LOG_LEVEL'}
  return subprocess.Popen([sys.executable, '-c', code], stderr=subprocess.PIPE,
                          text=True, env={**inherited, **environment})


def _stderr(process):
  _, stderr = process.communicate(timeout=240)
  assert process.returncode == 0, stderr
  return stderr


def _tf_cpp_lines(stderr):
  """(level, source, text) of each C++ log line, timestamps dropped."""
  return [match.groups() for match in map(_TF_CPP_LINE.match, stderr.splitlines())
          if match]


@pytest.mark.slow
def test_tensorflow_s_import_writes_no_errors_or_warnings_at_the_normal_verbosity():
  # Three interpreters at once (each imports TensorFlow): the normal
  # verbosity; the normal one with every C++ line on; --verbose (all on).
  started = {
      'normal': _configure_in_a_fresh_process(console.NORMAL),
      'normal, all C++ lines': _configure_in_a_fresh_process(
          console.NORMAL, TF_CPP_MIN_LOG_LEVEL='0'),
      'verbose': _configure_in_a_fresh_process(console.VERBOSE),
  }
  stderr = {name: _stderr(process) for name, process in started.items()}
  assert not [line for line in _tf_cpp_lines(stderr['normal'])
              if line[0] in 'EWF'], stderr['normal']
  assert 'Warning' not in stderr['normal'], stderr['normal']
  everything = _tf_cpp_lines(stderr['verbose'])
  # TensorFlow does write them (else this test would prove nothing)...
  assert sum(_IMPORT_NOISE in text for _, _, text in everything) >= 1, stderr['verbose']
  assert _ABSL_NOTICE in stderr['verbose']
  # ... and only they are dropped: every other line comes through.
  assert _ABSL_NOTICE not in stderr['normal'], stderr['normal']
  assert _tf_cpp_lines(stderr['normal, all C++ lines']) == [
      line for line in everything
      if _IMPORT_NOISE not in line[2] and _ONEDNN_NOTICE not in line[2]]


@pytest.mark.slow
def test_compile_writes_no_python_or_tensorflow_warnings(tmp_path):
  # Google's libraries warn at import about the environment (once each).
  result = subprocess.run(
      [sys.executable, '-m', 'pipeline.cli', 'compile', '--profile', 'smoke',
       '--output', str(tmp_path / 'pipeline.json')],
      capture_output=True, text=True, check=False, timeout=300)
  assert result.returncode == 0, result.stderr
  assert 'Warning:' not in result.stderr, result.stderr
  assert not [line for line in _tf_cpp_lines(result.stderr)
              if line[0] in 'EWF'], result.stderr


def test_the_vendored_source_says_which_files_it_reads(tiny_mnist, tmp_path,
                                                      capsys, caplog):
  builder = sources.make_builder(
      data_settings.DataSpec(source_dir=tiny_mnist.directory), str(tmp_path / 'tfds'))
  with caplog.at_level(logging.INFO, logger='absl'):
    sources.prepare(builder, str(tmp_path / 'downloads'))
  # Not TFDS's "Downloading and preparing dataset Unknown size ...".
  assert capsys.readouterr().out == ''
  read = [record.getMessage() for record in caplog.records
          if record.getMessage().startswith('Reading mnist')]
  assert read == [f'Reading mnist from {tiny_mnist.directory}: '
                  + ', '.join(sources.SOURCE_FILENAMES.values())]


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


def test_bar_off_a_terminal_writes_no_line_before_it_counts():
  stream = io.StringIO()
  progress.bar('noise eval', 10, stream=stream).close()  # Counted nothing.
  bar = progress.bar('noise train', 200, stream=stream)
  assert stream.getvalue() == ''  # No "0/200" line.
  bar.update(200)
  bar.close()
  assert stream.getvalue().count('\n') == 1
  assert stream.getvalue().startswith('noise train: 100%')


def _rate(line):
  return float(re.search(r'([\d.]+) ?examples/s', line)[1])


def test_count_progress_rate_covers_the_work_before_the_count(capsys):
  # One batch of 100 examples made in 1 s by the fused step before the
  # count: 100 examples/s at most, not the rate of an instantaneous update.
  def make_batch(size):
    time.sleep(1.0)
    return list(range(size))

  with beam.Pipeline() as pipeline:
    _ = (pipeline | beam.Create([100], reshuffle=False)
         | beam.Map(make_batch)
         | beam.ParDo(progress.CountProgress('batched', 100, count=len)))
  lines = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith('batched:')]
  assert len(lines) == 1 and '100/100' in lines[0], lines
  assert 10 < _rate(lines[0]) <= 100, lines


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
