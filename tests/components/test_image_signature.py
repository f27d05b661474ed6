"""The exported SavedModel's image-file signature: PNG/JPEG in, PNG out."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common import saved_model
from components.trainer import architectures
from components.trainer import model as model_lib

# MNIST's shape and a non-square colour one: the signature follows the model.
SHAPES = [(28, 28, 1), (20, 16, 3)]
# An 8-bit PNG holds the float output to within half a step.
PNG_TOLERANCE = 0.5 / saved_model.MAX_PIXEL_VALUE + 1e-6


@pytest.fixture(scope='module', params=SHAPES, ids=lambda shape: 'x'.join(map(str, shape)))
def exported(request, tmp_path_factory):
  """(export dir, loaded SavedModel, image shape) of a tiny untrained U-Net."""
  keras.utils.set_random_seed(0)
  image_shape = request.param
  model = model_lib.build_unet(model_lib.UNetSpec(widths=(4, 8, 8)), loss='bce',
                               image_shape=image_shape)
  path = str(tmp_path_factory.mktemp('export') / 'model')
  saved_model.export_saved_model(model, path)
  return path, tf.saved_model.load(path), image_shape


def _images(count, image_shape, seed=0):
  return np.random.default_rng(seed).integers(
      0, 256, size=(count,) + tuple(image_shape), dtype=np.uint8)


def _by_bytes(loaded, files):
  """The image signature's PNGs for `files`, decoded to uint8 numpy."""
  signature = loaded.signatures[saved_model.IMAGE_BYTES_SIGNATURE]
  outputs = signature(**{saved_model.IMAGE_BYTES_INPUT_KEY: tf.constant(files)})
  return np.stack([tf.io.decode_png(png).numpy()
                   for png in outputs[saved_model.DENOISED_BYTES_KEY].numpy()])


def _by_images(loaded, pixels):
  """serving_default's float output for uint8 `pixels`."""
  images = tf.constant(pixels.astype(np.float32) / saved_model.MAX_PIXEL_VALUE)
  return loaded.signatures[saved_model.IMAGES_SIGNATURE](images=images)[
      saved_model.OUTPUT_KEY].numpy()


def test_png_input_gives_serving_default_s_images_as_8_bit_pngs(exported):
  _, loaded, image_shape = exported
  pixels = _images(3, image_shape)
  denoised = _by_bytes(loaded, [tf.io.encode_png(image).numpy() for image in pixels])
  assert denoised.dtype == np.uint8 and denoised.shape == (3,) + image_shape
  np.testing.assert_allclose(denoised / saved_model.MAX_PIXEL_VALUE,
                             _by_images(loaded, pixels), rtol=0, atol=PNG_TOLERANCE)


def test_jpeg_input_decodes(exported):
  _, loaded, image_shape = exported
  jpegs = [tf.io.encode_jpeg(image).numpy() for image in _images(2, image_shape)]
  # JPEG is lossy: compare with what the same file decodes to.
  decoded = np.stack([tf.io.decode_jpeg(jpeg, channels=image_shape[-1]).numpy()
                      for jpeg in jpegs])
  np.testing.assert_allclose(_by_bytes(loaded, jpegs) / saved_model.MAX_PIXEL_VALUE,
                             _by_images(loaded, decoded), rtol=0, atol=PNG_TOLERANCE)


def test_grey_files_are_converted_to_the_model_s_channels(exported):
  _, loaded, image_shape = exported
  grey = _images(1, image_shape[:2] + (1,))
  as_model_takes = np.repeat(grey, image_shape[-1], axis=-1)
  np.testing.assert_allclose(
      _by_bytes(loaded, [tf.io.encode_png(grey[0]).numpy()]) / saved_model.MAX_PIXEL_VALUE,
      _by_images(loaded, as_model_takes), rtol=0, atol=PNG_TOLERANCE)


def test_a_png_of_another_size_is_refused_naming_both_sizes(exported):
  _, loaded, image_shape = exported
  height, width, channels = image_shape
  good = tf.io.encode_png(_images(1, image_shape)[0]).numpy()
  # As many pixels (the check is not on the count), another height and width.
  wrong_height, wrong_width = width, height
  if wrong_height == height:
    wrong_height, wrong_width = height // 2, width * 2
  wrong = tf.io.encode_png(_images(1, (wrong_height, wrong_width, channels))[0]).numpy()
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=f'image is {wrong_height}x{wrong_width}x{channels}, the model '
                     f'takes {height}x{width}x{channels}'):
    _by_bytes(loaded, [good, wrong])


