"""The project's container entrypoint, fed ExecutorInputs shaped as the
open-source KFP v2 driver makes them (backend/src/v2/metadata: inputs built
from MLMD with properties merged into `metadata` and the stored schema as type).
"""

import json
import subprocess
import sys

import pytest

from pipeline.kubeflow import entrypoint
from tests import gcs_emulator

EXAMPLES_SCHEMA = 'title: tfx.Examples\ntype: object\n'
MODEL_SCHEMA = 'title: tfx.Model\ntype: object\n'
BLESSING_SCHEMA = 'title: tfx.ModelBlessing\ntype: object\n'


def _input(artifact_type, **metadata):
  artifact = {'name': '17', 'uri': 'gs://bucket/root/task/out', 'metadata': metadata}
  if artifact_type is not None:
    artifact['type'] = artifact_type
  return {'artifacts': [artifact]}


def _spec(**schemas):
  return {'artifacts': {key: {'artifactType': {'instanceSchema': schema}}
                        for key, schema in schemas.items()}}


def _titles(executor_input, side='inputs'):
  return {key: value['artifacts'][0]['type']
          for key, value in executor_input[side]['artifacts'].items()}


def test_system_titles_map_to_tfx_types_by_their_metadata_keys():
  executor_input = {'inputs': {'artifacts': {
      'examples': _input({'schemaTitle': 'system.Dataset'}, split_names='["train"]', span=0.0),
      'model': _input({'schemaTitle': 'system.Model'}),
      'pushed': _input({'schemaTitle': 'system.Model'}, pushed=1.0),
      'blessing': _input({'schemaTitle': 'system.Artifact'}, blessed=1.0)}}}
  entrypoint.normalize_executor_input(executor_input, None)
  assert _titles(executor_input) == {
      'examples': {'schemaTitle': 'tfx.Examples'}, 'model': {'schemaTitle': 'tfx.Model'},
      'pushed': {'schemaTitle': 'tfx.PushedModel'},
      'blessing': {'schemaTitle': 'tfx.ModelBlessing'}}


def test_an_empty_or_missing_instance_schema_takes_the_components_declared_type():
  executor_input = {'inputs': {'artifacts': {
      'examples': _input({'instanceSchema': ''}, split_names='["test"]'),
      'model': _input(None)}}}
  changes = entrypoint.normalize_executor_input(
      executor_input, _spec(examples=EXAMPLES_SCHEMA, model=MODEL_SCHEMA))
  assert _titles(executor_input) == {'examples': {'schemaTitle': 'tfx.Examples'},
                                     'model': {'schemaTitle': 'tfx.Model'}}
  assert changes == ['inputs.examples: none -> tfx.Examples',
                     'inputs.model: none -> tfx.Model']


def test_the_declared_type_wins_over_a_generic_system_title():
  # A ModelBlessing recorded as system.Artifact without its keys (a new run).
  executor_input = {'inputs': {'artifacts': {
      'model_blessing': _input({'schemaTitle': 'system.Artifact'})}}}
  entrypoint.normalize_executor_input(
      executor_input, _spec(model_blessing=BLESSING_SCHEMA))
  assert _titles(executor_input) == {'model_blessing': {'schemaTitle': 'tfx.ModelBlessing'}}


def test_tfx_types_are_kept_as_vertex_passes_them():
  executor_input = {'inputs': {'artifacts': {
      'model': _input({'instanceSchema': MODEL_SCHEMA})}},
      'outputs': {'artifacts': {'blessing': _input({'instanceSchema': BLESSING_SCHEMA})}}}
  assert entrypoint.normalize_executor_input(executor_input, None) == []
  assert _titles(executor_input) == {'model': {'schemaTitle': 'tfx.Model'}}
  assert _titles(executor_input, 'outputs') == {'blessing': {'schemaTitle': 'tfx.ModelBlessing'}}


def test_the_projects_own_types_map_to_their_class():
  import importlib  # pylint: disable=g-import-not-at-top
  schema = 'title: mnist_dae.DenoisingReport\ntype: object\n'
  executor_input = {'outputs': {'artifacts': {'report': _input({'instanceSchema': schema})}}}
  entrypoint.normalize_executor_input(executor_input, None)
  path = _titles(executor_input, 'outputs')['report']['schemaTitle']
  module, _, name = path.rpartition('.')
  artifact_class = getattr(importlib.import_module(module), name)
  assert artifact_class.TYPE_NAME == 'mnist_dae.DenoisingReport'
  for title, class_path in entrypoint.PROJECT_ARTIFACT_TYPES.items():
    module, _, name = class_path.rpartition('.')
    assert getattr(importlib.import_module(module), name).TYPE_NAME == title


