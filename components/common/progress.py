"""Progress of the long Beam steps (ingestion, noise, evaluation) for people.

On a terminal a tqdm bar updates in place (count, rate, ETA); elsewhere (a
log file, a Kubeflow pod's log) the same status is written as one line every
`LOG_INTERVAL_S` seconds and at the end, none before anything is counted.
`set_enabled(False)` (the CLI's `--quiet`) turns every bar off.

`CountProgress` is a pass-through Beam DoFn that counts what flows by. Bars
are per process and per description, so the DoFn instances a runner makes in
one process share one bar; on a multi-process or remote runner each worker
reports its own share (the count still tells that work goes on).
"""

import json
import re
import sys
import threading
from typing import Any, Callable, Dict, Iterable, Optional

import apache_beam as beam
import tqdm

from components.common import names

# Seconds between two status lines when stderr is not a terminal.
LOG_INTERVAL_S = 30.0
# Seconds between two redraws of a bar on a terminal.
TERMINAL_INTERVAL_S = 0.5

_enabled = True
_bars: Dict[str, tqdm.tqdm] = {}
_lock = threading.Lock()


def set_enabled(enabled: bool) -> None:
  """Shows (True, the default) or hides every progress bar of this process."""
  global _enabled  # pylint: disable=global-statement
  _enabled = enabled


def enabled() -> bool:
  """Whether progress is shown in this process (set_enabled)."""
  return _enabled


# Terminal control sequences (cursor moves of stacked bars).
_ESCAPES = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


class _LineWriter:
  """A file for tqdm that turns each in-place redraw into one full line."""

  def __init__(self, stream):
    self._stream = stream

  def write(self, text: str) -> None:
    line = _ESCAPES.sub('', text.replace('\r', '')).strip()
    if line:
      self._stream.write(line + '\n')

  def flush(self) -> None:
    self._stream.flush()


class _LogBar(tqdm.tqdm):
  """A bar off a terminal: no line while nothing is counted (tqdm writes one
  at the start, an empty 0% line in a log)."""

  def display(self, msg=None, pos=None):
    if self.n == 0:
      return False
    return super().display(msg=msg, pos=pos)


def bar(description: str, total: Optional[int], unit: str = 'examples',
        stream=None) -> tqdm.tqdm:
  """A progress bar (count, rate and, with a total, ETA) on `stream` (stderr).

  Args:
    description: What is counted, e.g. 'noise train'.
    total: How many are expected; None when unknown (no ETA then).
    unit: The name of one counted item.
    stream: Where to write; stderr by default.
  """
  stream = stream or sys.stderr
  terminal = hasattr(stream, 'isatty') and stream.isatty()
  return (tqdm.tqdm if terminal else _LogBar)(
      total=total, desc=description, unit=f' {unit}', unit_scale=False,
      file=stream if terminal else _LineWriter(stream),
      mininterval=TERMINAL_INTERVAL_S if terminal else LOG_INTERVAL_S,
      maxinterval=TERMINAL_INTERVAL_S if terminal else LOG_INTERVAL_S,
      dynamic_ncols=terminal, ncols=None if terminal else 100,
      # Off a terminal every bar is line 0: no cursor moves between bars.
      position=None if terminal else 0,
      ascii=not terminal, disable=not _enabled, leave=True)


def shared_bar(description: str, total: Optional[int],
               unit: str = 'examples') -> tqdm.tqdm:
  """The process's one bar of that description (made at the first call)."""
  with _lock:
    if description not in _bars:
      _bars[description] = bar(description, total, unit)
    return _bars[description]


def close_shared(description: str) -> None:
  """Closes (writes the final status of) the process's bar, if it has one."""
  with _lock:
    progress = _bars.pop(description, None)
  if progress is not None:
    progress.close()


def record_split_sizes(examples, sizes: Dict[str, int]) -> None:
  """Records {split: number of examples} on an Examples artifact (read back
  by `split_sizes` as the totals of the next component's bars)."""
  examples.set_string_custom_property(names.SPLIT_SIZES_PROPERTY,
                                      json.dumps(sizes, sort_keys=True))


def split_sizes(examples) -> Dict[str, int]:
  """{split: number of examples} an Examples artifact's producer recorded
  (TfdsExampleGen, NoiseTransform); {} when it recorded none."""
  if not examples.has_custom_property(names.SPLIT_SIZES_PROPERTY):
    return {}
  return json.loads(
      examples.get_string_custom_property(names.SPLIT_SIZES_PROPERTY))


class CountProgress(beam.DoFn):
  """Passes elements through unchanged, counting them on a shared bar.

  The bar starts when the first bundle does, before the steps fused ahead of
  this one (reading, decoding) produce anything: its clock, and so its rate,
  covers their work. A bar made at the first element would see a whole
  batch arrive at once, in no time (millions of examples/s).

  Args:
    description: The bar's description, e.g. 'noise train'.
    total: The expected count (None: unknown).
    unit: The name of one counted item.
    count: How many items one element holds (e.g. `len` for lists); None:
      each element is one.
  """

  def __init__(self, description: str, total: Optional[int],
               unit: str = 'examples',
               count: Optional[Callable[[Any], int]] = None):
    self._description = description
    self._total = total
    self._unit = unit
    self._count = count
    self._bar = None

  def start_bundle(self):
    if self._bar is None:  # Only workers given a bundle show a bar.
      self._bar = shared_bar(self._description, self._total, self._unit)

  def process(self, element) -> Iterable:
    items = self._count(element) if self._count else 1
    with _lock:
      self._bar.update(items)
      done = self._total is not None and self._bar.n >= self._total
    if done:
      close_shared(self._description)
    yield element

  def teardown(self):
    if self._bar is not None:
      close_shared(self._description)
