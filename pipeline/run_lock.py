"""One run per pipeline root: an exclusive lock held for the whole local run.

Two runs on one root each read "the newest served version" before the other
has pushed, and both push; they also race on MLMD and the artifact folders.
The lock is portalocker's advisory lock (`flock` on POSIX, per open file, so
two holds in one process contend too) on a file beside the root (or beside
MLMD when the root is a bucket), so the kernel releases it when its holder
dies, `kill -9` included: a stale lock never blocks. The file records who holds it
(pid, host, start time, command) for the message of a run that is refused.
"""

import contextlib
import os
import time
from typing import Iterator, Optional

import portalocker

from components.common import holder as holder_lib
import pipeline_config

LOCK_FILENAME = '.dae-pipeline.lock'
POLL_SECONDS = 0.5


class PipelineRootBusy(RuntimeError):
  """Another live run holds the pipeline root's lock."""

  def __init__(self, pipeline_root: str, holder: dict, waited_s: float):
    who = (f"{holder_lib.short(holder)}, started "
           f"{holder.get('started', '?')} ({holder.get('command', '?')})"
           if holder else 'another process')
    waited = f' after waiting {waited_s:.0f} s' if waited_s else ''
    super().__init__(
        f'pipeline root {pipeline_root} is in use by {who}{waited}; wait for '
        'it with --wait [SECONDS], or use another --pipeline-root')
    self.holder = holder


def lock_path(config: pipeline_config.PipelineConfig) -> str:
  """The local lock file of a config's pipeline root."""
  if '://' not in config.pipeline_root:
    return os.path.join(config.pipeline_root, LOCK_FILENAME)
  # A bucket has no locks: MLMD of a local run is a local file, and every run
  # on that root records into it.
  return config.resolved_metadata_path + '.lock'


def _read_holder(path: str) -> dict:
  """What the lock file records of its holder ({} when nothing readable)."""
  try:
    with open(path, encoding='utf-8') as lock_file:
      return holder_lib.parse(lock_file.read())
  except OSError:
    return {}


@contextlib.contextmanager
def hold(config: pipeline_config.PipelineConfig,
         wait_s: Optional[float] = None) -> Iterator[dict]:
  """Holds the root's lock for the `with` block.

  Args:
    config: The run's configuration (local paths absolute).
    wait_s: Seconds to wait for a busy root (None or 0: fail at once;
      math.inf: wait as long as it takes).

  Yields:
    What the lock file records of this run.

  Raises:
    PipelineRootBusy: the root is still busy after `wait_s`.
  """
  path = lock_path(config)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  # 'w': portalocker truncates the holder's record only once the lock is ours.
  lock = portalocker.Lock(path, mode='w', timeout=wait_s or 0,
                          check_interval=POLL_SECONDS, encoding='utf-8')
  started = time.monotonic()
  try:
    lock_file = lock.acquire()
  except portalocker.AlreadyLocked:
    raise PipelineRootBusy(config.pipeline_root, _read_holder(path),
                           time.monotonic() - started) from None
  with holder_lib.holding(lock, lock_file) as me:
    yield me
