"""The DAE models, their export signatures and the Trainer's run_fn."""

import hashlib
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common import dataset_info
from components.common import examples as examples_lib
from components.common import noise as noise_lib
from components.trainer import architectures
from components.trainer import data
from components.common import saved_model
from components.trainer import model as model_lib
from components.trainer import multi_worker
from components.trainer import plan as plan_lib
from components.trainer import run_fn as run_fn_lib
from components.trainer import strategy
from pipeline import pipeline as pipeline_module
import pipeline_config

MNIST_SHAPE = (28, 28, 1)
MNIST = dataset_info.DatasetInfo('mnist', MNIST_SHAPE,
                                 [str(digit) for digit in range(10)])
# Not MNIST: small colour images of two classes.
PETS = dataset_info.DatasetInfo('pets', (12, 10, 3), ('cat', 'dog'))


def _pairs(count, seed=0, image_shape=MNIST_SHAPE):
  """Synthetic (noisy, clean) images: bright bars on black, Gaussian noise."""
  rng = np.random.default_rng(seed)
  height, width, _ = image_shape
  clean = np.zeros((count,) + tuple(image_shape), np.float32)
  # A bar 3 x 8 anywhere in the image; from (4, 4) to (19, 19) on MNIST's.
  high = np.array((height - 8, width - 8))
  low = np.minimum(4, high - 1)
  for index in range(count):
    row, column = rng.integers(low, high)
    clean[index, row:row + 3, column:column + 8] = 1.0
  noisy = clean + rng.normal(0, 0.2, clean.shape).astype(np.float32)
  return noisy, clean


@pytest.mark.parametrize('loss', model_lib.LOSSES)
@pytest.mark.parametrize('architecture', architectures.REGISTRY.names())
def test_models_map_images_to_images_in_unit_range(architecture, loss):
  model = architectures.build_model(architecture, loss, MNIST_SHAPE)
  noisy, _ = _pairs(4)
  output = model.predict(noisy * 50.0, verbose=0)  # Far outside [0, 1] first.
  assert model.input_shape == (None, 28, 28, 1)
  assert output.shape == (4, 28, 28, 1)
  assert output.min() >= 0.0 and output.max() <= 1.0


# The layer configuration of each architecture (keras's JSON, without the
# keras version), as build_model's if-chain built them before the registry.
ARCHITECTURE_DIGESTS = {
    'article': {'bce': 'e2e8cf505e94e3ee', 'mse': '0b5cc27435f5d431'},
    'unet': {'bce': 'fd388d1b8351dfee', 'mse': '1ec58e77cc01be88'},
    'unet_large': {'bce': 'f483de27952dc6e9', 'mse': '198aef17f32eade0'},
}


@pytest.mark.parametrize('architecture', sorted(ARCHITECTURE_DIGESTS))
def test_the_registry_builds_each_architecture_as_before(architecture):
  for loss, expected in ARCHITECTURE_DIGESTS[architecture].items():
    built = json.loads(architectures.build_model(architecture, loss,
                                                 MNIST_SHAPE).to_json())
    built.pop('keras_version', None)
    built.pop('backend', None)
    digest = hashlib.sha256(json.dumps(built, sort_keys=True).encode())
    assert digest.hexdigest()[:16] == expected, (architecture, loss)


def test_the_output_head_follows_the_loss():
  assert model_lib.output_head('bce') == model_lib.SIGMOID_HEAD
  for loss in ('mse', 'l1'):
    assert model_lib.output_head(loss) == model_lib.CLIP_HEAD
    model = architectures.build_model('unet', loss, MNIST_SHAPE)
    assert model.get_layer('clean_images').activation is keras.activations.linear
    assert isinstance(model.layers[-1], model_lib.StraightThroughClip)
  sigmoid = architectures.build_model('unet', 'bce', MNIST_SHAPE)
  assert sigmoid.get_layer('clean_images').activation is keras.activations.sigmoid
  with pytest.raises(ValueError, match='loss'):
    architectures.build_model('unet', 'hinge', MNIST_SHAPE)


@pytest.mark.parametrize('built_for, compiled_with', [('bce', 'mse'), ('mse', 'bce'),
                                                      ('l1', 'bce')])
def test_a_model_compiled_with_another_loss_than_its_head_is_refused(
    built_for, compiled_with):
  model = architectures.build_model('unet', built_for, MNIST_SHAPE)
  with pytest.raises(ValueError, match=f"loss '{compiled_with}' trains the"):
    model_lib.compile_model(model, compiled_with, 1e-3)
  model_lib.compile_model(model, built_for, 1e-3)  # Its own loss is fine.
  assert model_lib.head_of(model) == model_lib.output_head(built_for)


def test_straight_through_clip_clips_values_but_not_gradients():
  values = tf.constant([-0.5, 0.0, 0.25, 1.0, 1.5])
  layer = model_lib.StraightThroughClip()
  with tf.GradientTape() as tape:
    tape.watch(values)
    clipped = layer(values)
    weighted = tf.reduce_sum(clipped * tf.constant([1.0, 2.0, 3.0, 4.0, 5.0]))
  np.testing.assert_allclose(clipped.numpy(), [0.0, 0.0, 0.25, 1.0, 1.0])
  # A plain clip would give the out-of-range values a zero gradient.
  np.testing.assert_allclose(tape.gradient(weighted, values).numpy(),
                             [1.0, 2.0, 3.0, 4.0, 5.0])


def test_article_model_flattens_before_its_128_unit_latent():
  model = model_lib.build_article(loss='bce', image_shape=MNIST_SHAPE)
  latent = model.get_layer('latent')
  assert latent.units == 128
  assert len(latent.input.shape) == 2  # Dense on a vector, not a 4-D map.
  assert model.count_params() > 400_000


