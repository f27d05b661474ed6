"""A kill point for a `dae-pipeline` run: SIGKILL to its whole process group
from inside one component (installed by tests/e2e/zygote.py in a forked run).

While NODE_ID's executor runs, a watcher thread sends SIGKILL to the process
group as soon as a file appears under one of the execution's output URIs:
the executor has started writing and not finished. If the executor returns
before that, the kill comes right after it, before TFX records the execution
in MLMD. With `before-publish` (for the Pusher), the kill comes when the
Pusher is about to rename its fully copied staging directory into a version:
the moment a push leaves the most debris. Either way the run dies the way
`kill -9` kills it.
"""

import os
import signal
import sys
import threading

from tfx.dsl.io import fileio
from tfx.orchestration.portable import launcher

POLL_SECONDS = 0.005


def _has_files(directories) -> bool:
  return any(files for directory in directories
             for _, _, files in os.walk(directory))


def _kill_everything() -> None:
  sys.stderr.write('crash_run: SIGKILL\n')
  sys.stderr.flush()
  os.killpg(os.getpgid(0), signal.SIGKILL)


BEFORE_PUBLISH = 'before-publish'
STAGING_PREFIX = '.staging-'


def _die_before_publishing_staging() -> None:
  rename = fileio.rename

  def rename_or_die(source, destination, *args, **kwargs):
    if os.path.basename(str(source).rstrip('/')).startswith(STAGING_PREFIX):
      _kill_everything()
    return rename(source, destination, *args, **kwargs)

  fileio.rename = rename_or_die


def install(node_id: str, when: str = '') -> None:
  """Makes `node_id`'s execution kill the run (see the module docstring)."""
  original = launcher.Launcher._run_executor  # pylint: disable=protected-access

  def run_and_die(self, execution_info):
    if self._pipeline_node.node_info.id != node_id:  # pylint: disable=protected-access
      return original(self, execution_info)
    if when == BEFORE_PUBLISH:
      _die_before_publishing_staging()
      return original(self, execution_info)
    watched = [artifact.uri for artifacts in execution_info.output_dict.values()
               for artifact in artifacts]
    finished = threading.Event()

    def watch():
      while not finished.is_set():
        if _has_files(watched):
          _kill_everything()
        finished.wait(POLL_SECONDS)

    threading.Thread(target=watch, daemon=True).start()
    result = original(self, execution_info)
    _kill_everything()
    return result  # Not reached.

  launcher.Launcher._run_executor = run_and_die  # pylint: disable=protected-access
