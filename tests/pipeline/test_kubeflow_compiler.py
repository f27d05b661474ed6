"""Compiling the same DAG for Kubeflow Pipelines v2 (offline), and the image."""

import importlib.util
import json
import os
import re

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import cli
from pipeline import code_fingerprint
from pipeline.kubeflow import run_compiled
from pipeline.kubeflow import compiler
from pipeline import pipeline as pipeline_module
import pipeline_config

IMAGE = 'registry.example.com/mnist-dae-pipeline:test'


def _config():
  return pipeline_config.with_overrides(pipeline_config.load_profile(), {
      'pipeline_root': 'gs://example-bucket/mnist-dae/root',
      'serving_dir': 'gs://example-bucket/mnist-dae/serving',
      'beam_pipeline_args': '--runner=DataflowRunner,--region=europe-west4',
  })


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  output = str(tmp_path_factory.mktemp('kubeflow') / 'pipeline.json')
  options = compiler.KubeflowOptions(image=IMAGE, gpu_count=2,
                                            gpu_type='nvidia.com/gpu')
  job = compiler.compile_pipeline(_config(), options, output)
  with open(output) as package:
    written = json.load(package)
  spec = json_format.ParseDict(written['pipelineSpec'],
                               pipeline_spec_pb2.PipelineSpec())
  return job, written, spec


def test_json_package_parses_as_a_pipeline_job_and_spec(compiled):
  job, written, spec = compiled
  assert written == job
  json_format.ParseDict(written, pipeline_spec_pb2.PipelineJob())
  assert spec.schema_version == '2.1.0'
  assert spec.pipeline_info.name == _config().pipeline_name


def test_spec_holds_every_component_of_the_local_dag_in_dependency_order(compiled):
  _, _, spec = compiled
  local = pipeline_module.create_pipeline(_config())
  tasks = spec.root.dag.tasks
  assert {name for name in tasks} == {c.id for c in local.components}
  for component in local.components:
    for upstream in component.upstream_nodes:
      dependents = [
          name for name in tasks if name == component.id and
          any(dep == upstream.id for dep in tasks[name].dependent_tasks)]
      assert dependents, f'{component.id} does not wait for {upstream.id}'
  # The condition reads the Pusher's own blessing input (TFX 1.21, as 1.16, names an
  # input the task lacks; compile_pipeline renames it).
  for task in ('ServingCheck', 'Pusher'):
    assert tasks[task].trigger_policy.condition == (
        "(inputs.artifacts['model_blessing'].artifacts[0].metadata['blessed'] == 1.0)")


def test_the_pusher_gets_the_served_baseline_it_compares_against(compiled):
  _, _, spec = compiled
  baseline = spec.root.dag.tasks['Pusher'].inputs.artifacts['baseline_model']
  assert baseline.task_output_artifact.producer_task == 'ServedModel'
  assert baseline.task_output_artifact.output_artifact_key == 'model'
  # Its record's dataset and noise: what NoiseTransform recorded at run time
  # on the examples the Evaluator ran on (the noise may be a run parameter).
  examples = spec.root.dag.tasks['Pusher'].inputs.artifacts['examples']
  assert examples.task_output_artifact.producer_task == 'NoiseTransform'


def test_every_task_uses_the_image_and_only_the_trainer_requests_gpus(compiled):
  _, written, _ = compiled
  executors = written['pipelineSpec']['deploymentSpec']['executors']
  containers = {name: executor['container'] for name, executor in executors.items()
                if 'container' in executor}
  assert {container['image'] for container in containers.values()} == {IMAGE}
  with_resources = {name: container['resources'] for name, container in containers.items()
                    if 'resources' in container}
  assert list(with_resources) == ['Trainer_executor']
  assert with_resources['Trainer_executor']['accelerator'] == {
      'type': 'nvidia.com/gpu', 'count': '2'}
  assert with_resources['Trainer_executor']['cpuLimit'] == 8.0


def test_noise_settings_are_runtime_parameters_with_defaults(compiled):
  _, written, _ = compiled
  spec = written['pipelineSpec']
  parameters = spec['root']['inputDefinitions']['parameters']
  assert parameters['noise_stddev']['defaultValue'] == 0.2
  assert parameters['noise_amount']['defaultValue'] == 0.1
  assert parameters['noise_seed']['defaultValue'] == 42
  noise_inputs = spec['root']['dag']['tasks']['NoiseTransform']['inputs']['parameters']
  assert {name: noise_inputs[name] for name in ('stddev', 'amount', 'seed')} == {
      name: {'componentInputParameter': f'noise_{name}'}
      for name in ('stddev', 'amount', 'seed')}
  # Every other noise setting is in the one spec, applied under the per-run ones.
  assert noise_inputs['noise_spec'] == {
      'runtimeValue': {'constant': _config().noise.to_json()}}


