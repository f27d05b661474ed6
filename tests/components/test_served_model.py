"""ServedModel: the served model as the Evaluator's baseline."""

import os

from tfx.dsl.io import fileio
from tfx.types import standard_artifacts

from components.served_model import executor


def _serve(serving, version, content, complete=True):
  version_dir = f'{serving}/{version}'
  fileio.makedirs(f'{version_dir}/variables')
  with fileio.open(f'{version_dir}/variables/variables.index', 'wb') as index:
    index.write(b'index-' + content)
  if complete:
    with fileio.open(f'{version_dir}/saved_model.pb', 'wb') as graph:
      graph.write(content)


def _look_up(serving, uri):
  model = standard_artifacts.Model()
  model.uri = uri
  executor.Executor().Do({}, {executor.MODEL_KEY: [model]},
                         {executor.SERVING_DIR_KEY: serving})
  return model


def test_nothing_served_gives_an_empty_model(tmp_path):
  model = _look_up(str(tmp_path / 'absent'), str(tmp_path / 'model'))
  assert not executor.holds_model(model)
  assert model.get_string_custom_property(executor.SERVED_VERSION_PROPERTY) == ''


def test_the_newest_complete_version_is_the_baseline(tmp_path):
  serving = str(tmp_path / 'serving')
  _serve(serving, '100', b'old')
  _serve(serving, '200', b'served')
  _serve(serving, '300', b'half-pushed', complete=False)
  model = _look_up(serving, str(tmp_path / 'model'))
  assert executor.holds_model(model)
  copied = tmp_path / 'model' / 'Format-Serving'
  assert (copied / 'saved_model.pb').read_bytes() == b'served'
  assert (copied / 'variables' / 'variables.index').read_bytes() == b'index-served'
  assert model.get_string_custom_property(executor.SERVED_VERSION_PROPERTY) == '200'
  assert model.get_string_custom_property(executor.SERVED_PATH_PROPERTY) == f'{serving}/200'


def test_a_bucket_serving_dir_works_the_same(tmp_path):
  serving = f'ram://{tmp_path.name}/serving'
  _serve(serving, '100', b'served')
  model = _look_up(serving, f'ram://{tmp_path.name}/model')
  assert executor.holds_model(model)
  with fileio.open(f'{model.uri}/Format-Serving/saved_model.pb', 'rb') as graph:
    assert graph.read() == b'served'
  assert not os.path.exists(tmp_path / 'model')