def test_undecodable_bytes_are_refused(exported):
  _, loaded, _ = exported
  with pytest.raises(tf.errors.InvalidArgumentError, match='Unknown image file format'):
    _by_bytes(loaded, [b'not an image'])


def test_saved_model_cli_lists_the_signature_with_string_input_and_output(exported):
  path, _, _ = exported
  saved_model_cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  shown = subprocess.run([saved_model_cli, 'show', '--all', '--dir', path],
                         capture_output=True, text=True, check=True).stdout
  block = shown.split(f"signature_def['{saved_model.IMAGE_BYTES_SIGNATURE}']:")[1].split(
      'Method name is')[0]
  inputs, outputs = block.split('the following output(s)')
  assert f"inputs['{saved_model.IMAGE_BYTES_INPUT_KEY}']" in inputs
  assert f"outputs['{saved_model.DENOISED_BYTES_KEY}']" in outputs
  assert inputs.count('dtype: DT_STRING') == 1 and outputs.count('dtype: DT_STRING') == 1
  # TF Serving's REST API base64-encodes only tensors named *_bytes.
  assert saved_model.IMAGE_BYTES_INPUT_KEY.endswith('_bytes')
  assert saved_model.DENOISED_BYTES_KEY.endswith('_bytes')


# --- a fully convolutional model serves any size --------------------------------

MNIST_SHAPE = (28, 28, 1)
# Sides that need padding to the pooling's multiple (20x36 does not, 21x30 does).
OTHER_SIZES = [(20, 36), (64, 64), (21, 30)]


def _bars(count, image_shape, seed=0):
  """(noisy, clean) float images: a bright bar on black, Gaussian noise."""
  rng = np.random.default_rng(seed)
  clean = np.zeros((count,) + tuple(image_shape), np.float32)
  for index in range(count):
    row, column = rng.integers(2, np.array(image_shape[:2]) - 10)
    clean[index, row:row + 3, column:column + 8] = 1.0
  noisy = clean + rng.normal(0, 0.2, clean.shape).astype(np.float32)
  return noisy, clean


@pytest.fixture(scope='module')
def any_size(tmp_path_factory):
  """A U-Net trained briefly on 28x28 images, exported as the Trainer exports
  it (any size) and as a model of its one trained size: (the trained model,
  the any-size export's dir and loaded SavedModel, the fixed one loaded)."""
  keras.utils.set_random_seed(0)
  model = model_lib.compile_model(
      architectures.build_model('unet', 'bce', MNIST_SHAPE), 'bce', 2e-3)
  noisy, clean = _bars(64, MNIST_SHAPE)
  model.fit(noisy, clean, batch_size=16, epochs=1, verbose=0)
  root = tmp_path_factory.mktemp('any_size')
  saved_model.export_saved_model(model, str(root / 'fixed'))
  saved_model.export_saved_model(
      architectures.any_size_model(model, 'unet', 'bce'), str(root / 'any'),
      trained_shape=MNIST_SHAPE)
  return (model, str(root / 'any'), tf.saved_model.load(str(root / 'any')),
          tf.saved_model.load(str(root / 'fixed')))


@pytest.mark.parametrize('size', OTHER_SIZES, ids=lambda size: '%dx%d' % size)
def test_serving_default_takes_any_size_and_pads_as_training_would(any_size, size):
  model, _, loaded, _ = any_size
  noisy, _ = _bars(2, size + (1,))
  output = loaded.signatures[saved_model.IMAGES_SIGNATURE](
      images=tf.constant(noisy))[saved_model.OUTPUT_KEY].numpy()
  assert output.shape == (2,) + size + (1,)
  # The same weights in a model built for that one size (ZeroPadding2D as
  # training pads): the graph's padding is the same.
  fixed = architectures.build_model('unet', 'bce', size + (1,))
  fixed.set_weights(model.get_weights())
  np.testing.assert_allclose(output, fixed.predict(noisy, verbose=0), atol=1e-5)