def test_unknown_architecture_and_loss_are_rejected():
  with pytest.raises(ValueError, match='architecture'):
    architectures.build_model('vit', 'bce', MNIST_SHAPE)
  with pytest.raises(ValueError, match='loss'):
    model_lib.make_loss('hinge')


def _layers_of(model, layer_type):
  return [layer for layer in model.layers if isinstance(layer, layer_type)]


def test_unet_spec_shapes_the_network():
  plain = model_lib.build_unet(loss='bce', image_shape=MNIST_SHAPE)
  assert not _layers_of(plain, keras.layers.BatchNormalization)
  assert len(_layers_of(plain, keras.layers.Conv2DTranspose)) == 2
  assert plain.get_layer('bottleneck_conv2').filters == 64
  spec = model_lib.UNetSpec(widths=(8, 16, 24), convs_per_block=3,
                            batch_norm=True, upsampling='bilinear')
  model = model_lib.build_unet(spec, loss='bce', image_shape=MNIST_SHAPE)
  convs = [layer for layer in _layers_of(model, keras.layers.Conv2D)
           if layer.name.startswith('bottleneck')]
  assert [layer.filters for layer in convs] == [24, 24, 24]
  assert not any(layer.use_bias for layer in convs)  # The norm has the shift.
  # Five blocks of three convolutions, each normalised.
  assert len(_layers_of(model, keras.layers.BatchNormalization)) == 15
  assert len(_layers_of(model, keras.layers.UpSampling2D)) == 2
  assert not _layers_of(model, keras.layers.Conv2DTranspose)
  noisy, _ = _pairs(2)
  assert model.predict(noisy, verbose=0).shape == (2, 28, 28, 1)
  with pytest.raises(ValueError, match='upsampling'):
    model_lib.build_unet(model_lib.UNetSpec(upsampling='nearest'), loss='bce',
                         image_shape=MNIST_SHAPE)


def test_the_accelerator_unet_is_the_default_scaled_up():
  large = architectures.build_model('unet_large', 'bce', MNIST_SHAPE)
  assert large.name == 'unet_large_dae'
  assert large.count_params() > 8 * architectures.build_model(
      'unet', 'bce', MNIST_SHAPE).count_params()
  assert _layers_of(large, keras.layers.BatchNormalization)
  assert large.get_layer('bottleneck_conv3').filters == 256


@pytest.mark.parametrize('loss', model_lib.LOSSES)
def test_a_few_training_steps_learn_more_than_a_black_image(loss):
  # A loss can fall while the model collapses to the all-black output
  # (a sigmoid trained on MSE or L1 does): the output must beat that image.
  keras.utils.set_random_seed(0)
  model = model_lib.compile_model(
      model_lib.build_unet(loss=loss, image_shape=MNIST_SHAPE), loss, 2e-3)
  noisy, clean = _pairs(256)
  history = model.fit(noisy, clean, batch_size=32, epochs=6, verbose=0)
  losses = history.history['loss']
  assert losses[-1] < 0.7 * losses[0], losses
  black_mse = float(np.mean(clean ** 2))
  model_mse = float(np.mean((model.predict(noisy, verbose=0) - clean) ** 2))
  assert model_mse < 0.5 * black_mse, (model_mse, black_mse)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  keras.utils.set_random_seed(0)
  model = model_lib.build_unet(loss='bce', image_shape=MNIST_SHAPE)
  path = str(tmp_path_factory.mktemp('export') / 'model')
  saved_model.export_saved_model(model, path)
  return model, tf.saved_model.load(path)


def _serialized(noisy):
  return tf.constant([
      tf.train.Example(features=tf.train.Features(feature={
          'noisy': tf.train.Feature(float_list=tf.train.FloatList(
              value=image.reshape(-1)))})).SerializeToString()
      for image in noisy])


def test_export_has_image_and_example_signatures_that_agree(exported):
  model, loaded = exported
  assert set(loaded.signatures) == {saved_model.IMAGES_SIGNATURE, saved_model.EXAMPLES_SIGNATURE,
                                   saved_model.IMAGE_BYTES_SIGNATURE}
  noisy, _ = _pairs(3)
  by_images = loaded.signatures[saved_model.IMAGES_SIGNATURE](images=tf.constant(noisy))
  by_examples = loaded.signatures[saved_model.EXAMPLES_SIGNATURE](
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
    loaded.signatures[saved_model.IMAGES_SIGNATURE](images=tf.constant(bad))


def test_export_rejects_examples_with_the_wrong_number_of_pixels(exported):
  _, loaded = exported
  short = tf.train.Example(features=tf.train.Features(feature={
      'noisy': tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * 700))}))
  with pytest.raises(tf.errors.InvalidArgumentError):
    loaded.signatures[saved_model.EXAMPLES_SIGNATURE](
        examples=tf.constant([short.SerializeToString()]))


@pytest.mark.parametrize('value', [np.nan, np.inf, -np.inf])
def test_export_rejects_non_finite_images(exported, value):
  _, loaded = exported
  images = np.zeros((1, 28, 28, 1), np.float32)
  images[0, 3, 3, 0] = value
  with pytest.raises(tf.errors.InvalidArgumentError, match='must be finite'):
    loaded.signatures[saved_model.IMAGES_SIGNATURE](images=tf.constant(images))


