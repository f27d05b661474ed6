"""Runs `dae-pipeline` commands in forked children of one process that has
imported TFX and its stack once (20-70 s here), so that a test of many runs
pays it once. It imports no project module: each child imports the project's
code from disk as it is then (a test may have edited it).

Protocol (one JSON object per line): the process prints `{"ready": true}`
after its imports; each request `{"args": [...], "log": PATH, "crash_in":
[NODE_ID, ...] or null}` on stdin forks a child, which starts its own process
group (a `kill -9` of the group kills the run, never this process), sends its
output to LOG, installs `crash_run`'s kill point when asked, and runs
`dae-pipeline ARGS`; the answer `{"status": N}` is its exit status, negative
for the signal that killed it. Nothing is opened before the fork (no MLMD, no
TF runtime, no Beam): each child is a whole run of its own.
"""

import json
import os
import sys
import traceback


def _child(request) -> int:
  os.setpgrp()
  log = os.open(request['log'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
  os.dup2(log, 1)
  os.dup2(log, 2)
  try:
    if request.get('crash_in'):
      from tests.e2e import crash_run  # pylint: disable=g-import-not-at-top
      crash_run.install(*request['crash_in'])
    from pipeline import cli  # pylint: disable=g-import-not-at-top
    return cli.main(request['args'])
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    return 70
  finally:
    sys.stdout.flush()
    sys.stderr.flush()


def main() -> None:
  # The slow imports, once; third-party only.
  # pylint: disable=g-import-not-at-top,unused-import
  import apache_beam
  import keras
  import tensorflow_data_validation
  import tensorflow_datasets
  import tensorflow_model_analysis
  from tfx import v1
  from tfx.dsl.compiler import compiler
  from tfx.orchestration.portable import launcher
  # pylint: enable=g-import-not-at-top,unused-import
  print(json.dumps({'ready': True}), flush=True)
  for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
      os._exit(_child(request))  # pylint: disable=protected-access
    _, status = os.waitpid(pid, 0)
    print(json.dumps({'status': os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == '__main__':
  main()
