"""The compiled Kubeflow package, run end to end the way open-source KFP v2
runs it (`dae-pipeline run-compiled`): every task its own process through the
project's entrypoint, conditions as CEL, artifacts handed on as the driver does.

Here the smoke package on tiny data, with the pipeline root and serving dir on
a local path, pushes a loadable model. The same package on gs:// (a GCS
emulator on 127.0.0.1, tests/gcs_emulator.py) with storage faults injected,
and its second run against the first push, are in test_storage_faults.py
(tests/kfp/compiled_runs.py holds what both share).
"""

import json

import pytest

from pipeline import cli
from tests.kfp import compiled_runs

pytestmark = pytest.mark.kfp


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  # The first run only: each run is ~11 processes importing TF (minutes); the
  # second run's behaviour is checked on gs://, and locally by tests/e2e.
  return compiled_runs.run_both(tmp_path_factory.mktemp('run_compiled_local'), 'local',
                                second=False)


def test_the_first_run_completes_every_task_and_pushes_a_loadable_model(runs):
  compiled_runs.check_the_first_run(runs)


def test_the_cli_refuses_a_package_with_a_resolver_naming_the_task(tmp_path, capsys):
  package = tmp_path / 'old.json'
  package.write_text(json.dumps({'pipelineSpec': {
      'pipelineInfo': {'name': 'p'},
      'components': {'c': {'executorLabel': 'e'}},
      'deploymentSpec': {'executors': {'e': {'resolver': {}}}},
      'root': {'dag': {'tasks': {'latest_blessed_model_resolver': {
          'componentRef': {'name': 'c'}}}}}}}))
  assert cli.main(['run-compiled', str(package)]) == cli.EXIT_INVALID_CONFIG
  assert ("task 'latest_blessed_model_resolver': resolver executors not implemented"
          in capsys.readouterr().err)