def test_export_rejects_images_on_the_0_to_255_scale(exported):
  # Before the check, 0..255 pixels came back as an all-white image.
  _, loaded = exported
  _, clean = _pairs(2)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'must be on the \[0, 1\] scale'):
    loaded.signatures[saved_model.IMAGES_SIGNATURE](images=tf.constant(clean * 255))
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'\[0, 1\] scale'):
    loaded.signatures[saved_model.EXAMPLES_SIGNATURE](examples=_serialized(clean * 255))


def test_the_scale_bound_is_beyond_the_pipeline_s_largest_possible_noise():
  # draws.uniform's smallest draw is 0.5 / 2^53: Box-Muller's largest radius.
  largest_radius = np.sqrt(-2.0 * np.log(0.5 / 2.0**53))
  largest_stddev = 1.0  # NoiseSpec's limit.
  assert 1.0 + largest_stddev * largest_radius < saved_model.MAX_INPUT_PIXEL


@pytest.mark.parametrize('kind, stddev', [('gaussian', 1.0), ('random_gaussian', 0.5)])
def test_export_accepts_the_pipeline_s_unclipped_noise(exported, kind, stddev):
  # White images (the worst case) with the pipeline's own noise, unclipped.
  _, loaded = exported
  count = 256
  spec = noise_lib.NoiseSpec(kind=kind, stddev=stddev, min_stddev=0.0,
                             max_stddev=stddev, amount=0.0, clip=False, seed=0)
  noisy, _ = noise_lib.add_noise(np.ones((count, 784)),
                                 np.arange(count, dtype=np.uint64), spec)
  assert noisy.max() > 1.0 + 3 * stddev  # Well outside [0, 1].
  output = loaded.signatures[saved_model.IMAGES_SIGNATURE](
      images=tf.constant(noisy.reshape(count, 28, 28, 1)))['output']
  assert output.shape == (count, 28, 28, 1)


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


def test_cpu_info_reads_the_first_processors_model_name_and_flags(tmp_path):
  from components.trainer import cpu_info  # pylint: disable=g-import-not-at-top
  cpuinfo = tmp_path / 'cpuinfo'
  cpuinfo.write_text('processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx512f\n\n'
                     'processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n')
  assert cpu_info.read(str(cpuinfo)) == ('AMD EPYC', ['fpu', 'avx512f'])
  assert cpu_info.read(str(tmp_path / 'missing')) == (None, [])


def test_bad_tf_config_is_reported(monkeypatch):
  monkeypatch.setenv('TF_CONFIG', '{not json')
  with pytest.raises(ValueError, match='TF_CONFIG'):
    strategy.choose_placement()


@pytest.mark.parametrize('examples, batch, epochs, cap, expected', [
    (54_000, 128, 8, None, (8, 422)),   # The full profile.
    (54_000, 512, 8, None, (8, 106)),   # Four replicas: a quarter of the steps.
    (512, 64, 4, 32, (4, 8)),           # The smoke profile: the cap fits.
    (100, 4, 4, 100, (4, 25)),
    (100, 4, 4, 10, (1, 10)),           # Capped inside the first pass.
    (100, 4, 4, 30, (2, 15)),           # Capped: equal epochs, never over.
    (100, 4, 4, 0, (0, 25)),            # No training: the untrained model.
])
def test_plan_training(examples, batch, epochs, cap, expected):
  plan = plan_lib.plan_training(examples, batch, epochs, cap)
  assert (plan.epochs, plan.steps_per_epoch) == expected
  assert plan.total_steps <= (cap if cap is not None else epochs * 10**6)


def _pipeline_custom_config(**changes):
  """What the pipeline gives the Trainer, from a TrainingSpec with `changes`."""
  config = pipeline_config.with_overrides(
      pipeline_config.load_profile('smoke'),
      {'training.batch_size': 16, 'training.epochs': 2,
       'training.max_train_steps': None, **changes})
  return pipeline_module.trainer_custom_config(config)


def _custom_config(train_examples=48, eval_examples=16, info=MNIST, **changes):
  """Every key run_fn requires: the pipeline's, and what the Trainer's
  executor adds from the examples (split sizes, DatasetInfo)."""
  return dict(_pipeline_custom_config(**changes), **{
      run_fn_lib.TRAIN_EXAMPLES_KEY: train_examples,
      run_fn_lib.EVAL_EXAMPLES_KEY: eval_examples,
      run_fn_lib.DATASET_INFO_KEY: info.to_json()})


class _FnArgs:
  """The FnArgs fields run_fn reads (TFX builds the real one)."""

  def __init__(self, root, files, custom_config=None):
    self.train_files = [files]
    self.eval_files = [files]
    self.serving_model_dir = str(root / 'serving_model_dir')
    self.model_run_dir = str(root / 'model_run_dir')
    self.custom_config = custom_config or _custom_config()


def _write_noisy_examples(path, count=48, image_shape=MNIST_SHAPE):
  noisy, clean = _pairs(count, image_shape=image_shape)
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
  fn_args = _FnArgs(tmp_path, str(tmp_path / '*.gz'))
  run_fn_lib.run_fn(fn_args)
  assert os.path.isfile(os.path.join(fn_args.serving_model_dir, 'saved_model.pb'))
  loaded = tf.saved_model.load(fn_args.serving_model_dir)
  assert saved_model.EXAMPLES_SIGNATURE in loaded.signatures
  # The U-Net is served for any size; the model records the size it trained on.
  output = loaded.signatures[saved_model.IMAGES_SIGNATURE](
      images=tf.zeros((1, 20, 36, 1)))['output']
  assert output.shape == (1, 20, 36, 1)
  assert saved_model.saved_model_image_shape(fn_args.serving_model_dir) == MNIST_SHAPE
  logs = [name for _, _, names in os.walk(fn_args.model_run_dir) for name in names]
  assert any(name.startswith('events.out.tfevents') for name in logs)


