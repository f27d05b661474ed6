"""Who holds a lock: the record that a lock file or a lease keeps of its holder.

Both locks write it, the pipeline root's (pipeline/run_lock.py) and the
serving dir's (serving_lock.py), so that a refused run or push can name who
is in its way. Standard library only: the CLI takes the root's lock before
it imports TFX.
"""

import contextlib
import datetime
import json
import os
import socket
import sys
from typing import IO, Iterator

# A command line longer than this is cut in the record (a lease is small).
MAX_COMMAND_CHARS = 300


def record() -> dict:
  """This process as a lock's holder: pid, host, start time and command."""
  return {'pid': os.getpid(), 'host': socket.gethostname(),
          'started': datetime.datetime.now().astimezone().isoformat(
              timespec='seconds'),
          'command': ' '.join(sys.argv)[:MAX_COMMAND_CHARS]}


def parse(text: str) -> dict:
  """The holder record in `text` ({} when it holds none)."""
  try:
    holder = json.loads(text or '{}')
  except json.JSONDecodeError:
    return {}
  return holder if isinstance(holder, dict) else {}


def short(holder: dict) -> str:
  """'pid 12 on host' of a holder's record (a log line's)."""
  if not holder:
    return 'holder unknown'
  return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"


@contextlib.contextmanager
def holding(lock, lock_file: IO[str]) -> Iterator[dict]:
  """Records this process in the file of an acquired lock for the `with`
  block, then empties the file and releases the lock (a portalocker.Lock).

  Yields:
    The record written.
  """
  try:
    me = record()
    _write(lock_file, me)
    yield me
  finally:
    _clear(lock_file)
    lock.release()


def _write(lock_file: IO[str], holder: dict) -> None:
  """Replaces what an open lock file records with `holder`."""
  lock_file.seek(0)
  lock_file.truncate()
  lock_file.write(json.dumps(holder))
  lock_file.flush()


def _clear(lock_file: IO[str]) -> None:
  """Empties an open lock file: its holder is leaving."""
  lock_file.seek(0)
  lock_file.truncate()
  lock_file.flush()