def test_beam_args_and_image_paths_reach_the_tasks(compiled):
  _, written, _ = compiled
  text = json.dumps(written)
  assert '--runner=DataflowRunner' in text
  # The vendored data relative to the project: /pipeline/data/mnist in the
  # image, this checkout's under run-compiled.
  assert _data_spec(written)['source_dir'] == 'data/mnist'
  assert pipeline_config.repository_root() not in text
  assert 'gs://example-bucket/mnist-dae/serving' in text


def test_only_the_pusher_is_never_cached_and_project_code_keys_the_cache(compiled):
  _, written, _ = compiled
  tasks = written['pipelineSpec']['root']['dag']['tasks']
  uncached = {name for name, task in tasks.items()
              if not task.get('cachingOptions', {}).get('enableCache')}
  assert uncached == set(pipeline_module.never_cached_nodes(None)) == {'ServedModel', 'Pusher'}
  # The code fingerprint is a parameter of every task that runs project code,
  # so KFP's cache key changes with that code.
  fingerprinted = {
      name for name, task in tasks.items()
      if code_fingerprint.CODE_FINGERPRINT_KEY in task.get('inputs', {}).get('parameters', {})}
  assert fingerprinted == {'TfdsExampleGen', 'SchemaImporter', 'DataValidationGate',
                           'NoiseTransform', 'Trainer', 'ServedModel', 'Evaluator',
                           'VisualReport', 'ServingCheck', 'Pusher'}


def test_yaml_package_is_the_bare_pipeline_spec(compiled, tmp_path):
  job, _, _ = compiled
  output = str(tmp_path / 'pipeline.yaml')
  compiler.write_package(job, output)
  with open(output) as package:
    spec = yaml.safe_load(package)
  json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
  assert spec == job['pipelineSpec']


def test_compile_command_writes_the_package(tmp_path):
  output = tmp_path / 'out' / 'pipeline.json'
  assert cli.main(['compile', '--target', 'kubeflow', '--output', str(output),
                   '--profile', 'smoke', '--image', IMAGE, '--gpus', '0']) == 0
  written = json.loads(output.read_text())
  executors = written['pipelineSpec']['deploymentSpec']['executors']
  assert 'accelerator' not in json.dumps(executors)


def test_bad_kubeflow_options_name_their_field():
  with pytest.raises(pipeline_config.ConfigError, match='gpu_count'):
    compiler.KubeflowOptions(gpu_count=-1)


def test_dockerfile_builds_from_the_lock_file_into_the_image_root():
  root = pipeline_config.repository_root()
  with open(os.path.join(root, 'Dockerfile')) as dockerfile:
    text = dockerfile.read()
  assert 'requirements.lock' in text and '--require-hashes' in text
  assert f'WORKDIR {compiler.IMAGE_ROOT}' in text
  for source in re.findall(r'^COPY (?!--from)(.+) \S+$', text, flags=re.MULTILINE):
    for path in source.split():
      assert os.path.exists(os.path.join(root, path)), path
  # Dataflow workers boot with Beam's launcher, of the locked Beam version.
  entrypoint = json.loads(re.search(r'^ENTRYPOINT (.+)$', text, re.MULTILINE)[1])
  assert entrypoint == ['/opt/apache/beam/boot']
  beam_version = re.search(r'^ARG BEAM_VERSION=(\S+)$', text, re.MULTILINE)[1]
  assert f'apache-beam=={beam_version} ' in _lock_pins('requirements.lock')


def _lock_pins(name):
  with open(os.path.join(pipeline_config.repository_root(), name)) as lock:
    return ' '.join(line.split(' \\')[0] + ' ' for line in lock if re.match(r'^[a-z0-9]', line))


def test_the_gpu_lock_is_the_cpu_lock_plus_tensorflows_cuda_wheels():
  cpu = set(_lock_pins('requirements.lock').split())
  gpu = set(_lock_pins('requirements-gpu.lock').split())
  assert cpu <= gpu  # Same versions of everything, TensorFlow included.
  assert {pin.partition('==')[0] for pin in gpu - cpu} >= {
      'nvidia-cudnn-cu12', 'nvidia-cublas-cu12', 'nvidia-cuda-runtime-cu12'}
  assert all(pin.startswith('nvidia-') for pin in gpu - cpu)


def test_the_compiled_tasks_run_the_projects_entrypoint_module(compiled):
  _, written, _ = compiled
  trainer = written['pipelineSpec']['deploymentSpec']['executors']['Trainer_executor']
  command = trainer['container']['command']
  assert command[:2] == ['python', '-m']
  assert importlib.util.find_spec(command[2]) is not None


def test_remote_beam_workers_get_the_image_and_tfds_prepares_under_the_root(compiled):
  _, written, _ = compiled
  text = json.dumps(written)
  assert f'--sdk_container_image={IMAGE}' in text
  assert _data_spec(written)['tfds_data_dir'] == 'gs://example-bucket/mnist-dae/root/tfds'


