"""Runs `dae-pipeline` commands in forked children of one process that has
imported TFX and its stack once (20-70 s here), so that a test of many runs
pays it once. It imports no project module: each child imports the project's
code from disk as it is then (a test may have edited it).

Protocol (one JSON object per line): the process prints `{"ready": true}`
after its imports; each request `{"args": [...], "log": PATH, "crash_in":
[NODE_ID, ...] or null, "cwd": DIR or null}` on stdin forks a child, which starts its own process
group (a `kill -9` of the group kills the run, never this process), sends its
output to LOG, installs `crash_run`'s kill point when asked, and runs
`dae-pipeline ARGS` (in directory CWD when the request names one); the answer `{"status": N}` is its exit status, negative
for the signal that killed it. Nothing is opened before the fork (no MLMD, no
TF runtime, no Beam): each child is a whole run of its own.
"""

import contextlib
import json
import os
import select
import subprocess
import sys
import traceback

# Longest a run may take before the client gives up on it.
RUN_TIMEOUT_S = 900


def _child(request) -> int:
  os.setpgrp()
  if request.get('cwd'):
    os.chdir(request['cwd'])
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


@contextlib.contextmanager
def client(cwd, env=None):
  """Starts a zygote in `cwd`; yields run(args, log, crash_in=None, cwd=None)
  -> (exit status, the run's output), raising TimeoutError past
  RUN_TIMEOUT_S (the zygote is killed)."""
  process = subprocess.Popen([sys.executable, '-m', 'tests.e2e.zygote'],
                             cwd=cwd, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
  if json.loads(process.stdout.readline() or 'null') != {'ready': True}:
    process.kill()
    raise RuntimeError('the zygote exited before its imports were done')

  def run(args, log, crash_in=None, cwd=None):
    process.stdin.write(json.dumps({'args': [str(arg) for arg in args],
                                    'log': str(log), 'crash_in': crash_in,
                                    'cwd': None if cwd is None else str(cwd)}) + '\n')
    process.stdin.flush()
    ready, _, _ = select.select([process.stdout], [], [], RUN_TIMEOUT_S)
    if not ready:
      process.kill()
      raise TimeoutError(f'no answer within {RUN_TIMEOUT_S} s; see {log}')
    status = json.loads(process.stdout.readline())['status']
    with open(log, encoding='utf-8') as log_file:
      return status, log_file.read()

  try:
    yield run
  finally:
    process.stdin.close()
    process.wait(timeout=60)


if __name__ == '__main__':
  main()
