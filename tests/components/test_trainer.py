"""The DAE models, their export signatures and the Trainer's run_fn."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.trainer import export
from components.trainer import model as model_lib
from components.trainer import run_fn as run_fn_lib
from components.trainer import strategy


def _pairs(count, seed=0):
  """Synthetic (noisy, clean) images: bright bars on black, Gaussian noise."""
  rng = np.random.default_rng(seed)
  clean = np.zeros((count, 28, 28, 1), np.float32)
  for index in range(count):
    row, column = rng.integers(4, 20, size=2)
    clean[index, row:row + 3, column:column + 8] = 1.0
  noisy = clean + rng.normal(0, 0.2, clean.shape).astype(np.float32)
  return noisy, clean


@pytest.mark.parametrize('architecture', model_lib.ARCHITECTURES)
def test_models_map_images_to_images_in_unit_range(architecture):
  model = model_lib.build_model(architecture)
  noisy, _ = _pairs(4)
  output = model.predict(noisy, verbose=0)
  assert model.input_shape == (None, 28, 28, 1)
  assert output.shape == (4, 28, 28, 1)
  assert output.min() >= 0.0 and output.max() <= 1.0


def test_article_model_flattens_before_its_128_unit_latent():
  model = model_lib.build_article()
  latent = model.get_layer('latent')
  assert latent.units == 128
  assert len(latent.input.shape) == 2  # Dense on a vector, not a 4-D map.
  assert model.count_params() > 400_000


def test_unknown_architecture_and_loss_are_rejected():
  with pytest.raises(ValueError, match='architecture'):
    model_lib.build_model('vit')
  with pytest.raises(ValueError, match='loss'):
    model_lib.make_loss('hinge')


@pytest.mark.parametrize('loss', model_lib.LOSSES)
def test_a_few_training_steps_reduce_the_loss(loss):
  keras.utils.set_random_seed(0)
  model = model_lib.compile_model(model_lib.build_unet(), loss, 1e-3)
  noisy, clean = _pairs(256)
  history = model.fit(noisy, clean, batch_size=32, epochs=3, verbose=0)
  losses = history.history['loss']
  assert losses[-1] < 0.7 * losses[0], losses


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  keras.utils.set_random_seed(0)
  model = model_lib.build_unet()
  path = str(tmp_path_factory.mktemp('export') / 'model')
  export.export_saved_model(model, path)
  return model, tf.saved_model.load(path)


def _serialized(noisy):
  return tf.constant([
      tf.train.Example(features=tf.train.Features(feature={
          'noisy': tf.train.Feature(float_list=tf.train.FloatList(
              value=image.reshape(-1)))})).SerializeToString()
      for image in noisy])


def test_export_has_image_and_example_signatures_that_agree(exported):
  model, loaded = exported
  assert set(loaded.signatures) == {export.IMAGES_SIGNATURE, export.EXAMPLES_SIGNATURE}
  noisy, _ = _pairs(3)
  by_images = loaded.signatures[export.IMAGES_SIGNATURE](images=tf.constant(noisy))
  by_examples = loaded.signatures[export.EXAMPLES_SIGNATURE](
      examples=_serialized(noisy))
  np.testing.assert_allclose(by_images['output'], model.predict(noisy, verbose=0),
                             atol=1e-5)
  np.testing.assert_allclose(by_images['output'], by_examples['output'], atol=1e-6)
  assert by_images['output'].shape == (3, 28, 28, 1)


@pytest.mark.parametrize('bad', [np.zeros((2, 784), np.float32),
                                 np.zeros((2, 28, 28, 3), np.float32),
                                 np.zeros((2, 14, 14, 1), np.float32)])
def test_export_rejects_wrong_shapes(exported, bad):
  # Before the shape check, a [2, 784] input aborted the whole process.
  _, loaded = exported
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='not compatible with expected shape'):
    loaded.signatures[export.IMAGES_SIGNATURE](images=tf.constant(bad))


def test_export_rejects_examples_with_the_wrong_number_of_pixels(exported):
  _, loaded = exported
  short = tf.train.Example(features=tf.train.Features(feature={
      'noisy': tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * 700))}))
  with pytest.raises(tf.errors.InvalidArgumentError):
    loaded.signatures[export.EXAMPLES_SIGNATURE](
        examples=tf.constant([short.SerializeToString()]))


def test_export_rejects_non_finite_images(exported):
  _, loaded = exported
  images = np.zeros((1, 28, 28, 1), np.float32)
  images[0, 3, 3, 0] = np.nan
  with pytest.raises(tf.errors.InvalidArgumentError, match='must be finite'):
    loaded.signatures[export.IMAGES_SIGNATURE](images=tf.constant(images))


@pytest.mark.parametrize('native, allowed, policy', [
    (False, True, 'float32'), (True, True, 'mixed_bfloat16'), (True, False, 'float32')])
def test_cpu_placement_uses_bfloat16_only_where_native(monkeypatch, native, allowed, policy):
  monkeypatch.delenv('TF_CONFIG', raising=False)
  monkeypatch.delenv('TPU_NAME', raising=False)
  monkeypatch.setattr(strategy, 'cpu_has_native_bfloat16', lambda: native)
  try:
    placement = strategy.choose_placement(allow_mixed_precision=allowed)
    assert placement.description.startswith('default strategy on the CPU')
    assert placement.mixed_precision == (policy != 'float32')
    assert keras.mixed_precision.global_policy().name == policy
  finally:
    keras.mixed_precision.set_global_policy('float32')


@pytest.mark.parametrize('flags, expected', [
    ('fpu vme avx512f amx_bf16 amx_tile', True), ('fpu avx512_bf16', True),
    ('fpu vme avx2 avx512f', False)])
def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
  cpuinfo = tmp_path / 'cpuinfo'
  cpuinfo.write_text(f'processor\t: 0\nflags\t\t: {flags}\n')
  assert strategy.cpu_has_native_bfloat16(str(cpuinfo)) is expected
  assert strategy.cpu_has_native_bfloat16(str(tmp_path / 'missing')) is False


def test_bad_tf_config_is_reported(monkeypatch):
  monkeypatch.setenv('TF_CONFIG', '{not json')
  with pytest.raises(ValueError, match='TF_CONFIG'):
    strategy.choose_placement()


@pytest.mark.parametrize('train_steps, per_epoch, expected', [
    (100, 25, (4, 25)), (10, 25, (1, 10)), (30, 25, (1, 25)), (1, 5, (1, 1))])
def test_plan_epochs(train_steps, per_epoch, expected):
  assert run_fn_lib.plan_epochs(train_steps, per_epoch) == expected


class _FnArgs:
  """The FnArgs fields run_fn reads (TFX builds the real one)."""

  def __init__(self, root, files, train_steps):
    self.train_files = [files]
    self.eval_files = [files]
    self.train_steps = train_steps
    self.eval_steps = 1
    self.serving_model_dir = str(root / 'serving_model_dir')
    self.model_run_dir = str(root / 'model_run_dir')
    self.custom_config = {run_fn_lib.BATCH_SIZE_KEY: 16,
                          run_fn_lib.STEPS_PER_EPOCH_KEY: 2,
                          run_fn_lib.ARCHITECTURE_KEY: 'unet'}


def _write_noisy_examples(path, count=48):
  noisy, clean = _pairs(count)
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for noisy_image, clean_image in zip(noisy, clean):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          'noisy': tf.train.Feature(float_list=tf.train.FloatList(
              value=noisy_image.reshape(-1))),
          'clean': tf.train.Feature(float_list=tf.train.FloatList(
              value=clean_image.reshape(-1))),
      })).SerializeToString())


def test_run_fn_trains_logs_and_exports(tmp_path):
  _write_noisy_examples(str(tmp_path / 'data.gz'))
  fn_args = _FnArgs(tmp_path, str(tmp_path / '*.gz'), train_steps=4)
  run_fn_lib.run_fn(fn_args)
  assert os.path.isfile(os.path.join(fn_args.serving_model_dir, 'saved_model.pb'))
  loaded = tf.saved_model.load(fn_args.serving_model_dir)
  assert export.EXAMPLES_SIGNATURE in loaded.signatures
  logs = [name for _, _, names in os.walk(fn_args.model_run_dir) for name in names]
  assert any(name.startswith('events.out.tfevents') for name in logs)


def test_run_fn_fails_clearly_without_input_files(tmp_path):
  fn_args = _FnArgs(tmp_path, str(tmp_path / 'nothing-*.gz'), train_steps=4)
  with pytest.raises(FileNotFoundError, match='no input files'):
    run_fn_lib.run_fn(fn_args)


@pytest.mark.parametrize('tf_config, chief', [
    (None, True),
    ({'cluster': {'worker': ['a:1', 'b:2']}, 'task': {'type': 'worker', 'index': 0}}, True),
    ({'cluster': {'worker': ['a:1', 'b:2']}, 'task': {'type': 'worker', 'index': 1}}, False),
    ({'cluster': {'chief': ['c:0'], 'worker': ['a:1']},
      'task': {'type': 'worker', 'index': 0}}, False),
    ({'cluster': {'chief': ['c:0'], 'worker': ['a:1']},
      'task': {'type': 'chief', 'index': 0}}, True),
])
def test_only_the_chief_writes_the_model(monkeypatch, tf_config, chief):
  if tf_config is None:
    monkeypatch.delenv('TF_CONFIG', raising=False)
  else:
    monkeypatch.setenv('TF_CONFIG', json.dumps(tf_config))
  assert strategy.is_chief() is chief


def test_cosine_schedule_decays_from_the_rate_to_two_percent_of_it():
  schedule = model_lib.learning_rate_schedule(2e-3, 'cosine', total_steps=100)
  assert float(schedule(0)) == pytest.approx(2e-3)
  assert float(schedule(50)) == pytest.approx(2e-3 * (0.02 + 0.98 * 0.5), rel=1e-4)
  assert float(schedule(100)) == pytest.approx(2e-3 * 0.02, rel=1e-4)
  assert model_lib.learning_rate_schedule(2e-3, 'constant', total_steps=100) == 2e-3
  with pytest.raises(ValueError, match='step'):
    model_lib.learning_rate_schedule(2e-3, 'step', total_steps=100)