def _one_conv(loss, image_shape):
  """An architecture of one 3x3 convolution: the smallest a registry takes."""
  noisy_images = keras.Input(shape=tuple(image_shape), name='noisy_images')
  clean_images = keras.layers.Conv2D(
      image_shape[-1], 3, padding='same', dtype='float32',
      activation='sigmoid' if loss == 'bce' else None)(noisy_images)
  return keras.Model(noisy_images, clean_images, name='one_conv_dae')


@pytest.fixture(name='one_conv')
def _registered_one_conv(monkeypatch):
  monkeypatch.setattr(architectures.REGISTRY, 'entries',  # Undone after the test.
                      dict(architectures.REGISTRY.entries))
  architectures.register('one_conv', _one_conv, 'one 3x3 convolution')
  return 'one_conv'


def test_an_architecture_registered_alone_is_a_setting_and_trains_through_run_fn(
    tmp_path, one_conv):
  with pytest.raises(pipeline_config.ConfigError,
                     match="'vit' is not one of article, unet, unet_large, one_conv$"):
    pipeline_config.with_overrides(pipeline_config.load_profile('smoke'),
                                   {'training.architecture': 'vit'})
  _write_noisy_examples(str(tmp_path / 'data.gz'))
  fn_args = _FnArgs(tmp_path, str(tmp_path / '*.gz'),
                    _custom_config(**{'training.architecture': one_conv}))
  run_fn_lib.run_fn(fn_args)
  assert _settings(fn_args)['architecture'] == 'one_conv_dae'
  loaded = tf.saved_model.load(fn_args.serving_model_dir)
  assert len(loaded.trainable_variables) == 2  # The convolution's kernel and bias.


def test_run_fn_fails_clearly_without_input_files(tmp_path):
  fn_args = _FnArgs(tmp_path, str(tmp_path / 'nothing-*.gz'))
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


def test_warm_up_rises_linearly_to_the_rate_then_decays_to_two_percent():
  schedule = model_lib.learning_rate_schedule(2e-3, 'cosine', total_steps=100,
                                              warmup_steps=10)
  assert float(schedule(0)) == pytest.approx(0.0, abs=1e-9)
  assert float(schedule(5)) == pytest.approx(1e-3, rel=1e-4)
  assert float(schedule(10)) == pytest.approx(2e-3, rel=1e-4)
  assert float(schedule(100)) == pytest.approx(2e-3 * 0.02, rel=1e-4)


def test_weight_decay_chooses_adamw_with_that_decay():
  adam = model_lib.compile_model(model_lib.build_unet(
      loss='bce', image_shape=MNIST_SHAPE), 'bce',
                                 1e-3).optimizer
  assert type(adam) is keras.optimizers.Adam  # pylint: disable=unidiomatic-typecheck
  adamw = model_lib.compile_model(model_lib.build_unet(
      loss='bce', image_shape=MNIST_SHAPE), 'bce', 1e-3,
                                  weight_decay=1e-4).optimizer
  assert isinstance(adamw, keras.optimizers.AdamW)
  assert adamw.weight_decay == pytest.approx(1e-4)


def _settings(fn_args):
  with open(os.path.join(fn_args.model_run_dir, run_fn_lib.SETTINGS_FILENAME)) as f:
    return json.load(f)


@pytest.mark.slow
def test_every_custom_config_value_reaches_training(tmp_path):
  """Each setting is read back from what trained (model, optimizer, policy),
  so a value that run_fn ignores or hard-codes fails here."""
  _write_noisy_examples(str(tmp_path / 'data.gz'), count=48)
  runs = {
      'defaults': {},
      'changed': {'training.architecture': 'article', 'training.loss': 'bce',
                  'training.batch_size': 8, 'training.learning_rate': 3e-3,
                  'training.lr_schedule': 'constant', 'training.epochs': 3,
                  'training.seed': 7, 'training.xla': True,
                  'training.mixed_precision': False,
                  'training.max_train_steps': 10},
  }
  seen = {}
  for name, changes in runs.items():
    fn_args = _FnArgs(tmp_path / name, str(tmp_path / '*.gz'),
                      _custom_config(**changes))
    try:
      run_fn_lib.run_fn(fn_args)
    finally:
      keras.mixed_precision.set_global_policy('float32')
    seen[name] = _settings(fn_args)
  default, changed = seen['defaults'], seen['changed']
  assert (default['architecture'], changed['architecture']) == ('unet_dae', 'article_dae')
  assert (default['loss'], changed['loss']) == ('mse', 'bce')
  assert (default['batch_size_per_replica'], changed['batch_size_per_replica']) == (16, 8)
  assert default['learning_rate_first'] == pytest.approx(2e-3)
  assert changed['learning_rate_first'] == pytest.approx(3e-3)
  # Cosine: the schedule spans exactly the steps run, so it ends at 2%.
  assert default['learning_rate_last'] == pytest.approx(
      2e-3 * model_lib.COSINE_FINAL_FRACTION, rel=1e-3)
  assert changed['learning_rate_last'] == pytest.approx(3e-3)  # Constant.
  # 48 images: 3 steps of 16 per epoch, 2 epochs; 6 of 8 per epoch, capped
  # at 10 steps: 2 epochs of 5.
  assert (default['epochs'], default['steps_per_epoch'], default['steps_run']) == (2, 3, 6)
  assert (changed['epochs'], changed['steps_per_epoch'], changed['steps_run']) == (2, 5, 10)
  assert (default['seed'], changed['seed']) == (42, 7)
  assert (default['jit_compile'], changed['jit_compile']) == (False, True)
  assert changed['precision_policy'] == 'float32'
  expected_default_policy = ('mixed_bfloat16' if strategy.cpu_has_native_bfloat16()
                             else 'float32')
  assert default['precision_policy'] == expected_default_policy


