"""`dae-pipeline denoise`: real SavedModels, files the tests write, the CLI."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common import serving_dir
from components.common import saved_model
from pipeline import cli


def _export(path, layer):
  """Exports a 28x28x1 model made of one layer, as the Trainer exports."""
  inputs = keras.Input((28, 28, 1))
  saved_model.export_saved_model(keras.Model(inputs, layer(inputs)), str(path))
  return str(path)


@pytest.fixture(scope='module')
def clip_model(tmp_path_factory):
  """Output = input clipped to [0, 1]: PNG inputs come back unchanged."""
  return _export(tmp_path_factory.mktemp('clip') / 'model',
                 keras.layers.ReLU(max_value=1.0))


@pytest.fixture(scope='module')
def invert_model(tmp_path_factory):
  """Output = 1 - input."""
  return _export(tmp_path_factory.mktemp('invert') / 'model',
                 keras.layers.Rescaling(scale=-1.0, offset=1.0))


@pytest.fixture(scope='module')
def rgb_model(tmp_path_factory):
  """A 16x16 RGB SavedModel (not the Trainer's shape): output = input."""
  module = tf.Module()
  module.denoise = tf.function(
      lambda images: {saved_model.OUTPUT_KEY: tf.identity(images)},
      input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32, name='images')])
  path = str(tmp_path_factory.mktemp('rgb') / 'model')
  tf.saved_model.save(module, path, signatures={
      saved_model.IMAGES_SIGNATURE: module.denoise.get_concrete_function()})
  return path


@pytest.fixture(scope='module')
def unet_model(tmp_path_factory):
  """A U-Net built for 28x28x1 (untrained), exported as the Trainer exports
  it: for images of any size."""
  from components.trainer import architectures  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  model = architectures.build_model('unet', 'bce', (28, 28, 1))
  path = str(tmp_path_factory.mktemp('unet') / 'model')
  saved_model.export_saved_model(
      architectures.any_size_model(model, 'unet', 'bce'), path,
      trained_shape=(28, 28, 1))
  return path


def _image(height=28, width=28, seed=0):
  """A bright bar on black with a little noise, float [H, W] in [0, 1]."""
  rng = np.random.default_rng(seed)
  image = np.zeros((height, width))
  image[8:20, 10:14] = 1.0
  return np.clip(image + rng.normal(0, 0.1, image.shape), 0, 1)


def _write_png(path, image):
  """Writes float [H, W] or [H, W, C] in [0, 1] as an 8-bit PNG; returns
  the pixels it holds, float [H, W, C]."""
  pixels = np.rint(np.asarray(image) * 255).astype(np.uint8)
  if pixels.ndim == 2:
    pixels = pixels[..., None]
  tf.io.write_file(str(path), tf.io.encode_png(pixels))
  return pixels / 255.0


def _read_png(path):
  return tf.io.decode_png(tf.io.read_file(str(path))).numpy() / 255.0


def _denoise(capsys, *argv):
  code = cli.main(['denoise', *map(str, argv)])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def test_denoise_writes_a_png_per_image_and_names_the_model(
    tmp_path, capsys, clip_model):
  image = _write_png(tmp_path / 'image.png', _image())
  stack = np.stack([_image(seed=1), _image(seed=2)])[..., None].astype(np.float32)
  np.save(tmp_path / 'stack.npy', stack)
  grey = np.rint(_image(seed=3) * 255).astype(np.uint8)  # [H, W] uint8.
  np.save(tmp_path / 'grey.npy', grey)
  output = tmp_path / 'out'
  code, out, err = _denoise(capsys, tmp_path / 'image.png', tmp_path / 'stack.npy',
                            tmp_path / 'grey.npy', '--model', clip_model,
                            '--output', output)
  assert code == 0, err
  assert sorted(os.listdir(output)) == ['grey.png', 'image.png', 'stack-0.png',
                                        'stack-1.png']
  np.testing.assert_allclose(_read_png(output / 'image.png'), image, atol=1e-6)
  for index in range(2):
    np.testing.assert_allclose(_read_png(output / f'stack-{index}.png'),
                               stack[index], atol=0.5 / 255 + 1e-6)
  np.testing.assert_allclose(_read_png(output / 'grey.png')[..., 0], grey / 255.0,
                             atol=1e-6)
  assert f'model: {clip_model} (takes 28x28x1 images, HxWxC)' in out
  assert f'wrote {output}/image.png' in out
  assert f'wrote 2 images of {tmp_path}/stack.npy' in out


