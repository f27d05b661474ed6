"""Exports the trained model as a SavedModel with two serving signatures.

* ``serving_default``: ``images`` float32 ``[N, 28, 28, 1]`` (noisy, [0, 1]
  scale) -> ``{'output': denoised [N, 28, 28, 1]}``.
* ``serving_examples``: ``examples`` string ``[N]`` of serialized tf.Examples
  with a ``noisy`` float feature of 784 values -> ``{'output': ...}``; what TFMA
  calls.

Shapes are checked in the graph: a wrong shape is rejected with an error,
never reshaped (signatures alone do not check shapes when called).
Non-finite inputs fail with an error naming them. No noise is in the graph:
the model only ever sees noise that the data already carries.
"""

import keras
import numpy as np
import tensorflow as tf

from components.trainer import data

IMAGES_SIGNATURE = 'serving_default'
EXAMPLES_SIGNATURE = 'serving_examples'
OUTPUT_KEY = 'output'


def export_saved_model(model: keras.Model, export_dir: str) -> None:
  """Writes `model` with the two signatures to `export_dir`."""

  def denoise(images):
    # Signatures do not check shapes at call time, and a wrong shape reaching
    # the convolutions aborts the process: check it here, as an error.
    images = tf.ensure_shape(images, (None,) + data.IMAGE_SHAPE,
                             name='images_must_be_Nx28x28x1')
    images = tf.debugging.assert_all_finite(
        images, 'input images must be finite (no NaN/inf)')
    return {OUTPUT_KEY: tf.cast(model(images, training=False), tf.float32)}

  def denoise_examples(examples):
    features = tf.io.parse_example(
        examples, {data.NOISY_FEATURE: data.FEATURE_SPEC[data.NOISY_FEATURE]})
    images = tf.reshape(features[data.NOISY_FEATURE], (-1,) + data.IMAGE_SHAPE)
    return denoise(images)

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint(
      name=IMAGES_SIGNATURE, fn=denoise,
      input_signature=[tf.TensorSpec((None,) + data.IMAGE_SHAPE, tf.float32,
                                     name='images')])
  archive.add_endpoint(
      name=EXAMPLES_SIGNATURE, fn=denoise_examples,
      input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  archive.write_out(export_dir, verbose=False)


def load_denoiser(model_dir: str):
  """A function [N, 28, 28, 1] float32 -> denoised numpy, from a SavedModel."""
  signature = tf.saved_model.load(model_dir).signatures[IMAGES_SIGNATURE]

  def denoise(images, batch_size: int = 1000):
    outputs = [
        signature(images=tf.constant(images[start:start + batch_size],
                                     tf.float32))[OUTPUT_KEY].numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros_like(images)

  return denoise
