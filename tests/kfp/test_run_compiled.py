"""The compiled Kubeflow package, run end to end the way open-source KFP v2
runs it (`dae-pipeline run-compiled`): every task its own process through the
project's entrypoint, conditions as CEL, artifacts handed on as the driver does.

Here the smoke package on tiny data, with the pipeline root and serving dir on
a local path, run as `dae-pipeline run-compiled PACKAGE` runs it (a pre-flight),
pushes a loadable model to its scratch serving dir, not the package's. The
same package on gs:// (a GCS emulator on 127.0.0.1, tests/gcs_emulator.py)
with storage faults injected, and its second run against the first push, are
in test_storage_faults.py (tests/kfp/compiled_runs.py holds what both share).
"""

import json
import os

import pytest

from pipeline import cli
from tests.kfp import compiled_runs

pytestmark = pytest.mark.kfp


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  # The first run only: each run is ~11 processes importing TF (minutes); the
  # second run's behaviour is checked on gs://, and locally by tests/e2e.
  return compiled_runs.run_both(tmp_path_factory.mktemp('run_compiled_local'), 'local',
                                second=False, push_for_real=False)


def test_the_first_run_completes_every_task_and_pushes_a_loadable_model(runs):
  compiled_runs.check_the_first_run(runs)


def test_it_says_first_that_it_pushes_to_its_scratch_serving_dir_and_does(runs):
  config, scratch = runs['config'], runs['pushed_to']
  assert runs['status'] == 0, runs['output'][-3000:]
  assert runs['output'].splitlines()[0] == (
      f'run-compiled: pushes to the scratch serving dir {scratch} (empty, as the '
      f"package's {config.serving_dir} serves nothing; --push-for-real pushes to "
      "the package's)")
  # The package's serving dir (what a model server would load) is untouched.
  assert not os.path.exists(config.serving_dir)
  assert compiled_runs.versions(scratch) == runs['served_after_first']


def test_it_ends_with_the_verdict_of_run_and_where_the_logs_are(runs):
  lines = runs['output'].splitlines()
  version = runs['served_after_first'][0]
  verdict = next(line for line in lines if line.startswith('verdict: '))
  assert verdict.startswith(f'verdict: blessed; pushed as version {version} (')
  assert verdict.endswith(f") to {runs['pushed_to']}/{version}")
  html_report = runs['first']['VisualReport'].outputs['html_report'][0]['uri']
  assert lines[-2].startswith(f'next: open {html_report} in a browser   (')
  logs = os.path.join(runs['work_dir'], 'first')
  assert lines[-1] == f'logs: {logs}/<task>/log.txt'
  assert os.path.isfile(os.path.join(logs, 'Trainer', 'log.txt'))


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
