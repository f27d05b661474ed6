"""What a person at the terminal sees of a local run, at three verbosities.

* ``normal`` (default): warnings and errors; the one-line INFO messages of the
  components' executors (this project's and TFX's: "Generating statistics for
  split train.") and TFX's "Component X is running/finished" lines; progress
  bars; TensorFlow's C++ log from errors up (less the three harmless lines
  it writes at import, see `import_tensorflow`).
* ``verbose`` (``--verbose``): every INFO line of TFX, Beam and TensorFlow
  (TFX alone writes thousands: resolved inputs, MLMD protos).
* ``quiet`` (``--quiet``): warnings and errors only, no progress bars.

Call `configure` before TensorFlow or Beam is imported (TensorFlow reads its
C++ log level once, at import; Google's libraries warn at import).
"""

import logging
import os
import re
import sys
import tempfile
import warnings

from absl import logging as absl_logging

QUIET, NORMAL, VERBOSE = 'quiet', 'normal', 'verbose'
VERBOSITIES = (QUIET, NORMAL, VERBOSE)

# TFX's launcher line that opens and closes each component.
_COMPONENT_LINE = re.compile(r'^Component \S+ is (running|finished)\.')
# INFO lines longer than this are dumps (protos, artifact lists), not news.
_MAX_LINE_CHARS = 300
# Warnings written on every local run about what a run does not need:
# LocalDagRunner resolves inputs without property predicates; Beam's TFRecord
# reader checks CRCs with crcmod's C extension, not python-snappy's; ML Metadata
# 1.21 has no ZetaSQL, so TFX filters each of its context queries in Python
# (tfx/orchestration/portable/mlmd/execution_lib.py), same result.
_HARMLESS_WARNINGS = (
    'ArtifactQuery.property_predicate is not supported.',
    'Fallback to non-ZetaSQL contexts execution query due to: filter_query is '
    'not supported - ZetaSQL dependency removed',
    "Couldn't find python-snappy so the implementation of "
    '_TFRecordUtil._masked_crc32c is not as fast as it could be.')
# TFX's launcher logs this bare line (tfx/orchestration/portable/launcher.py)
# before it re-raises the executor's error, which the CLI then prints whole.
_REPORTED_ELSEWHERE = ('Execution %d failed.',)
# The logger of Beam's python-snappy warning (it is not absl's).
_BEAM_TFRECORD_LOGGER = 'apache_beam.io.tfrecordio'
# INFO lines of TFX's components that read like a fault but are not: optional
# libraries this pipeline does not use, and StatisticsGen's default.
_MISLEADING_INFO = ('tensorflow_text is not available.',
                    'tensorflow_recommenders is not available.',
                    'Excluding no splits because exclude_splits is not set.')
# TFX's Evaluator names each model it loads, 'Using %s as %s model.', with
# the model spec's name: '' for a run without a baseline, which leaves a
# double space (tfx/components/evaluator/executor.py).
_UNNAMED_MODEL_LINE = 'Using %s as %s model.'
# Directories whose executors' INFO lines are shown at the normal verbosity.
_EXECUTOR_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 name) + os.sep for name in ('components', 'pipeline'))
_TFX_COMPONENTS_DIR = os.sep + os.path.join('tfx', 'components') + os.sep
# TensorFlow's C++ log level per verbosity (0: all, 2: errors and up). Not 3:
# that would hide every C++ error for the whole run (a GPU node's "failed call
# to cuInit", file-system errors), so the import's noise is cut line by line.
_TF_CPP_MIN_LOG_LEVEL = {QUIET: '2', NORMAL: '2', VERBOSE: '0'}
# What TensorFlow writes while it is imported on a machine without CUDA,
# whatever TF_CPP_MIN_LOG_LEVEL says: two of its libraries each carry XLA's
# CUDA runtime stub, which says it found no driver (xla/tsl/cuda/cudart_stub.cc),
# each after absl's notice that it logs before absl::InitializeLog. A CPU run
# needs no driver; a GPU node's CPU image is named by the Trainer itself. On a
# CPU whose instructions oneDNN's custom operations use (AVX-512 and others),
# its INFO line that they are on (tsl/platform/default/port.cc) comes the same
# way: a fact of the machine, not of the run.
_TF_IMPORT_NOISE = re.compile(
    rb'cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will '
    rb'not be used\.|^WARNING: All log messages before absl::InitializeLog\(\) is '
    rb'called are written to STDERR|port\.cc:\d+\] oneDNN custom operations are on\.')
# What its first look for GPUs writes at ERROR level where the machine has no
# NVIDIA driver at all (xla/stream_executor/cuda/cuda_platform.cc): noise
# there, and kept where a driver is loaded (a GPU node's failing cuInit).
_NO_DRIVER_NOISE = re.compile(rb'cuda_platform\.cc:\d+\] failed call to cuInit: ')
# The kernel's NVIDIA driver, also seen from a container on a GPU node.
_NVIDIA_DRIVER = '/proc/driver/nvidia/version'


def _import_noise(line: bytes) -> bool:
  return bool(_TF_IMPORT_NOISE.search(line) or (
      _NO_DRIVER_NOISE.search(line) and not os.path.exists(_NVIDIA_DRIVER)))


