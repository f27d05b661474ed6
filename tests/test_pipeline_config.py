"""Unit tests of pipeline_config: defaults, profiles, validation, overrides."""

import dataclasses
import os
import re

import pytest

import pipeline_config
from pipeline_config import ConfigError


def test_full_profile_is_the_default_and_uses_all_of_mnist():
  config = pipeline_config.load_profile()
  assert config == pipeline_config.PipelineConfig()
  assert config.profile == 'full'
  # All of MNIST: the dataset decides (the ExampleGen's split plan).
  assert (config.data.train_examples, config.data.eval_examples,
          config.data.test_examples) == (None, None, None)
  assert os.path.isfile(os.path.join(pipeline_config.vendored_source_dir(config.data),
                                     'train-images-idx3-ubyte.gz'))
  assert config.schema_path is None  # MNIST's curated schema, looked up:
  assert pipeline_config.curated_schema_path(config) == os.path.join(
      pipeline_config.repository_root(), 'schemas', 'mnist.pbtxt')


def test_smoke_profile_is_small():
  config = pipeline_config.load_profile('smoke')
  assert config.profile == 'smoke'
  assert config.data.train_examples + config.data.eval_examples <= 1000
  assert config.data.test_examples <= 1000
  assert config.pipeline_root != pipeline_config.PipelineConfig().pipeline_root


def test_config_is_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    pipeline_config.PipelineConfig().pipeline_name = 'other'


def test_metadata_path_defaults_inside_pipeline_root():
  config = pipeline_config.PipelineConfig(pipeline_root='/tmp/root')
  assert config.resolved_metadata_path == '/tmp/root/metadata.sqlite'
  config = dataclasses.replace(config, metadata_path='/tmp/m.sqlite')
  assert config.resolved_metadata_path == '/tmp/m.sqlite'


def test_unknown_profile_is_rejected():
  with pytest.raises(ConfigError, match="'profile'.*unknown profile 'huge'"):
    pipeline_config.load_profile('huge')


def _section(section, **values):
  """The default config with fields of one section changed (a section's own
  settings type refuses a value; the configuration names its field)."""
  return pipeline_config.with_overrides(
      pipeline_config.PipelineConfig(),
      {f'{section}.{name}': value for name, value in values.items()})


@pytest.mark.parametrize('build, field', [
    (lambda: _section('data', train_examples=-1), 'data.train_examples'),
    (lambda: _section('data', eval_examples=0), 'data.eval_examples'),
    (lambda: _section('data', test_examples=0), 'data.test_examples'),
    (lambda: _section('data', eval_percent=100), 'data.eval_percent'),
    (lambda: _section('data', dataset='fashion_mnist', source_dir=None,
                      source='vendored', image_size='8x8'),
     'data.image_size'),
    (lambda: _section('data', dataset='cifar10'), 'data.source'),
    (lambda: _section('data', source='ftp'), 'data.source'),
    (lambda: _section('noise', stddev=1.5), 'noise.stddev'),
    (lambda: _section('noise', stddev=-0.1), 'noise.stddev'),
    (lambda: _section('noise', stddev=float('nan')), 'noise.stddev'),
    (lambda: _section('noise', amount=1.2), 'noise.amount'),
    (lambda: _section('noise', kind='speckle'), 'noise.kind'),
    (lambda: _section('noise', min_stddev=0.4, max_stddev=0.3),
     'noise.min_stddev'),
    (lambda: _section('training', batch_size=0), 'training.batch_size'),
    (lambda: _section('training', architecture='vit'),
     'training.architecture'),
    (lambda: _section('thresholds', max_mse=0), 'thresholds.max_mse'),
    (lambda: pipeline_config.PipelineConfig(pipeline_name=' '), 'pipeline_name'),
])
def test_invalid_values_name_their_field(build, field):
  with pytest.raises(ConfigError) as raised:
    build()
  assert raised.value.field == field
  assert repr(field) in str(raised.value)


def test_overrides_convert_cli_text_to_field_types():
  config = pipeline_config.with_overrides(
      pipeline_config.load_profile('smoke'), {
          'noise.stddev': '0.3',
          'noise.clip': 'true',
          'data.train_examples': '100',
          'data.test_examples': 'none',
          'enable_cache': 'false',
          'beam_pipeline_args': '--runner=DirectRunner,--direct_num_workers=2',
          'pipeline_root': '/tmp/elsewhere',
      })
  assert config.noise.stddev == 0.3 and config.noise.clip is True
  assert config.data.train_examples == 100 and config.data.test_examples is None
  assert config.enable_cache is False
  assert config.beam_pipeline_args == ('--runner=DirectRunner',
                                       '--direct_num_workers=2')
  assert config.pipeline_root == '/tmp/elsewhere'
  assert config.profile == 'smoke'  # untouched fields keep the profile's values