def test_a_colour_image_is_converted_to_grey_for_a_grey_model(
    tmp_path, capsys, clip_model):
  colour = np.stack([_image(), _image(seed=1) * 0.5, np.zeros((28, 28))], axis=-1)
  pixels = _write_png(tmp_path / 'colour.png', colour)
  code, out, err = _denoise(capsys, tmp_path / 'colour.png', '--model', clip_model,
                            '--output', tmp_path / 'out')
  assert code == 0, err
  written = _read_png(tmp_path / 'out' / 'colour.png')
  expected = tf.image.rgb_to_grayscale(pixels.astype(np.float32)).numpy()
  assert written.shape == (28, 28, 1)
  np.testing.assert_allclose(written, expected, atol=0.5 / 255 + 1e-6)
  assert f'{tmp_path}/colour.png: colour converted to grey' in out


def test_a_grey_image_is_converted_to_rgb_for_a_colour_model_of_its_shape(
    tmp_path, capsys, rgb_model):
  pixels = _write_png(tmp_path / 'small.png', _image(16, 16))
  code, out, err = _denoise(capsys, tmp_path / 'small.png', '--model', rgb_model,
                            '--output', tmp_path / 'out')
  assert code == 0, err
  written = _read_png(tmp_path / 'out' / 'small.png')
  np.testing.assert_allclose(written, np.repeat(pixels, 3, axis=-1), atol=1e-6)
  assert 'takes 16x16x3' in out and 'grey converted to RGB' in out


def _assert_one_line_error(code, err, *fragments):
  assert code == cli.EXIT_INVALID_CONFIG
  assert len(err.strip().splitlines()) == 1, err
  assert err.startswith('dae-pipeline: denoise: ')
  for fragment in fragments:
    assert fragment in err, err


def test_an_image_of_another_size_refuses_the_command_before_any_write(
    tmp_path, capsys, clip_model):
  _write_png(tmp_path / 'good.png', _image())
  _write_png(tmp_path / 'big.png', _image(32, 30))
  output = tmp_path / 'out'
  code, _, err = _denoise(capsys, tmp_path / 'good.png', tmp_path / 'big.png',
                          '--model', clip_model, '--output', output)
  _assert_one_line_error(code, err, f'{tmp_path}/big.png is 32x30 (HxW)',
                         'the model takes 28x28')
  assert not output.exists()


def test_a_fully_convolutional_model_denoises_an_image_of_any_size_at_its_size(
    tmp_path, capsys, unet_model):
  pixels = _write_png(tmp_path / 'big.png', _image(40, 40))
  _write_png(tmp_path / 'wide.png', _image(21, 34, seed=1))
  output = tmp_path / 'out'
  code, out, err = _denoise(capsys, tmp_path / 'big.png', tmp_path / 'wide.png',
                            '--model', unet_model, '--output', output)
  assert code == 0, err
  assert (f'model: {unet_model} (takes images of any size with 1 channel(s); '
          'trained on 28x28x1, HxWxC)') in out
  denoised = _read_png(output / 'big.png')
  assert denoised.shape == (40, 40, 1)
  assert _read_png(output / 'wide.png').shape == (21, 34, 1)
  expected = saved_model.Denoiser(unet_model)(pixels[None].astype(np.float32))[0]
  np.testing.assert_allclose(denoised, expected, atol=0.5 / 255 + 1e-6)


