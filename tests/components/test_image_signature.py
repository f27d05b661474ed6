"""The exported SavedModel's image-file signature: PNG/JPEG in, PNG out."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common import saved_model
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