@pytest.mark.parametrize('overrides, field', [
    ({'noise.stddev': '2'}, 'noise.stddev'),
    ({'noise.stddev': 'loud'}, 'noise.stddev'),
    ({'noise.volume': '1'}, 'noise.volume'),
    ({'colour.mode': '1'}, 'colour.mode'),
    ({'data': 'x'}, 'data'),
    ({'enable_cache': 'maybe'}, 'enable_cache'),
])
def test_bad_overrides_name_their_field(overrides, field):
  with pytest.raises(ConfigError) as raised:
    pipeline_config.with_overrides(pipeline_config.PipelineConfig(), overrides)
  assert raised.value.field == field


def test_check_paths_accepts_new_directories(tmp_path):
  config = pipeline_config.PipelineConfig(
      pipeline_root=str(tmp_path / 'a' / 'root'),
      serving_dir=str(tmp_path / 'serving'))
  pipeline_config.check_paths(config)  # Does not raise.
  assert not (tmp_path / 'a').exists()  # and creates nothing.


@pytest.mark.parametrize('field', ['pipeline_root', 'serving_dir', 'metadata_path'])
def test_check_paths_rejects_unwritable_roots(tmp_path, field):
  blocker = tmp_path / 'a-file'
  blocker.write_text('not a directory')
  target = str(blocker / 'sub' / ('m.sqlite' if field == 'metadata_path' else 'dir'))
  config = dataclasses.replace(pipeline_config.PipelineConfig(), **{field: target})
  with pytest.raises(ConfigError) as raised:
    pipeline_config.check_paths(config)
  assert raised.value.field == field


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes to read-only dirs')
def test_check_paths_rejects_read_only_directory(tmp_path):
  read_only = tmp_path / 'ro'
  read_only.mkdir(mode=0o500)
  config = pipeline_config.PipelineConfig(pipeline_root=str(read_only / 'root'))
  with pytest.raises(ConfigError, match='pipeline_root'):
    pipeline_config.check_paths(config)


def test_check_paths_rejects_missing_source_dir(tmp_path):
  config = pipeline_config.PipelineConfig(
      pipeline_root=str(tmp_path / 'root'),
      data=pipeline_config.DataSpec(source_dir=str(tmp_path / 'nowhere')))
  with pytest.raises(ConfigError) as raised:
    pipeline_config.check_paths(config)
  assert raised.value.field == 'data.source_dir'


def test_unknown_learning_rate_schedule_is_refused_naming_the_field():
  with pytest.raises(pipeline_config.ConfigError, match='training.lr_schedule'):
    pipeline_config.with_overrides(pipeline_config.load_profile('full'),
                                   {'training.lr_schedule': 'step'})


def test_fresh_noise_with_patch_size_is_refused_naming_the_field():
  full = pipeline_config.load_profile('full')
  with pytest.raises(ConfigError, match=r"'training.fresh_noise': does not "
                     r'apply with data.patch_size'):
    pipeline_config.with_overrides(full, {
        'data.image_dir': 'scans', 'data.patch_size': '16x16',
        'training.fresh_noise': 'true'})
  assert pipeline_config.with_overrides(full, {
      'data.image_dir': 'scans', 'data.patch_size': '16x16'}).data.patch_size


@pytest.mark.parametrize('dataset, file_name', [
    ('mnist', 'mnist.pbtxt'),
    ('mnist:3.0.1', 'mnist.pbtxt'),
    ('emnist/letters', 'emnist-letters.pbtxt'),
    ('emnist/letters:3.*.*', 'emnist-letters.pbtxt'),
])
def test_a_tfds_name_maps_to_its_schema_file_name(dataset, file_name):
  assert pipeline_config.schema_file_name(dataset) == file_name


def _schema_config(schemas_dir, **overrides):
  return pipeline_config.with_overrides(
      pipeline_config.PipelineConfig(), {'schemas_dir': str(schemas_dir), **overrides})


def test_a_dataset_s_curated_schema_is_its_file_in_the_schemas_dir(tmp_path):
  config = _schema_config(tmp_path, **{'data.dataset': 'fashion_mnist'})
  assert pipeline_config.schema_location(config) == str(tmp_path / 'fashion_mnist.pbtxt')
  assert pipeline_config.curated_schema_path(config) is None  # None yet: inferred.
  (tmp_path / 'fashion_mnist.pbtxt').write_text('')
  assert pipeline_config.curated_schema_path(config) == str(tmp_path / 'fashion_mnist.pbtxt')
  # Another dataset's file is not its schema.
  assert pipeline_config.curated_schema_path(
      _schema_config(tmp_path, **{'data.dataset': 'kmnist'})) is None