def _data_spec(written):
  """The ExampleGen's data settings, as compiled (one JSON parameter)."""
  parameters = written['pipelineSpec']['root']['dag']['tasks']['TfdsExampleGen'][
      'inputs']['parameters']
  return json.loads(parameters['data_spec']['runtimeValue']['constant'])


def test_no_task_is_one_the_oss_backend_refuses_and_all_use_the_entrypoint(compiled):
  _, written, _ = compiled
  spec = written['pipelineSpec']
  assert run_compiled.oss_refusals(spec) == []
  executors = spec['deploymentSpec']['executors']
  assert {next(iter(executor)) for executor in executors.values()} == {'container'}
  assert {tuple(executor['container']['command']) for executor in executors.values()} == {
      ('python', '-m', 'pipeline.kubeflow.entrypoint')}
  # The baseline is a plain task, never cached (it reads the serving dir).
  tasks = spec['root']['dag']['tasks']
  assert tasks['Evaluator']['inputs']['artifacts']['baseline_model'] == {
      'taskOutputArtifact': {'outputArtifactKey': 'model', 'producerTask': 'ServedModel'}}


def test_the_html_report_is_kfps_html_type_and_runs_as_the_projects_class(compiled):
  from components.visual_report import component as report_component  # pylint: disable=g-import-not-at-top
  from pipeline.kubeflow import entrypoint  # pylint: disable=g-import-not-at-top
  _, written, _ = compiled
  spec = written['pipelineSpec']
  name = spec['root']['dag']['tasks']['VisualReport']['componentRef']['name']
  outputs = spec['components'][name]['outputDefinitions']['artifacts']
  # As the kfp SDK compiles kfp.dsl.HTML: the type the KFP and Vertex UIs render.
  assert outputs['html_report']['artifactType'] == {
      'schemaTitle': 'system.HTML', 'schemaVersion': '0.0.1'}
  assert entrypoint.schema_title(outputs['report']['artifactType']) == (
      'mnist_dae.DenoisingReport')
  # At run time the entrypoint hands TFX the project's class for that type.
  executor_input = {'outputs': {'artifacts': {'html_report': {'artifacts': [{
      'name': 'html_report', 'uri': 'gs://bucket/html_report',
      'type': outputs['html_report']['artifactType']}]}}}}
  entrypoint.normalize_executor_input(executor_input, None)
  title = executor_input['outputs']['artifacts']['html_report']['artifacts'][0]['type']
  assert title == {'schemaTitle': 'components.visual_report.component.HtmlReport'}
  assert report_component.HtmlReport.TYPE_NAME == 'system.HTML'


def test_the_source_fingerprint_keys_the_example_gens_cache_on_kubeflow(compiled):
  # TFX's KFP v2 step builder runs no custom driver: the fingerprint is a
  # task parameter, computed when compiling from the files the image copies.
  from components.tfds_example_gen import sources  # pylint: disable=g-import-not-at-top
  _, written, _ = compiled
  parameters = written['pipelineSpec']['root']['dag']['tasks']['TfdsExampleGen']['inputs'][
      'parameters']
  assert parameters['source_fingerprint'] == {'runtimeValue': {
      'constant': sources.fingerprint_source_dir(pipeline_config.default_source_dir())}}


def test_local_paths_are_compiled_absolute(tmp_path, monkeypatch):
  # Relative to where `compile` runs, not to the project root where
  # run-compiled's tasks run.
  monkeypatch.chdir(tmp_path)
  config = pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'pipeline_root': 'root', 'serving_dir': 'serving'})
  job = compiler.compile_pipeline(config, compiler.KubeflowOptions(gpu_count=0))
  assert job['runtimeConfig']['gcsOutputDirectory'] == str(tmp_path / 'root')
  assert str(tmp_path / 'serving') in json.dumps(job)


def test_a_local_image_folder_is_warned_about_a_bucket_one_is_not():
  config = pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'pipeline_root': 'gs://b/root', 'serving_dir': 'gs://b/serving',
      'data.image_dir': '/home/me/photos'})
  [warning] = compiler.local_path_warnings(config)
  assert warning.startswith("data.image_dir '/home/me/photos' is a local path")
  bucket = pipeline_config.with_overrides(config, {'data.image_dir': 'gs://b/photos'})
  assert compiler.local_path_warnings(bucket) == []


def test_run_compiled_finds_the_serving_dir_and_replaces_every_mention(compiled):
  # A pre-flight pushes to a scratch serving dir: run-compiled must find the
  # package's (ServedModel's and Pusher's parameters) and leave no task
  # reading or pushing to it.
  _, written, _ = compiled
  spec = written['pipelineSpec']
  assert run_compiled.package_serving_dir(spec) == _config().serving_dir
  rewritten = json.dumps(run_compiled.with_serving_dir(spec, '/scratch/serving'))
  assert _config().serving_dir not in rewritten
  assert rewritten.count('/scratch/serving') == 2
