"""Exports the trained model as a SavedModel with three serving signatures.

* ``serving_default``: ``images`` float32 ``[N, H, W, C]`` (noisy, [0, 1]
  scale) -> ``{'output': denoised [N, H, W, C]}``, in the shape the model was
  built for (MNIST: 28x28x1).
* ``serving_examples``: ``examples`` string ``[N]`` of serialized tf.Examples
  with a ``noisy`` float feature of H*W*C values -> ``{'output': ...}``; what
  TFMA calls.
* ``serving_image_bytes``: ``image_bytes`` string ``[N]`` of PNG or JPEG
  files (H x W, any colour: converted to C channels) -> ``{'denoised_bytes':
  PNG files [N]}``, the images of ``serving_default`` rounded to 8 bits. Both
  names end in ``_bytes`` because TF Serving's REST API carries a tensor whose
  name ends in ``_bytes`` as base64, ``{"b64": "..."}``, in requests and
  answers ("Output of binary values" and "Encoding binary values" in
  https://github.com/tensorflow/serving/blob/master/tensorflow_serving/g3doc/api_rest.md;
  ``kBytesTensorNameSuffix`` in tensorflow_serving/util/json_tensor.cc):
  without the suffix the PNGs would come back as raw, invalid UTF-8 strings.

Shapes are checked in the graph: a wrong shape is rejected with an error,
never reshaped (signatures alone do not check shapes when called).
Non-finite inputs fail with an error naming them, and so do inputs on the
0..255 scale (see `MAX_INPUT_PIXEL`), which the model would otherwise turn
into an all-white image. No noise is in the graph: the model only ever sees
noise that the data already carries.
"""

import keras
import numpy as np
import tensorflow as tf

from components.common import names

IMAGES_SIGNATURE = 'serving_default'
EXAMPLES_SIGNATURE = 'serving_examples'
IMAGE_BYTES_SIGNATURE = 'serving_image_bytes'
OUTPUT_KEY = 'output'
IMAGE_BYTES_INPUT_KEY = 'image_bytes'
DENOISED_BYTES_KEY = 'denoised_bytes'
# 8-bit PNG pixels: 0..MAX_PIXEL_VALUE is [0, 1].
MAX_PIXEL_VALUE = 255.0

# The highest pixel an input may have: above it, the input is on the 0..255
# scale, not [0, 1]. Noisy inputs exceed 1 by their noise, so the bound sits
# far beyond any noise: NoiseTransform's Gaussian noise is Box-Muller over
# 53-bit uniforms whose smallest draw is 2^-54, hence |noise| <=
# sqrt(-2 ln 2^-54) = 8.65 stddevs, and the config allows stddevs <= 1 (0.5
# at most for random_gaussian by default): its noisy pixels never exceed
# 1 + 8.65 = 9.65. Unbounded Gaussian noise of stddev 0.5 reaches 10 (18
# stddevs) with a probability of ~1e-72 per pixel. A 0..255 image exceeds 10
# wherever a stroke is brighter than 4% grey.
MAX_INPUT_PIXEL = 10.0
SCALE_MESSAGE = (f'input images must be on the [0, 1] scale (a pixel is above '
                 f'{MAX_INPUT_PIXEL:g}: divide 0..255 pixels by 255)')


def _shape_name(shape) -> str:
  """'28x28x1' for (28, 28, 1)."""
  return 'x'.join(str(side) for side in shape)


def _decode_image(image_bytes, image_shape: tuple):
  """One PNG/JPEG file -> uint8 [H, W, C], in the graph; a file of another
  size fails with an error naming both sizes, undecodable bytes with
  decode_image's ('Unknown image file format...')."""
  image = tf.io.decode_image(image_bytes, channels=image_shape[-1],
                             expand_animations=False)
  shape = tf.shape(image)
  # Assert, not assert_equal: its message is a tensor, so it can name the
  # image's own size.
  size_check = tf.debugging.Assert(
      tf.reduce_all(tf.equal(shape, image_shape)),
      [tf.strings.format(
          'image is {}x{}x{}, the model takes ' + _shape_name(image_shape),
          (shape[0], shape[1], shape[2]))])
  # The image flows only through the check, and only then gets its static
  # shape (tf.ensure_shape here ran before the Assert and failed with its own,
  # vaguer message).
  with tf.control_dependencies([size_check]):
    image = tf.identity(image)
  image.set_shape(image_shape)
  return image


def _decode_images(image_bytes, image_shape: tuple):
  """[N] PNG/JPEG files -> float32 [N, H, W, C] on the [0, 1] scale."""
  images = tf.map_fn(
      lambda one: _decode_image(one, image_shape), image_bytes,
      fn_output_signature=tf.TensorSpec(image_shape, tf.uint8))
  return tf.cast(images, tf.float32) / MAX_PIXEL_VALUE