def test_run_fn_names_every_missing_custom_config_key(tmp_path):
  config = _custom_config()
  for key in (run_fn_lib.TRAINING_KEY, run_fn_lib.EVAL_EXAMPLES_KEY):
    del config[key]
  with pytest.raises(KeyError, match="lacks \\['training', 'eval_examples'\\]"):
    run_fn_lib.run_fn(_FnArgs(tmp_path, str(tmp_path / '*.gz'), config))
  assert set(_custom_config()) == set(run_fn_lib.REQUIRED_KEYS)


def test_run_fn_reads_the_pipeline_s_training_spec_whole_and_checks_it():
  config = pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'training.loss': 'l1', 'training.xla': 'true', 'training.max_train_steps': '5'})
  # The pipeline gives the training spec alone: sizes and shapes are the data's.
  pipeline_given = pipeline_module.trainer_custom_config(config)
  assert set(pipeline_given) == {run_fn_lib.TRAINING_KEY}
  settings = run_fn_lib.read_custom_config(dict(
      _custom_config(train_examples=512, eval_examples=128, info=PETS),
      **pipeline_given))
  assert settings.training == config.training
  assert (settings.train_examples, settings.eval_examples) == (512, 128)
  assert settings.dataset == PETS
  broken = dict(_custom_config(), **{run_fn_lib.TRAINING_KEY: '{"batch_size": 0}'})
  with pytest.raises(ValueError, match="training setting 'batch_size': must be positive"):
    run_fn_lib.read_custom_config(broken)


def _tiny_model():
  inputs = keras.Input((28, 28, 1))
  hidden = keras.layers.Conv2D(4, 3, padding='same', activation='relu')(inputs)
  outputs = keras.layers.Conv2D(1, 3, padding='same', activation='sigmoid',
                                dtype='float32')(hidden)
  return keras.Model(inputs, outputs)


def _one_custom_loop_step(policy, images, log_dir):
  """Weights before and after one step of the multi-worker loop (SGD)."""
  keras.mixed_precision.set_global_policy(policy)
  try:
    keras.utils.set_random_seed(0)
    model = _tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss='mse')
    before = [weight.numpy().astype(np.float64) for weight in model.trainable_weights]
    dataset = tf.data.Dataset.from_tensors(images).repeat()
    multi_worker.train(model, tf.distribute.get_strategy(), 'mse', dataset,
                       steps=1, global_batch=len(images[0]), log_dir=log_dir)
    after = [weight.numpy().astype(np.float64) for weight in model.trainable_weights]
    return model, before, after
  finally:
    keras.mixed_precision.set_global_policy('float32')


def test_multi_worker_loop_scales_the_loss_under_mixed_float16(tmp_path):
  noisy, clean = _pairs(8)
  images = (tf.constant(noisy), tf.constant(clean))
  model, before, half = _one_custom_loop_step('mixed_float16', images, str(tmp_path / 'half'))
  assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
  _, same_start, full = _one_custom_loop_step('float32', images, str(tmp_path / 'full'))
  for start, other_start in zip(before, same_start):
    np.testing.assert_allclose(start, other_start, rtol=1e-3, atol=1e-3)
  # Without scaling, the unscaled float16 gradients would be divided by the
  # loss scale (2**15): the step would be ~30,000x shorter than float32's.
  half_step = np.concatenate([(a - b).ravel() for a, b in zip(half, before)])
  full_step = np.concatenate([(a - b).ravel() for a, b in zip(full, same_start)])
  assert np.linalg.norm(full_step) > 0
  assert np.linalg.norm(half_step) == pytest.approx(np.linalg.norm(full_step), rel=0.05)


def test_a_gpu_attached_but_unusable_is_a_warning(monkeypatch, caplog):
  from components.trainer import strategy  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('NVIDIA_VISIBLE_DEVICES', 'GPU-1234')
  with caplog.at_level('INFO'):
    strategy.log_devices(gpus=[])
  assert 'sees' in caplog.text and "'GPU-1234' are attached" in caplog.text
  assert 'make image-gpu' in caplog.text
  caplog.clear()
  monkeypatch.setenv('NVIDIA_VISIBLE_DEVICES', 'void')
  with caplog.at_level('INFO'):
    strategy.log_devices(gpus=[])
  assert 'attached' not in caplog.text


# --- fresh noise: new noise every pass, drawn with NoiseTransform's settings ---

FRESH_IMAGES = 60


@pytest.fixture(scope='module')
def noised(tmp_path_factory):
  """NoiseTransform's real output (its executor) for 60 images per split."""
  from tests.components.test_noise_transform import _images, _run, _write_examples  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('noised')
  images, labels = _images(FRESH_IMAGES)
  return _run(_recording_sizes(_write_examples(root / 'in', images, labels)),
              root / 'out')


def _recording_sizes(examples, count=FRESH_IMAGES):
  """ExampleGen's examples with the size of every split recorded."""
  from components.common import progress  # pylint: disable=g-import-not-at-top
  progress.record_split_sizes(examples, {'train': count, 'eval': count,
                                         'test': count})
  return examples


def _split_files(examples, split):
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  return [os.path.join(artifact_utils.get_split_uri([examples], split), '*')]


def _recorded_spec(examples):
  return noise_lib.NoiseSpec.from_json(noise_lib.recorded_spec_json(examples))


def _batches(dataset, count):
  return [(noisy.numpy(), clean.numpy()) for (noisy, clean), _ in
          zip(dataset, range(count))]