def test_an_untellable_type_is_an_error_naming_the_artifact():
  executor_input = {'inputs': {'artifacts': {'mystery': _input({'schemaTitle': 'system.Artifact'})}}}
  with pytest.raises(entrypoint.ArtifactTypeError, match="'inputs.mystery'"):
    entrypoint.normalize_executor_input(executor_input, None)


def test_directory_markers_below_the_outputs_are_deleted_and_files_kept():
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  with gcs_emulator.running('bucket') as environment, gcs_emulator.applied(environment):
    client = storage.Client()
    bucket = client.bucket('bucket')
    for name, data in (('root/Trainer/model/', b''),
                       ('root/Trainer/model/Format-Serving/', b''),
                       ('root/Trainer/model/Format-Serving/saved_model.pb', b'graph'),
                       ('root/Trainer/model/Format-Serving/empty.txt', b''),
                       ('root/Other/out/', b'')):
      bucket.blob(name).upload_from_string(data)
    removed = entrypoint.remove_directory_markers(
        ['gs://bucket/root/Trainer/model', '/local/path/ignored'], client)
    assert sorted(removed) == ['gs://bucket/root/Trainer/model/',
                               'gs://bucket/root/Trainer/model/Format-Serving/']
    assert sorted(blob.name for blob in client.list_blobs('bucket')) == [
        'root/Other/out/', 'root/Trainer/model/Format-Serving/empty.txt',
        'root/Trainer/model/Format-Serving/saved_model.pb']


@pytest.mark.slow
def test_the_entrypoint_runs_a_component_on_inputs_shaped_as_the_oss_driver(tmp_path):
  """The real entrypoint process runs the Pusher: the model input comes with
  an empty instance schema, the blessing as system.Artifact."""
  model_dir = tmp_path / 'model' / 'Format-Serving'
  (model_dir / 'variables').mkdir(parents=True)
  (model_dir / 'saved_model.pb').write_bytes(b'graph')
  (model_dir / 'variables' / 'variables.index').write_bytes(b'index')
  (tmp_path / 'blessing').mkdir()
  destination = json.dumps({'filesystem': {'baseDirectory': str(tmp_path / 'serving')}})
  executor_input = {
      'inputs': {'parameterValues': {'push_destination': destination,
                                     'custom_config': 'null'},
                 'artifacts': {
                     'model': {'artifacts': [{'name': '3', 'uri': str(tmp_path / 'model'),
                                              'type': {'instanceSchema': ''}}]},
                     'model_blessing': {'artifacts': [{
                         'name': '4', 'uri': str(tmp_path / 'blessing'),
                         'type': {'schemaTitle': 'system.Artifact'},
                         'metadata': {'blessed': 1.0}}]}}},
      'outputs': {'artifacts': {'pushed_model': {'artifacts': [{
          'name': 'pushed_model', 'uri': str(tmp_path / 'pushed'),
          'type': {'instanceSchema': 'title: tfx.PushedModel\ntype: object\n'}}]}},
                  'outputFile': str(tmp_path / 'out' / 'output_metadata.json')}}
  inputs_spec = {'artifacts': {'model': {'artifactType': {'instanceSchema': MODEL_SCHEMA}}},
                 'parameters': {'push_destination': {'parameterType': 'STRING'},
                                'custom_config': {'parameterType': 'STRING'}}}
  process = subprocess.run(
      [sys.executable, '-m', entrypoint.MODULE,
       '--executor_class_path', 'components.pusher.executor.Executor',
       '--json_serialized_invocation_args', json.dumps(executor_input),
       '--json_serialized_inputs_spec_args', json.dumps(inputs_spec)],
      capture_output=True, text=True, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  # Versions only: the push records and the push lock sit beside them.
  versions = [path for path in (tmp_path / 'serving').iterdir() if path.name.isdigit()]
  assert len(versions) == 1 and (versions[0] / 'saved_model.pb').read_bytes() == b'graph'
  output = json.loads((tmp_path / 'out' / 'output_metadata.json').read_text())
  assert output['artifacts']['pushed_model']['artifacts'][0]['metadata']['pushed'] == 1.0
