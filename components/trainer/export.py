"""Exports the trained model as a SavedModel with two serving signatures.

* ``serving_default``: ``images`` float32 ``[N, H, W, C]`` (noisy, [0, 1]
  scale) -> ``{'output': denoised [N, H, W, C]}``, in the shape the model was
  built for (MNIST: 28x28x1).
* ``serving_examples``: ``examples`` string ``[N]`` of serialized tf.Examples
  with a ``noisy`` float feature of H*W*C values -> ``{'output': ...}``; what
  TFMA calls.

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

from components.trainer import data

IMAGES_SIGNATURE = 'serving_default'
EXAMPLES_SIGNATURE = 'serving_examples'
OUTPUT_KEY = 'output'

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


def export_saved_model(model: keras.Model, export_dir: str) -> None:
  """Writes `model` with the two signatures to `export_dir`, for the image
  shape the model takes."""
  image_shape = tuple(int(side) for side in model.input_shape[1:])
  shape_name = 'x'.join(str(side) for side in image_shape)

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
    features = tf.io.parse_example(examples, {data.NOISY_FEATURE: (
        tf.io.FixedLenFeature([int(np.prod(image_shape))], tf.float32))})
    images = tf.reshape(features[data.NOISY_FEATURE], (-1,) + image_shape)
    return denoise(images)

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint(
      name=IMAGES_SIGNATURE, fn=denoise,
      input_signature=[tf.TensorSpec((None,) + image_shape, tf.float32,
                                     name='images')])
  archive.add_endpoint(
      name=EXAMPLES_SIGNATURE, fn=denoise_examples,
      input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
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
