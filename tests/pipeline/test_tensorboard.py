"""`dae-pipeline tensorboard`: a real TensorBoard on the logs MLMD names."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.common import names
from pipeline import run_summary
from tests.gcs_emulator import free_port

pytestmark = pytest.mark.slow

# TensorBoard imports TensorFlow before it listens (~20 s on a busy machine,
# minutes on a loaded one) and answers its first requests slowly: these bound
# a failure alone.
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0


def record_trainer_logs(metadata_path: str, log_dir: str) -> None:
  """Writes an MLMD store with one run whose Trainer wrote `log_dir`, as
  TFX's launcher records it (run and node contexts, an OUTPUT event)."""
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  store = metadata_store.MetadataStore(config)
  run_context = metadata_store_pb2.Context(
      type_id=store.put_context_type(metadata_store_pb2.ContextType(
          name=run_summary.PIPELINE_RUN_CONTEXT)), name='run-1')
  node_context = metadata_store_pb2.Context(
      type_id=store.put_context_type(metadata_store_pb2.ContextType(
          name=run_summary.NODE_CONTEXT)), name=f'mnist-dae.{names.TRAINER_NODE}')
  execution = metadata_store_pb2.Execution(
      type_id=store.put_execution_type(metadata_store_pb2.ExecutionType(
          name='tfx.components.trainer.component.Trainer')),
      last_known_state=metadata_store_pb2.Execution.COMPLETE)
  artifact = metadata_store_pb2.Artifact(
      type_id=store.put_artifact_type(metadata_store_pb2.ArtifactType(
          name='ModelRun')), uri=log_dir, state=metadata_store_pb2.Artifact.LIVE)
  event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
  event.path.steps.add().key = names.MODEL_RUN_KEY
  store.put_execution(execution, [(artifact, event)], [run_context, node_context])


def _get(url: str) -> bytes:
  with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_S) as response:
    assert response.status == 200, (url, response.status)
    return response.read()


def _wait_until_served(process: subprocess.Popen, url: str, log_path: str) -> None:
  """Polls `url` until it answers, failing with the server's output when the
  server exits or START_TIMEOUT_S passes."""
  deadline = time.monotonic() + START_TIMEOUT_S
  while time.monotonic() < deadline:
    if process.poll() is not None:
      with open(log_path, encoding='utf-8') as log:
        pytest.fail(f'dae-pipeline tensorboard exited with {process.returncode}:\n'
                    f'{log.read()}')
    try:
      _get(url)
      return
    except (urllib.error.URLError, ConnectionError, TimeoutError):
      time.sleep(0.5)
  with open(log_path, encoding='utf-8') as log:
    pytest.fail(f'no answer from {url} in {START_TIMEOUT_S} s:\n{log.read()}')


def _stop(process: subprocess.Popen) -> None:
  """Stops the server's process group (TensorBoard starts a data server
  beside itself): SIGTERM, then SIGKILL when it lingers."""
  for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
      os.killpg(process.pid, sig)
    except ProcessLookupError:
      return
    try:
      process.wait(timeout=STOP_TIMEOUT_S)
      return
    except subprocess.TimeoutExpired:
      continue


def test_tensorboard_serves_the_trainer_logs_of_the_latest_run(tmp_path):
  log_dir = str(tmp_path / 'Trainer' / 'model_run' / '7')
  os.makedirs(log_dir)
  metadata_path = str(tmp_path / 'metadata.sqlite')
  record_trainer_logs(metadata_path, log_dir)
  port = free_port()
  # The console script pip installs, as `make tensorboard` runs it.
  entry_point = os.path.join(os.path.dirname(sys.executable), 'dae-pipeline')
  log_path = str(tmp_path / 'tensorboard.log')
  with open(log_path, 'w', encoding='utf-8') as log:
    process = subprocess.Popen(
        [entry_point, 'tensorboard', '--pipeline-root', str(tmp_path),
         '--metadata-path', metadata_path, '--port', str(port),
         '--host', '127.0.0.1'],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
  try:
    _wait_until_served(process, f'http://127.0.0.1:{port}/', log_path)
    served = json.loads(_get(f'http://127.0.0.1:{port}/data/logdir'))
    assert served['logdir'] == log_dir
  finally:
    _stop(process)
  assert process.poll() is not None
  with open(log_path, encoding='utf-8') as log:
    output = log.read()
  assert f'Trainer logs of run run-1: {log_dir}' in output
  # Quiet: no TensorFlow C++ errors or warnings, no Python warnings.
  assert not re.search(r'^\S+ \S+: [EW] ', output, re.MULTILINE), output
  assert 'Warning:' not in output, output
  assert 'experimental fast data loading' not in output, output