def test_fresh_noise_redraws_the_records_noise_every_pass(noised):
  spec = _recorded_spec(noised)
  files = _split_files(noised, 'train')
  [(stored_noisy, stored_clean)] = _batches(
      data.make_dataset(files, FRESH_IMAGES, MNIST), 1)
  # Unshuffled, one batch is one pass.
  passes = _batches(data.make_dataset(files, FRESH_IMAGES, MNIST, fresh_noise=spec), 3)
  (noisy0, clean0), (noisy1, clean1), (noisy2, clean2) = passes
  np.testing.assert_array_equal(noisy0, stored_noisy)  # Pass 0: the records'.
  for clean in (clean0, clean1, clean2):
    np.testing.assert_array_equal(clean, stored_clean)
  residuals = [(noisy - clean).ravel() for noisy, clean in passes]
  for residual in residuals[1:]:  # New draws, same settings (sigma 0.2).
    assert residual.std() == pytest.approx(spec.stddev, rel=0.03)
  for first, second in ((0, 1), (0, 2), (1, 2)):
    assert abs(np.corrcoef(residuals[first], residuals[second])[0, 1]) < 0.03


def test_fresh_noise_is_reproducible_and_reshuffled_every_pass(noised):
  spec = _recorded_spec(noised)
  files = _split_files(noised, 'train')

  def run():
    return _batches(data.make_dataset(files, FRESH_IMAGES, MNIST, shuffle_seed=5,
                                      fresh_noise=spec), 2)

  first, again = run(), run()
  for (noisy, clean), (noisy_again, clean_again) in zip(first, again):
    np.testing.assert_array_equal(noisy, noisy_again)
    np.testing.assert_array_equal(clean, clean_again)
  (_, clean0), (_, clean1) = first
  assert not np.array_equal(clean0, clean1)  # Another order...
  np.testing.assert_array_equal(np.sort(clean0.reshape(FRESH_IMAGES, -1), axis=0),
                                np.sort(clean1.reshape(FRESH_IMAGES, -1), axis=0))


def _trainer_executor_inputs(tmp_path, examples, **changes):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'model')
  model_run = standard_artifacts.ModelRun()
  model_run.uri = str(tmp_path / 'model_run')
  # As the pipeline gives them: no steps, no sizes (the examples have them).
  custom_config = _pipeline_custom_config(**{'training.epochs': 2, **changes})
  exec_properties = {
      'run_fn': pipeline_module.RUN_FN,
      'custom_config': json.dumps(custom_config),
      'train_args': '{"splits": ["train"]}',
      'eval_args': '{"splits": ["eval"]}',
  }
  return ({'examples': [examples]}, {'model': [model], 'model_run': [model_run]},
          exec_properties)


@pytest.mark.slow
def test_trainer_executor_trains_on_the_noise_its_examples_record(
    tmp_path, noised, monkeypatch):
  from components.trainer import executor as trainer_executor  # pylint: disable=g-import-not-at-top
  training_sets = []
  make_dataset = data.make_dataset

  def recording_make_dataset(*args, **kwargs):
    training_sets.append(kwargs.get('fresh_noise'))
    return make_dataset(*args, **kwargs)

  monkeypatch.setattr(data, 'make_dataset', recording_make_dataset)
  inputs, outputs, properties = _trainer_executor_inputs(
      tmp_path, noised, **{'training.fresh_noise': True})
  trainer_executor.Executor().Do(inputs, outputs, properties)
  assert training_sets[0] == _recorded_spec(noised)
  model_run = outputs['model_run'][0].uri
  with open(os.path.join(model_run, run_fn_lib.SETTINGS_FILENAME)) as f:
    assert json.load(f)['fresh_noise'] is True
  assert tf.io.gfile.exists(os.path.join(outputs['model'][0].uri, 'Format-Serving',
                                         'saved_model.pb'))


def test_fresh_noise_without_the_examples_settings_is_a_clear_error(tmp_path):
  _write_noisy_examples(str(tmp_path / 'data.gz'))
  fn_args = _FnArgs(tmp_path, str(tmp_path / '*.gz'),
                    _custom_config(**{'training.fresh_noise': True}))
  with pytest.raises(ValueError, match="fresh_noise needs .* 'noise_spec'"):
    run_fn_lib.run_fn(fn_args)
  assert not os.path.exists(fn_args.serving_model_dir)


@pytest.mark.parametrize('architecture', ['unet', 'article'])
@pytest.mark.parametrize('image_shape', [(32, 32, 3), (30, 26, 3), (21, 23, 1)])
def test_models_take_any_image_size_and_channel_count(architecture, image_shape):
  # Sides that are not multiples of the pooling are padded and cropped back.
  model = architectures.build_model(architecture, 'mse', image_shape)
  noisy = np.random.default_rng(0).uniform(size=(2,) + image_shape).astype(np.float32)
  assert model.predict(noisy, verbose=0).shape == (2,) + image_shape
  padded = any(side % model_lib.POOLING_FACTOR for side in image_shape[:2])
  names = {layer.name for layer in model.layers}
  assert ({'pad_to_pooling', 'crop_padding'} <= names) == padded


@pytest.mark.parametrize('architecture', ['unet', 'unet_large'])
def test_fully_convolutional_models_build_for_any_size_with_the_same_weights(
    architecture):
  model = architectures.build_model(architecture, 'mse', (30, 26, 3))
  any_size = architectures.any_size_model(model, architecture, 'mse')
  assert any_size.input_shape == (None, None, None, 3)
  assert [weight.shape for weight in any_size.weights] == [
      weight.shape for weight in model.weights]
  noisy = np.random.default_rng(0).uniform(size=(2, 30, 26, 3)).astype(np.float32)
  np.testing.assert_allclose(any_size.predict(noisy, verbose=0),
                             model.predict(noisy, verbose=0), atol=1e-6)
  assert any_size.predict(noisy[:, :21, :17], verbose=0).shape == (2, 21, 17, 3)