def test_a_reference_of_another_size_than_its_image_is_refused(
    tmp_path, capsys, unet_model):
  _write_png(tmp_path / 'big.png', _image(40, 40))
  _write_png(tmp_path / 'clean.png', _image())
  code, _, err = _denoise(capsys, tmp_path / 'big.png', '--reference',
                          tmp_path / 'clean.png', '--model', unet_model,
                          '--output', tmp_path / 'out')
  _assert_one_line_error(code, err, f'{tmp_path}/clean.png is 28x28 (HxW) but '
                         f'{tmp_path}/big.png 40x40')
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('name, contents, fragment', [
    ('missing.png', None, 'no such file'),
    ('broken.png', b'not a picture', 'cannot be decoded as an image'),
    ('broken.npy', b'not an array', 'not a .npy array'),
    ('image.gif', b'GIF89a', "unsupported file type '.gif'"),
    ('labels.npy', np.zeros((28, 28), np.int64), 'int64 pixels'),
    ('odd.npy', np.zeros((5, 28, 28), np.float32), 'an array of shape [5, 28, 28]'),
])
def test_a_bad_file_is_a_one_line_error_naming_it(
    tmp_path, capsys, clip_model, name, contents, fragment):
  _write_png(tmp_path / 'good.png', _image())
  path = tmp_path / name
  if isinstance(contents, bytes):
    path.write_bytes(contents)
  elif contents is not None:
    np.save(path, contents)
  code, _, err = _denoise(capsys, tmp_path / 'good.png', path, '--model',
                          clip_model, '--output', tmp_path / 'out')
  _assert_one_line_error(code, err, f'{path}: {fragment}')
  assert not (tmp_path / 'out').exists()
  # In words: none of TensorFlow's or Python's internals.
  assert not re.search(r'function_node|\[Op:|object at 0x', err), err


def test_a_missing_input_is_refused_before_the_model_loads(tmp_path, capsys,
                                                           monkeypatch, clip_model):
  from pipeline import denoise  # pylint: disable=g-import-not-at-top
  loaded = []
  monkeypatch.setattr(denoise, 'load_model', loaded.append)
  code, _, err = _denoise(capsys, tmp_path / 'missing.png', '--model',
                          clip_model, '--output', tmp_path / 'out')
  assert code == 2 and 'missing.png: no such file' in err, err
  assert not loaded


def test_0_to_255_floats_are_refused_by_the_model_naming_the_scale(
    tmp_path, capsys, clip_model):
  np.save(tmp_path / 'bright.npy', (_image() * 255).astype(np.float32))
  code, _, err = _denoise(capsys, tmp_path / 'bright.npy', '--model', clip_model,
                          '--output', tmp_path / 'out')
  _assert_one_line_error(code, err, f'{tmp_path}/bright.npy: the model refused it',
                         'must be on the [0, 1] scale')
  assert not (tmp_path / 'out').exists()


def test_inputs_that_would_overwrite_each_other_are_refused(
    tmp_path, capsys, clip_model):
  for folder in ('a', 'b'):
    (tmp_path / folder).mkdir()
    _write_png(tmp_path / folder / 'image.png', _image())
  code, _, err = _denoise(capsys, tmp_path / 'a' / 'image.png',
                          tmp_path / 'b' / 'image.png', '--model', clip_model,
                          '--output', tmp_path / 'out')
  _assert_one_line_error(code, err, 'would both be written to image.png')


def _psnr(clean, images):
  return 10 * np.log10(1 / np.mean((np.float64(clean) - images) ** 2, axis=(1, 2, 3)))


def test_reference_prints_psnr_and_ssim_of_input_and_output(
    tmp_path, capsys, clip_model):
  # Unclipped noise: clipping it (the model) brings the images nearer the clean.
  rng = np.random.default_rng(0)
  clean = np.stack([_image(seed=seed) for seed in range(2)])[..., None]
  noisy = (clean + rng.normal(0, 0.4, clean.shape)).astype(np.float32)
  np.save(tmp_path / 'noisy.npy', noisy)
  np.save(tmp_path / 'clean.npy', clean.astype(np.float32))
  code, out, err = _denoise(capsys, tmp_path / 'noisy.npy', '--reference',
                            tmp_path / 'clean.npy', '--model', clip_model,
                            '--output', tmp_path / 'out')
  assert code == 0, err
  clean32 = clean.astype(np.float32)
  denoised = np.clip(noisy, 0, 1)
  psnr_in, psnr_out = _psnr(clean32, noisy), _psnr(clean32, denoised)
  ssim_in = tf.image.ssim(clean32, noisy, max_val=1.0).numpy()
  ssim_out = tf.image.ssim(clean32, denoised, max_val=1.0).numpy()
  assert (psnr_out > psnr_in + 1).all() and (ssim_out > ssim_in).all()
  for index in range(2):
    assert (f'{tmp_path}/noisy.npy[{index}]: PSNR {psnr_in[index]:.1f} -> '
            f'{psnr_out[index]:.1f} dB, SSIM {ssim_in[index]:.2f} -> '
            f'{ssim_out[index]:.2f}') in out, out