class _CurrentStderrHandler(logging.StreamHandler):
  """Writes to whatever `sys.stderr` is when a line is logged.

  A handler that kept the `sys.stderr` of the moment `configure` ran would
  write to a closed stream once that object is replaced and closed (a
  notebook's or a test's captured stderr): every later log line would fail
  with "--- Logging error ---". The standard library's last-resort handler
  looks `sys.stderr` up the same way (`logging._StderrHandler`).
  """

  def __init__(self):
    logging.Handler.__init__(self)  # pylint: disable=non-parent-init-called

  @property
  def stream(self):
    return sys.stderr


class ExecutorLines(logging.Filter):
  """Passes warnings and up, and the INFO lines a person wants to see."""

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if record.levelno >= logging.WARNING:
      return _not_harmless(record)
    if record.levelno < logging.INFO:
      return False
    if ('\n' in message or len(message) > _MAX_LINE_CHARS
        or message in _MISLEADING_INFO):
      return False
    if _COMPONENT_LINE.match(message):
      return True
    if (record.msg == _UNNAMED_MODEL_LINE and isinstance(record.args, tuple)
        and len(record.args) == 2 and not record.args[1]):
      record.msg, record.args = 'Using %s as the model.', record.args[:1]
    path = record.pathname or ''
    return path.startswith(_EXECUTOR_DIRS) or _TFX_COMPONENTS_DIR in path


def _not_harmless(record: logging.LogRecord) -> bool:
  return (record.getMessage() not in _HARMLESS_WARNINGS
          and record.msg not in _REPORTED_ELSEWHERE)


def import_tensorflow() -> None:
  """Imports TensorFlow, keeping its import-time noise off stderr.

  TensorFlow's C++ code writes to file descriptor 2, not to `sys.stderr`:
  during the import that descriptor points to a temporary file, whose lines
  are written to stderr afterwards, all but the noise (`_import_noise`).
  (Should the import kill the process, what it wrote is lost: `--verbose`
  imports TensorFlow without this.) Does nothing once TensorFlow is imported.
  """
  if 'tensorflow' in sys.modules:
    return
  sys.stderr.flush()
  stderr_copy = os.dup(2)
  try:
    with tempfile.TemporaryFile() as captured:
      os.dup2(captured.fileno(), 2)
      try:
        import tensorflow  # pylint: disable=g-import-not-at-top,import-outside-toplevel
        # TensorFlow looks for GPUs once a process; its noise falls here.
        tensorflow.config.list_physical_devices('GPU')
      finally:
        sys.stderr.flush()
        os.dup2(stderr_copy, 2)
        captured.seek(0)
        for line in captured:
          if not _import_noise(line):
            os.write(2, line)
  finally:
    os.close(stderr_copy)


def configure(verbosity: str = NORMAL, stream=None) -> None:
  """Sets this process's log lines and progress bars for `verbosity`.

  Except at the verbose one, imports TensorFlow (`import_tensorflow`).

  Args:
    verbosity: One of VERBOSITIES.
    stream: Where log lines go; by default the `sys.stderr` of the moment a
      line is written.
  """
  if verbosity not in VERBOSITIES:
    raise ValueError(f'verbosity {verbosity!r} is not one of {VERBOSITIES}')
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', _TF_CPP_MIN_LOG_LEVEL[verbosity])
  handler = (logging.StreamHandler(stream) if stream is not None
             else _CurrentStderrHandler())
  handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(message)s',
                                         datefmt='%H:%M:%S'))
  if verbosity == NORMAL:
    handler.addFilter(ExecutorLines())
  # TFX, TFDS and this project log through absl's logger.
  absl_logger = absl_logging.get_absl_logger()
  for old in [old for old in absl_logger.handlers
              if getattr(old, '_dae_pipeline_console', False)]:
    absl_logger.removeHandler(old)
  handler._dae_pipeline_console = True  # pylint: disable=protected-access
  absl_logger.addHandler(handler)
  absl_logger.propagate = False
  absl_logging.set_verbosity(absl_logging.WARNING if verbosity == QUIET
                             else absl_logging.INFO)
  logging.getLogger('apache_beam').setLevel(
      logging.INFO if verbosity == VERBOSE else logging.WARNING)
  if verbosity != VERBOSE:
    # Printed at import by Google's client libraries (supported Python and
    # google-cloud-storage versions): about the environment, not the run.
    warnings.filterwarnings('ignore', category=FutureWarning, module=r'google\..*')
    # TensorFlow's deprecation notices about library code (TFMA's writers).
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
    import_tensorflow()
  beam_tfrecord_logger = logging.getLogger(_BEAM_TFRECORD_LOGGER)
  if verbosity == VERBOSE:
    beam_tfrecord_logger.removeFilter(_not_harmless)
  else:
    beam_tfrecord_logger.addFilter(_not_harmless)  # Once: addFilter dedups.
  # Imports Beam (and with it Google's client libraries): after the filters.
  from components.common import progress  # pylint: disable=g-import-not-at-top
  progress.set_enabled(verbosity != QUIET)