def test_mnist_models_have_no_padding_layers():
  # 28 is a multiple of the pooling: the default model is exactly as before.
  model = architectures.build_model('unet', 'mse', MNIST_SHAPE)
  assert not {'pad_to_pooling', 'crop_padding'} & {layer.name for layer in model.layers}
  assert model.count_params() == 301985  # As the smoke run logs it.


def test_export_takes_the_shape_of_the_model(tmp_path):
  image_shape = (30, 26, 3)
  model = architectures.build_model('unet', 'mse', image_shape)
  saved_model.export_saved_model(model, str(tmp_path / 'model'))
  loaded = tf.saved_model.load(str(tmp_path / 'model'))
  noisy = np.random.default_rng(1).uniform(size=(2,) + image_shape).astype(np.float32)
  by_images = loaded.signatures[saved_model.IMAGES_SIGNATURE](images=tf.constant(noisy))
  by_examples = loaded.signatures[saved_model.EXAMPLES_SIGNATURE](
      examples=_serialized(noisy))
  assert by_images['output'].shape == (2,) + image_shape
  np.testing.assert_allclose(by_images['output'], by_examples['output'], atol=1e-6)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='not compatible with expected shape'):
    loaded.signatures[saved_model.IMAGES_SIGNATURE](
        images=tf.zeros((1,) + MNIST_SHAPE))
  assert saved_model.load_denoiser(str(tmp_path / 'model')).image_shape == image_shape


# --- datasets other than MNIST ------------------------------------------------

def _noised(root, info, count):
  """NoiseTransform's real output for `count` random images per split of the
  dataset `info` describes (labelled or not), split sizes recorded."""
  from tests.components.test_noise_transform import _run, _write_examples  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(2).integers(0, 256, size=(count, info.pixels),
                                             dtype=np.uint8)
  labels = np.arange(count) % len(info.class_names) if info.labeled else None
  return _run(_recording_sizes(_write_examples(root / 'in', images, labels,
                                               info=info), count), root / 'out')


def test_trainer_executor_builds_the_model_for_the_examples_dataset_and_sizes(
    tmp_path):
  from components.trainer import executor as trainer_executor  # pylint: disable=g-import-not-at-top
  examples = _noised(tmp_path / 'data', PETS, 20)
  inputs, outputs, properties = _trainer_executor_inputs(
      tmp_path, examples, **{'training.batch_size': 8, 'training.epochs': 1,
                             'training.architecture': 'article',
                             'training.fresh_noise': True})
  trainer_executor.Executor().Do(inputs, outputs, properties)
  with open(os.path.join(outputs['model_run'][0].uri,
                         run_fn_lib.SETTINGS_FILENAME)) as f:
    settings = json.load(f)
  # Planned from the 20 train examples the examples record: 3 steps of 8.
  assert (settings['epochs'], settings['steps_per_epoch'], settings['steps_run']) == (
      1, 3, 3)
  denoiser = saved_model.load_denoiser(os.path.join(outputs['model'][0].uri,
                                               'Format-Serving'))
  assert denoiser.image_shape == (12, 10, 3)


def test_trainer_executor_needs_the_examples_split_sizes_and_dataset_info(tmp_path):
  from components.trainer import executor as trainer_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path)
  dataset_info.record(examples, PETS)
  with pytest.raises(ValueError, match=r"no size of split\(s\) \['train', 'eval'\]"):
    trainer_executor.examples_config(examples)
  from components.common import progress  # pylint: disable=g-import-not-at-top
  progress.record_split_sizes(examples, {'train': 5, 'eval': 3})
  assert trainer_executor.examples_config(examples) == {
      run_fn_lib.DATASET_INFO_KEY: PETS.to_json(),
      run_fn_lib.TRAIN_EXAMPLES_KEY: 5, run_fn_lib.EVAL_EXAMPLES_KEY: 3}
  del examples.mlmd_artifact.custom_properties[dataset_info.PROPERTY]
  with pytest.raises(dataset_info.MissingDatasetInfo):
    trainer_executor.examples_config(examples)


def test_fresh_noise_redraws_unlabelled_examples_from_their_own_noise(tmp_path):
  unlabelled = dataset_info.DatasetInfo('flat_folder', (8, 8, 1))
  examples = _noised(tmp_path, unlabelled, 16)
  files = _split_files(examples, 'train')
  [(stored_noisy, _)] = _batches(data.make_dataset(files, 16, unlabelled), 1)
  passes = _batches(data.make_dataset(files, 16, unlabelled,
                                      fresh_noise=_recorded_spec(examples)), 2)
  assert stored_noisy.shape == (16, 8, 8, 1)
  np.testing.assert_array_equal(passes[0][0], stored_noisy)  # Pass 0: the records'.
  assert not np.array_equal(passes[1][0], stored_noisy)


def test_run_fn_restores_the_precision_policy_it_trained_under(tmp_path, monkeypatch):
  """The policy is process-global: a local run's later components (and later
  tests) must not compute in the Trainer's bfloat16."""
  monkeypatch.setattr(strategy, 'cpu_has_native_bfloat16', lambda: True)
  _write_noisy_examples(str(tmp_path / 'data.gz'), count=16)
  fn_args = _FnArgs(tmp_path / 'run', str(tmp_path / '*.gz'),
                    _custom_config(**{'training.max_train_steps': 1}))
  keras.mixed_precision.set_global_policy('float32')
  run_fn_lib.run_fn(fn_args)
  assert _settings(fn_args)['precision_policy'] == 'mixed_bfloat16'
  assert keras.mixed_precision.global_policy().name == 'float32'