def _encode_pngs(images):
  """float32 [N, H, W, C] on [0, 1] -> [N] PNG files, each pixel rounded to
  the nearest 8-bit value (a cast alone would truncate: 0.999 -> 254)."""
  pixels = tf.cast(tf.round(
      tf.clip_by_value(images, 0.0, 1.0) * MAX_PIXEL_VALUE), tf.uint8)
  return tf.map_fn(tf.io.encode_png, pixels,
                   fn_output_signature=tf.TensorSpec([], tf.string))


def export_saved_model(model: keras.Model, export_dir: str) -> None:
  """Writes `model` with the three signatures to `export_dir`, for the image
  shape the model takes."""
  image_shape = tuple(int(side) for side in model.input_shape[1:])
  shape_name = _shape_name(image_shape)

  def denoise(images):
    # Signatures do not check shapes at call time, and a wrong shape reaching
    # the convolutions aborts the process: check it here, as an error.
    images = tf.ensure_shape(images, (None,) + image_shape,
                             name=f'images_must_be_Nx{shape_name}')
    images = tf.debugging.assert_all_finite(
        images, 'input images must be finite (no NaN/inf)')
    # On the batch's maximum: the error then shows that one value, not 784N.
    with tf.control_dependencies([tf.debugging.assert_less_equal(
        tf.reduce_max(images), MAX_INPUT_PIXEL, message=SCALE_MESSAGE)]):
      images = tf.identity(images)
    return {OUTPUT_KEY: tf.cast(model(images, training=False), tf.float32)}

  def denoise_examples(examples):
    features = tf.io.parse_example(examples, {names.NOISY: (
        tf.io.FixedLenFeature([int(np.prod(image_shape))], tf.float32))})
    images = tf.reshape(features[names.NOISY], (-1,) + image_shape)
    return denoise(images)

  def denoise_image_bytes(image_bytes):
    denoised = denoise(_decode_images(image_bytes, image_shape))[OUTPUT_KEY]
    return {DENOISED_BYTES_KEY: _encode_pngs(denoised)}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint(
      name=IMAGES_SIGNATURE, fn=denoise,
      input_signature=[tf.TensorSpec((None,) + image_shape, tf.float32,
                                     name='images')])
  archive.add_endpoint(
      name=EXAMPLES_SIGNATURE, fn=denoise_examples,
      input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  archive.add_endpoint(
      name=IMAGE_BYTES_SIGNATURE, fn=denoise_image_bytes,
      input_signature=[tf.TensorSpec([None], tf.string,
                                     name=IMAGE_BYTES_INPUT_KEY)])
  archive.write_out(export_dir, verbose=False)


class Denoiser:
  """The images signature of a SavedModel as a function of numpy batches.

  The input's name and image shape are read from the signature, so a model
  of any image shape and channel count works.

  Attributes:
    image_shape: (height, width, channels) of the images the model takes.
  """

  def __init__(self, model_dir: str):
    """Loads the SavedModel; raises ValueError when it has no usable signature."""
    self._loaded = tf.saved_model.load(model_dir)  # Owns the variables.
    signatures = self._loaded.signatures
    if IMAGES_SIGNATURE not in signatures:
      raise ValueError(f'{model_dir} has no {IMAGES_SIGNATURE!r} signature '
                       f'(it has {sorted(signatures)})')
    self._signature = signatures[IMAGES_SIGNATURE]
    _, inputs = self._signature.structured_input_signature
    specs = list(inputs.items())
    if len(specs) != 1 or specs[0][1].shape.rank != 4 or not specs[0][
        1].shape[1:].is_fully_defined():
      raise ValueError(f'{model_dir}: {IMAGES_SIGNATURE!r} must take one '
                       f'[N, height, width, channels] input, not {inputs}')
    self._input_name = specs[0][0]
    self.image_shape = tuple(specs[0][1].shape[1:].as_list())
    outputs = self._signature.structured_outputs
    # This module's exports name it OUTPUT_KEY; another model's sole output.
    self._output_key = (OUTPUT_KEY if OUTPUT_KEY in outputs or len(outputs) != 1
                        else next(iter(outputs)))

  def __call__(self, images, batch_size: int = 1000) -> np.ndarray:
    """Denoised float32 numpy images, `batch_size` images per call."""
    outputs = [
        self._signature(**{self._input_name: tf.constant(
            images[start:start + batch_size], tf.float32)})[
                self._output_key].numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros_like(images)


def load_denoiser(model_dir: str) -> Denoiser:
  """A function [N, H, W, C] float32 -> denoised numpy, from a SavedModel."""
  return Denoiser(model_dir)


def saved_model_image_shape(model_dir: str) -> tuple:
  """(height, width, channels) of the images a SavedModel's serving signature
  takes (Denoiser's checks apply)."""
  return Denoiser(model_dir).image_shape
