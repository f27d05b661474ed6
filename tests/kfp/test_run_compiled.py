"""The compiled Kubeflow package, run end to end the way open-source KFP v2
runs it (`dae-pipeline run-compiled`): every task its own process through the
project's entrypoint, conditions as CEL, artifacts handed on as the driver does.

Two runs of the smoke package on tiny data, once with the pipeline root and
serving dir on a local path, once on gs:// (a GCS emulator on 127.0.0.1 and
a local HTTPS proxy for TensorFlow's GCS client, tests/gcs_emulator.py): the
first pushes; the second, an untrained candidate with the value floors out of
the way, is evaluated against the first push (the served model is its
baseline), not blessed, and not pushed.
"""

import contextlib
import json
import os
import subprocess
import sys

import pytest

from components import serving_lock
from pipeline import cli
from pipeline import kfp_local
from pipeline import kubeflow_runner
import pipeline_config
from tests import gcs_emulator
from tests import idx_files

pytestmark = pytest.mark.kfp

SPLITS = {'data.train_examples': 80, 'data.eval_examples': 30, 'data.test_examples': 20}


BUCKET = 'mnist-dae'


def _compile(tmp_path, name, storage, **overrides):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  base = f'gs://{BUCKET}' if storage == 'gs' else str(tmp_path)
  config = pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'pipeline_root': f'{base}/root', 'serving_dir': f'{base}/serving',
      'data.source_dir': tiny.directory, **SPLITS,
      'training.epochs': 32, 'training.max_train_steps': 64, **overrides})
  package = str(tmp_path / f'{name}.json')
  kubeflow_runner.compile_pipeline(
      config, kubeflow_runner.KubeflowOptions(gpu_count=0), package)
  return config, package


def _metadata(results, task, key):
  return results[task].outputs[key][0]['metadata']


def _versions(serving_dir):
  """The serving dir's entries, listed the way a model server sees it."""
  if not serving_dir.startswith('gs://'):
    return sorted(name for name in os.listdir(serving_dir)
                  if name != serving_lock.LOCK_FILENAME)
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  prefix = serving_dir[len(f'gs://{BUCKET}/'):] + '/'
  names = {blob.name[len(prefix):].split('/')[0]
           for blob in storage.Client().list_blobs(BUCKET, prefix=prefix)}
  return sorted(name for name in names
                if name and name not in (serving_lock.LOCK_FILENAME,
                                         serving_lock.LEASE_NAME))


@pytest.fixture(scope='module', params=['local', 'gs'])
def runs(request, tmp_path_factory):
  storage = request.param
  tmp_path = tmp_path_factory.mktemp(f'run_compiled_{storage}')
  # Fresh noise: the Trainer redraws noise with the settings NoiseTransform
  # records on its output, which must reach it through the artifact's metadata.
  config, good = _compile(tmp_path, 'good', storage,
                          **{'training.fresh_noise': True})
  _, untrained = _compile(tmp_path, 'untrained', storage, **{
      'training.max_train_steps': 0, 'thresholds.min_psnr_db': 0.0,
      'thresholds.max_mse': 1.0})
  work_dir = str(tmp_path / 'work')
  with contextlib.ExitStack() as stack:
    environment = {}
    if storage == 'gs':
      environment = stack.enter_context(gcs_emulator.running(BUCKET))
      stack.enter_context(gcs_emulator.applied(environment))
    first = kfp_local.run_package(good, run_id='first', work_dir=work_dir)
    served_after_first = _versions(config.serving_dir)
    # The second run on gs:// only: each run is ~11 processes importing TF
    # (minutes); the local-path behaviour is also covered by tests/e2e.
    second = served_after_second = None
    if storage == 'gs':
      second = kfp_local.run_package(untrained, run_id='second', work_dir=work_dir)
      served_after_second = _versions(config.serving_dir)
    loadable = subprocess.run(
        ['saved_model_cli', 'show', '--all', '--dir',
         f'{config.serving_dir}/{served_after_first[0]}'] if served_after_first else ['false'],
        capture_output=True, text=True, check=False,
        env={**os.environ, 'PATH': f'{os.path.dirname(sys.executable)}:{os.environ["PATH"]}'})
    yield dict(config=config, first=first, second=second, storage=storage,
               served_after_first=served_after_first,
               served_after_second=served_after_second, loadable=loadable)


def test_the_first_run_completes_every_task_and_pushes_a_loadable_model(runs):
  first, config = runs['first'], runs['config']
  assert {result.state for result in first.values()} == {'COMPLETE'}, {
      name: (result.state, result.reason) for name, result in first.items()}
  assert _metadata(first, 'ServedModel', 'model')['served_version'] == ''
  assert _metadata(first, 'Evaluator', 'blessing')['blessed'] == 1.0
  assert len(runs['served_after_first']) == 1
  version_dir = f"{config.serving_dir}/{runs['served_after_first'][0]}"
  assert _metadata(first, 'Pusher', 'pushed_model')['pushed_destination'] == version_dir
  # The pushed model loads (saved_model_cli, on gs:// through the emulator).
  assert runs['loadable'].returncode == 0, runs['loadable'].stderr[-2000:]
  assert "signature_def['serving_default']" in runs['loadable'].stdout
  # The Trainer drew fresh noise with the settings NoiseTransform recorded
  # (it fails when they do not reach it).
  recorded = json.loads(_metadata(first, 'NoiseTransform', 'noisy_examples')['noise_spec'])
  assert (recorded['kind'], recorded['stddev'], recorded['seed']) == (
      config.noise.kind, config.noise.stddev, config.noise.seed)
  # Output URIs as the OSS driver lays them out: <root>/<pipeline>/<run>/<task>/<salt>/<key>.
  uri = first['Trainer'].outputs['model'][0]['uri']
  assert uri.startswith(f'{config.pipeline_root}/{config.pipeline_name}/first/Trainer/')


@pytest.mark.parametrize('runs', ['gs'], indirect=True)
def test_the_second_run_takes_the_first_push_as_baseline_and_does_not_push(runs):
  second = runs['second']
  served = _metadata(second, 'ServedModel', 'model')
  assert served['served_version'] == runs['served_after_first'][0]
  blessing = _metadata(second, 'Evaluator', 'blessing')
  assert blessing['blessed'] == 0.0
  assert blessing['baseline_model'] == second['ServedModel'].outputs['model'][0]['uri']
  assert second['Pusher'].state == 'SKIPPED'
  assert 'condition false' in second['Pusher'].reason
  assert second['VisualReport'].state == 'COMPLETE'  # Drawn, blessed or not.
  assert runs['served_after_second'] == runs['served_after_first']


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