def test_the_clean_images_held_as_8_bits_come_back_bit_for_bit(noised):
  files = _split_files(noised, 'train')
  records = tf.data.TFRecordDataset(examples_lib.list_files(files),
                                    compression_type='GZIP').batch(1000)
  expected_noisy, expected_clean = data.parse_batch(next(iter(records)), MNIST)
  for fresh_noise in (None, _recorded_spec(noised)):
    [(noisy, clean)] = _batches(data.make_dataset(
        files, FRESH_IMAGES, MNIST, fresh_noise=fresh_noise), 1)
    np.testing.assert_array_equal(clean, expected_clean.numpy())
    np.testing.assert_array_equal(noisy, expected_noisy.numpy())


def test_fresh_noise_takes_the_recorded_count_instead_of_counting(noised):
  spec = _recorded_spec(noised)
  files = _split_files(noised, 'train')
  counted = _batches(data.make_dataset(files, FRESH_IMAGES, MNIST, fresh_noise=spec), 2)
  given = _batches(data.make_dataset(files, FRESH_IMAGES, MNIST, fresh_noise=spec,
                                     examples_count=FRESH_IMAGES), 2)
  for (noisy, clean), (noisy_given, clean_given) in zip(counted, given):
    np.testing.assert_array_equal(noisy, noisy_given)
    np.testing.assert_array_equal(clean, clean_given)
  # The count given is the one used: told twice as many, the second batch is
  # still pass 0, the records' own noise.
  doubled = _batches(data.make_dataset(files, FRESH_IMAGES, MNIST, fresh_noise=spec,
                                       examples_count=2 * FRESH_IMAGES), 2)
  np.testing.assert_array_equal(doubled[1][0], counted[0][0])


# --- whole train images of any size (data.patch_size) -----------------------

PATCH = dataset_info.DatasetInfo('mixed', (6, 5, 1), (),
                                 whole_train_values=0)
WHOLE_IMAGES = 8


def _write_whole_images(path, count=WHOLE_IMAGES, seed=3):
  """NoiseTransform's train records of data.patch_size: whole images of
  several sizes with their height and width; returns [(noisy, clean)]."""
  rng = np.random.default_rng(seed)
  sizes = [(6, 5), (12, 9), (9, 14), (16, 16)]
  written = []
  with tf.io.TFRecordWriter(str(path), options='GZIP') as writer:
    for index in range(count):
      height, width = sizes[index % len(sizes)]
      clean = rng.integers(0, 256, (height, width, 1)).astype(np.float32) / 255
      noisy = (clean + rng.normal(0, 0.3, clean.shape)).astype(np.float32)
      written.append((noisy, clean))
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          'noisy': tf.train.Feature(float_list=tf.train.FloatList(
              value=noisy.reshape(-1))),
          'clean': tf.train.Feature(float_list=tf.train.FloatList(
              value=clean.reshape(-1))),
          'height': tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
          'width': tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
      })).SerializeToString())
  return written


def _window_of(crop_noisy, crop_clean, written):
  """The (image, top, left) whose window both crops are (the same window
  of the noisy and the clean image); None when there is none."""
  height, width = crop_clean.shape[:2]
  for image, (noisy, clean) in enumerate(written):
    for top in range(clean.shape[0] - height + 1):
      for left in range(clean.shape[1] - width + 1):
        if (np.array_equal(clean[top:top + height, left:left + width], crop_clean)
            and np.array_equal(noisy[top:top + height, left:left + width],
                               crop_noisy)):
          return image, top, left
  return None


def _crop_passes(path, seed, passes=3):
  dataset = data.make_dataset([str(path)], WHOLE_IMAGES, PATCH,
                              shuffle_seed=seed, repeat=True,
                              whole_images=True)
  return _batches(dataset, passes)


def test_whole_train_images_give_new_seeded_crops_of_the_patch_every_pass(tmp_path):
  written = _write_whole_images(tmp_path / 'train.gz')
  passes = _crop_passes(tmp_path / 'train.gz', seed=11)
  windows = []
  for noisy, clean in passes:
    assert noisy.shape == clean.shape == (WHOLE_IMAGES, 6, 5, 1)
    found = [_window_of(n, c, written) for n, c in zip(noisy, clean)]
    assert None not in found  # Each crop is one window of noisy and clean.
    assert sorted(image for image, _, _ in found) == list(range(WHOLE_IMAGES))
    windows.append(sorted(found))
  # New crops every pass; the same crops again for the same seed.
  assert windows[0] != windows[1] != windows[2]
  again = _crop_passes(tmp_path / 'train.gz', seed=11)
  for (noisy, clean), (noisy_again, clean_again) in zip(passes, again):
    np.testing.assert_array_equal(noisy, noisy_again)
    np.testing.assert_array_equal(clean, clean_again)
  other = _crop_passes(tmp_path / 'train.gz', seed=12, passes=1)
  assert not np.array_equal(other[0][1], passes[0][1])


def test_whole_train_images_refuse_fresh_noise(tmp_path):
  _write_whole_images(tmp_path / 'train.gz')
  with pytest.raises(ValueError, match='training.fresh_noise does not apply'):
    data.make_dataset([str(tmp_path / 'train.gz')], 4, PATCH, shuffle_seed=1,
                      fresh_noise=noise_lib.NoiseSpec(), whole_images=True)