def test_schema_path_wins_and_an_image_folder_has_only_that(tmp_path):
  (tmp_path / 'mnist.pbtxt').write_text('')
  given = tmp_path / 'mine.pbtxt'
  assert pipeline_config.curated_schema_path(
      _schema_config(tmp_path, schema_path=str(given))) == str(given)
  folder = _schema_config(tmp_path, **{'data.image_dir': str(tmp_path)})
  assert pipeline_config.schema_location(folder) is None
  assert pipeline_config.curated_schema_path(folder) is None
  assert pipeline_config.curated_schema_path(dataclasses.replace(
      folder, schema_path=str(given))) == str(given)


def test_check_paths_refuses_a_schema_path_that_is_no_file(tmp_path):
  config = pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'pipeline_root': str(tmp_path / 'root'), 'serving_dir': str(tmp_path / 'serving'),
      'schema_path': str(tmp_path)})
  with pytest.raises(ConfigError, match=f"'schema_path': '{tmp_path}' is not a file"):
    pipeline_config.check_paths(config)
  pipeline_config.check_paths(dataclasses.replace(config, schema_path=None))



@pytest.mark.parametrize('assignment, message', [
    ('noise.stdev', "config field 'noise.stdev': unknown configuration field; "
     "did you mean 'noise.stddev'?"),
    ('traning.epochs', "config field 'traning.epochs': unknown configuration "
     "section; did you mean 'training.epochs'?"),
    ('noise.colour', "config field 'noise.colour': unknown configuration field$"),
])
def test_an_unknown_field_names_the_nearest_known_one(assignment, message):
  with pytest.raises(pipeline_config.ConfigError, match=message.replace('.', r'\.')
                     .replace('?', r'\?').replace('(', r'\(').replace(')', r'\)')):
    pipeline_config.with_overrides(pipeline_config.load_profile('smoke'),
                                   {assignment: '1'})


@pytest.mark.parametrize('assignment, text, message', [
    ('training.epochs', '2.5', "'2.5' is not a whole number"),
    ('training.learning_rate', 'fast', "'fast' is not a number"),
    ('training.xla', 'maybe', r"'maybe' is not a boolean \(true or false\)"),
])
def test_a_value_of_the_wrong_type_is_refused_in_words(assignment, text, message):
  with pytest.raises(pipeline_config.ConfigError) as raised:
    pipeline_config.with_overrides(pipeline_config.load_profile('smoke'),
                                   {assignment: text})
  assert re.fullmatch(f"config field '{assignment}': {message}", str(raised.value))


def test_epochs_beyond_the_profile_s_step_cap_are_named():
  smoke = pipeline_config.load_profile('smoke')  # 512 images, batch 64, 32 steps.
  more = pipeline_config.with_overrides(smoke, {'training.epochs': '8'})
  assert pipeline_config.ineffective_settings(more, ['training.epochs']) == [
      'training.epochs=8 has no effect beyond 4: training.max_train_steps=32 '
      'stops training after 4 epoch(s) of 8 steps (set '
      'training.max_train_steps=none to train every epoch)']
  # Within the cap, not set by the user, or no cap: nothing to say.
  fewer = pipeline_config.with_overrides(smoke, {'training.epochs': '3'})
  assert pipeline_config.ineffective_settings(fewer, ['training.epochs']) == []
  assert pipeline_config.ineffective_settings(more, ['training.seed']) == []
  uncapped = pipeline_config.with_overrides(
      more, {'training.max_train_steps': 'none'})
  assert pipeline_config.ineffective_settings(uncapped, ['training.epochs']) == []


@pytest.mark.parametrize('profile, assignment, root, serving', [
    ('smoke', 'data.image_dir=/data/my photos/', 'build/smoke/datasets/my-photos/pipeline_root',
     'build/smoke/datasets/my-photos/serving'),
    ('full', 'data.dataset=emnist/letters', 'build/datasets/emnist-letters/pipeline_root',
     'build/datasets/emnist-letters/serving'),
    ('full', 'data.dataset=mnist', 'build/pipeline_root', 'build/serving'),
])
def test_a_dataset_other_than_the_default_gets_locations_of_its_own(
    profile, assignment, root, serving):
  name, _, value = assignment.partition('=')
  overrides = {name: value}
  if name == 'data.dataset':
    overrides['data.source'] = 'tfds'
  config = pipeline_config.with_overrides(pipeline_config.load_profile(profile), overrides)
  assert (config.pipeline_root, config.serving_dir) == (root, serving)
  assert config.resolved_metadata_path == os.path.join(root, 'metadata.sqlite')


def test_locations_the_user_names_stay_where_they_are():
  config = pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'data.image_dir': 'photos', 'serving_dir': 'build/smoke/serving'})
  assert config.serving_dir == 'build/smoke/serving'  # Named, even if the default.
  assert config.pipeline_root == 'build/smoke/datasets/photos/pipeline_root'
