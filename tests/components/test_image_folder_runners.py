"""An image folder's Beam job gives the same examples on every runner: the
DirectRunner in one process and in two, and Beam's PortableRunner against a
local job service with an external worker pool (the Job API that Flink's and
Spark's job servers speak), so nothing depends on the DirectRunner."""

import os
import socket
import subprocess
import sys
import time

import pytest
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts

from components.tfds_example_gen import component
from components.tfds_example_gen import executor
from components.tfds_example_gen import settings
from tests.components import test_image_folder

# Generous: two Python servers starting on a loaded machine.
SERVER_START_S = 300


def _run(output_dir, image_dir, beam_args):
  examples = standard_artifacts.Examples()
  examples.uri = str(output_dir)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=beam_args)
  executor.Executor(context).Do(
      {}, {'examples': [examples]},
      component.TfdsExampleGen(settings.DataSpec(image_dir=image_dir)).exec_properties)
  return examples


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  directory = tmp_path_factory.mktemp('pets')
  test_image_folder.write_class_folders(str(directory))
  return str(directory)


@pytest.fixture(scope='module')
def one_process(folder, tmp_path_factory):
  return test_image_folder.split_digests(_run(
      tmp_path_factory.mktemp('one'), folder, ['--runner=DirectRunner']))


def test_one_process_writes_the_examples_the_tfds_path_wrote(one_process):
  assert one_process == test_image_folder.TFDS_PATH_EXAMPLES['pets']


@pytest.mark.slow
def test_two_worker_processes_write_the_same_examples(folder, one_process,
                                                      tmp_path):
  examples = _run(tmp_path, folder, [
      '--runner=DirectRunner', '--direct_running_mode=multi_processing',
      '--direct_num_workers=2'])
  assert test_image_folder.split_digests(examples) == one_process


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def _wait_for_port(port: int, server: subprocess.Popen, name: str) -> None:
  deadline = time.monotonic() + SERVER_START_S
  while time.monotonic() < deadline:
    if server.poll() is not None:
      raise RuntimeError(f'{name} exited with {server.returncode}')
    with socket.socket() as probe:
      if probe.connect_ex(('127.0.0.1', port)) == 0:
        return
    time.sleep(0.2)
  raise TimeoutError(f'{name} did not listen on {port} in {SERVER_START_S} s')


@pytest.fixture
def portable_services(tmp_path):
  """A local Beam job service and an external SDK worker pool, stopped after."""
  job_port, pool_port = _free_port(), _free_port()
  # The pool starts each worker as `python` from PATH: this environment's.
  environment = dict(os.environ, PATH=os.pathsep.join(
      [os.path.dirname(sys.executable), os.environ.get('PATH', '')]))
  servers = []
  try:
    for name, command in (
        ('job service', [sys.executable, '-m',
                         'apache_beam.runners.portability.local_job_service_main',
                         f'--port={job_port}',
                         f'--staging_dir={tmp_path / "staging"}']),
        ('worker pool', [sys.executable, '-m',
                         'apache_beam.runners.worker.worker_pool_main',
                         f'--service_port={pool_port}'])):
      with open(tmp_path / f'{name}.log', 'w') as log:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                  stderr=log, env=environment)
      servers.append(server)
      _wait_for_port(job_port if name == 'job service' else pool_port, server,
                     name)
    yield job_port, pool_port
  finally:
    for server in servers:
      server.terminate()
    for server in servers:
      try:
        server.wait(timeout=30)
      except subprocess.TimeoutExpired:
        server.kill()


@pytest.mark.slow
def test_the_portable_runner_with_an_external_worker_pool_writes_the_same_examples(
    folder, one_process, portable_services, tmp_path):
  job_port, pool_port = portable_services
  examples = _run(tmp_path / 'out', folder, [
      '--runner=PortableRunner', f'--job_endpoint=localhost:{job_port}',
      '--environment_type=EXTERNAL',
      f'--environment_config=localhost:{pool_port}'])
  assert test_image_folder.split_digests(examples) == one_process
