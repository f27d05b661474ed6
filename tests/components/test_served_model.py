"""ServedModel: the served model as the Evaluator's baseline."""

import os

from tfx.dsl.io import fileio
from tfx.types import standard_artifacts

import pytest

from components.common import serving_dir
from components.served_model import executor


def _serve(serving, version, content, complete=True):
  version_dir = f'{serving}/{version}'
  fileio.makedirs(f'{version_dir}/variables')
  with fileio.open(f'{version_dir}/variables/variables.index', 'wb') as index:
    index.write(b'index-' + content)
  if complete:
    with fileio.open(f'{version_dir}/saved_model.pb', 'wb') as graph:
      graph.write(content)


def _look_up(serving, uri, expected_fingerprint=None):
  model = standard_artifacts.Model()
  model.uri = uri
  properties = {executor.SERVING_DIR_KEY: serving}
  if expected_fingerprint is not None:
    properties[executor.EXPECTED_FINGERPRINT_KEY] = expected_fingerprint
  executor.Executor().Do({}, {executor.MODEL_KEY: [model]}, properties)
  return model


def test_nothing_served_gives_an_empty_model(tmp_path):
  model = _look_up(str(tmp_path / 'absent'), str(tmp_path / 'model'))
  assert not serving_dir.holds_model(model)
  assert model.get_string_custom_property(executor.SERVED_VERSION_PROPERTY) == ''


def test_the_newest_complete_version_is_the_baseline(tmp_path):
  serving = str(tmp_path / 'serving')
  _serve(serving, '100', b'old')
  _serve(serving, '200', b'served')
  _serve(serving, '300', b'half-pushed', complete=False)
  model = _look_up(serving, str(tmp_path / 'model'))
  assert serving_dir.holds_model(model)
  copied = tmp_path / 'model' / 'Format-Serving'
  assert (copied / 'saved_model.pb').read_bytes() == b'served'
  assert (copied / 'variables' / 'variables.index').read_bytes() == b'index-served'
  assert model.get_string_custom_property(executor.SERVED_VERSION_PROPERTY) == '200'
  assert model.get_string_custom_property(executor.SERVED_PATH_PROPERTY) == f'{serving}/200'


def test_a_bucket_serving_dir_works_the_same(tmp_path):
  serving = f'ram://{tmp_path.name}/serving'
  _serve(serving, '100', b'served')
  model = _look_up(serving, f'ram://{tmp_path.name}/model')
  assert serving_dir.holds_model(model)
  with fileio.open(f'{model.uri}/Format-Serving/saved_model.pb', 'rb') as graph:
    assert graph.read() == b'served'
  assert not os.path.exists(tmp_path / 'model')


def test_the_fingerprint_names_the_version_and_changes_with_its_files(tmp_path):
  serving = str(tmp_path / 'serving')
  assert serving_dir.served_fingerprint(serving) == serving_dir.NOTHING_SERVED
  _serve(serving, '100', b'served')
  first = serving_dir.served_fingerprint(serving)
  assert first.startswith('100:sha256=')
  _serve(serving, '100', b'rewritten in place')
  assert serving_dir.served_fingerprint(serving) not in (first, '')
  _serve(serving, '200', b'half-pushed', complete=False)
  assert serving_dir.served_fingerprint(serving).startswith('100:')


def test_a_pinned_lookup_copies_the_model_found_at_the_start(tmp_path):
  serving = str(tmp_path / 'serving')
  _serve(serving, '100', b'served')
  expected = serving_dir.served_fingerprint(serving)
  model = _look_up(serving, str(tmp_path / 'model'), expected)
  assert serving_dir.holds_model(model)
  assert model.get_string_custom_property(
      executor.SERVED_FINGERPRINT_PROPERTY) == expected
  nothing = _look_up(str(tmp_path / 'absent'), str(tmp_path / 'empty'),
                     serving_dir.NOTHING_SERVED)
  assert not serving_dir.holds_model(nothing)


@pytest.mark.parametrize('change', ['newer version', 'rewritten', 'emptied'])
def test_a_pinned_lookup_fails_when_the_serving_dir_changed_since(tmp_path, change):
  serving = str(tmp_path / 'serving')
  _serve(serving, '100', b'served')
  expected = serving_dir.served_fingerprint(serving)
  if change == 'newer version':
    _serve(serving, '200', b'pushed by another pipeline')
  elif change == 'rewritten':
    _serve(serving, '100', b'rewritten in place')
  else:
    fileio.rmtree(serving)
  with pytest.raises(executor.ServedModelChanged,
                     match=f'changed after this run started: it served {expected}'):
    _look_up(serving, str(tmp_path / 'model'), expected)