def test_reference_count_must_match_the_images(tmp_path, capsys, clip_model):
  _write_png(tmp_path / 'a.png', _image())
  _write_png(tmp_path / 'b.png', _image(seed=1))
  code, _, err = _denoise(capsys, tmp_path / 'a.png', tmp_path / 'b.png',
                          '--reference', tmp_path / 'a.png', '--model',
                          clip_model, '--output', tmp_path / 'out')
  _assert_one_line_error(code, err, '1 --reference files for 2 images')


def test_the_newest_complete_served_version_is_used(
    tmp_path, capsys, clip_model, invert_model):
  base = tmp_path / 'serving'
  serving_dir.copy_tree(clip_model, str(base / '100'))
  serving_dir.copy_tree(invert_model, str(base / '200'))
  # A push cut short: everything but saved_model.pb.
  serving_dir.copy_tree(clip_model, str(base / '300'))
  os.remove(base / '300' / serving_dir.SAVED_MODEL_FILENAME)
  image = _write_png(tmp_path / 'image.png', _image())
  code, out, err = _denoise(capsys, tmp_path / 'image.png', '--serving-dir', base,
                            '--output', tmp_path / 'out')
  assert code == 0, err
  assert f'model: version 200 of {base}' in out
  np.testing.assert_allclose(_read_png(tmp_path / 'out' / 'image.png'), 1 - image,
                             atol=1e-6)


def test_no_served_model_is_a_one_line_error(tmp_path, capsys):
  (tmp_path / 'serving' / '100').mkdir(parents=True)  # Incomplete only.
  _write_png(tmp_path / 'image.png', _image())
  code, _, err = _denoise(capsys, tmp_path / 'image.png', '--serving-dir',
                          tmp_path / 'serving', '--output', tmp_path / 'out')
  _assert_one_line_error(code, err, 'no complete model version in')


def test_a_model_dir_without_a_saved_model_is_a_one_line_error(tmp_path, capsys):
  _write_png(tmp_path / 'image.png', _image())
  code, _, err = _denoise(capsys, tmp_path / 'image.png', '--model', tmp_path,
                          '--output', tmp_path / 'out')
  _assert_one_line_error(code, err, f'{tmp_path} is not a SavedModel directory')


@pytest.mark.slow
def test_the_denoise_command_leaves_the_tfx_runtime_unimported(
    tmp_path, clip_model):
  # A fresh interpreter: only TFX's small file-I/O module (via serving_dir),
  # and what `import tfx` itself loads (TFX 1.21's tfx/__init__.py imports
  # tfx_bsl.arrow.sql_util, milliseconds).
  _write_png(tmp_path / 'image.png', _image())
  code = ('import sys; from pipeline import cli\n'
          f'code = cli.main(["denoise", {str(tmp_path / "image.png")!r}, '
          f'"--model", {clip_model!r}, "--output", {str(tmp_path / "out")!r}])\n'
          'loaded = sorted(m for m in sys.modules if m.startswith("tfx") and not '
          '(m in ("tfx", "tfx.version", "tfx.dsl", "tfx_bsl", "tfx_bsl.version", '
          '"tfx_bsl.arrow", "tfx_bsl.arrow.sql_util") or m.startswith("tfx.dsl.io")))\n'
          'print(loaded)\n'
          'sys.exit(code or (10 if loaded else 0))')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  assert (tmp_path / 'out' / 'image.png').exists()


def test_an_output_that_would_overwrite_its_input_is_refused(
    tmp_path, capsys, clip_model):
  original = _write_png(tmp_path / 'image.png', _image())
  code, _, err = _denoise(capsys, tmp_path / 'image.png', '--model', clip_model,
                          '--output', tmp_path)
  _assert_one_line_error(code, err, 'would overwrite an input')
  np.testing.assert_array_equal(_read_png(tmp_path / 'image.png'), original)


@pytest.mark.slow
def test_the_denoise_command_prints_no_tensorflow_noise(tmp_path, clip_model):
  # A fresh process, as a user runs it: TensorFlow's import says nothing.
  _write_png(tmp_path / 'image.png', _image())
  result = subprocess.run(
      [sys.executable, '-m', 'pipeline.cli', 'denoise', str(tmp_path / 'image.png'),
       '--model', clip_model, '--output', str(tmp_path / 'out')],
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stderr == '', result.stderr
  assert result.stdout.strip().splitlines()[-1] == f'wrote {tmp_path}/out/image.png'