def test_the_trained_size_gives_the_fixed_size_export_s_output(any_size):
  _, _, loaded, fixed = any_size
  noisy, _ = _bars(4, MNIST_SHAPE, seed=1)
  outputs = [export.signatures[saved_model.IMAGES_SIGNATURE](
      images=tf.constant(noisy))[saved_model.OUTPUT_KEY].numpy()
             for export in (loaded, fixed)]
  np.testing.assert_allclose(outputs[0], outputs[1], rtol=0, atol=1e-6)
  examples = [export.signatures[saved_model.EXAMPLES_SIGNATURE](examples=tf.constant([
      tf.train.Example(features=tf.train.Features(feature={
          'noisy': tf.train.Feature(float_list=tf.train.FloatList(
              value=image.reshape(-1)))})).SerializeToString()
      for image in noisy]))[saved_model.OUTPUT_KEY].numpy()
              for export in (loaded, fixed)]
  np.testing.assert_allclose(examples[0], outputs[1], rtol=0, atol=1e-6)
  np.testing.assert_allclose(examples[1], outputs[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize('sizes', [[(20, 36), (64, 64), (28, 28)], [(21, 30)] * 3],
                         ids=['mixed', 'one_size'])
def test_png_signature_takes_files_of_any_sizes_in_one_batch(any_size, sizes):
  _, _, loaded, _ = any_size
  pixels = [_images(1, size + (1,), seed=index)[0] for index, size in enumerate(sizes)]
  outputs = loaded.signatures[saved_model.IMAGE_BYTES_SIGNATURE](**{
      saved_model.IMAGE_BYTES_INPUT_KEY: tf.constant(
          [tf.io.encode_png(image).numpy() for image in pixels])})[
              saved_model.DENOISED_BYTES_KEY].numpy()
  for image, png in zip(pixels, outputs):
    denoised = tf.io.decode_png(png).numpy()
    assert denoised.shape == image.shape
    np.testing.assert_allclose(denoised / saved_model.MAX_PIXEL_VALUE,
                               _by_images(loaded, image[None])[0], rtol=0,
                               atol=PNG_TOLERANCE)


def test_an_any_size_export_records_the_shape_it_was_trained_on(any_size):
  _, path, _, _ = any_size
  assert saved_model.saved_model_image_shape(path) == MNIST_SHAPE
  denoiser = saved_model.Denoiser(path)
  assert (denoiser.image_shape, denoiser.serving_shape, denoiser.any_size) == (
      MNIST_SHAPE, (None, None, 1), True)
  assert denoiser(np.zeros((1, 40, 40, 1), np.float32)).shape == (1, 40, 40, 1)


def test_an_any_size_export_still_refuses_other_channels(any_size):
  _, _, loaded, _ = any_size
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='not compatible with expected shape'):
    loaded.signatures[saved_model.IMAGES_SIGNATURE](images=tf.zeros((1, 20, 36, 3)))


def test_the_article_architecture_keeps_its_one_size(tmp_path):
  assert not architectures.is_fully_convolutional('article')
  assert architectures.is_fully_convolutional('unet')
  model = architectures.build_model('article', 'bce', MNIST_SHAPE)
  assert architectures.any_size_model(model, 'article', 'bce') is model
  with pytest.raises(ValueError, match='^the article architecture is not fully '
                     'convolutional [^\n]*$'):
    architectures.build_model('article', 'bce', (None, None, 1))
  saved_model.export_saved_model(model, str(tmp_path / 'model'))
  loaded = tf.saved_model.load(str(tmp_path / 'model'))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='image is 20x36x1, the model takes 28x28x1'):
    _by_bytes(loaded, [tf.io.encode_png(_images(1, (20, 36, 1))[0]).numpy()])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='not compatible with expected shape'):
    loaded.signatures[saved_model.IMAGES_SIGNATURE](images=tf.zeros((1, 20, 36, 1)))
  assert saved_model.Denoiser(str(tmp_path / 'model')).any_size is False


def test_an_any_size_model_needs_its_trained_shape(tmp_path):
  model = architectures.build_model('unet', 'bce', (None, None, 1))
  with pytest.raises(ValueError, match='give trained_shape'):
    saved_model.export_saved_model(model, str(tmp_path / 'model'))
  with pytest.raises(ValueError, match=r'trained_shape \(28, 28, 3\)'):
    saved_model.export_saved_model(model, str(tmp_path / 'model'),
                                   trained_shape=(28, 28, 3))
