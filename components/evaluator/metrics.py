"""Reconstruction metrics computed in-graph, as tf_keras metrics TFMA can load.

TFMA 0.47 runs tf_keras (Keras 2) metrics: these subclass
``tf_keras.metrics.Metric`` (a Keras 3 metric is refused). Labels arrive as
the flattened 784-value ``clean`` feature and are reshaped to images.

* ``mse``: mean squared error over every pixel of the split.
* ``psnr``: the headline PSNR, ``10 * log10(1 / mse)`` from that mean MSE
  (pixels in [0, 1]); thresholds and the README use this one.
* ``mean_image_psnr``: the mean of per-image PSNR (``tf.image.psnr``).
* ``ssim``: mean of per-image ``tf.image.ssim`` (defaults: 11x11 Gaussian
  window, sigma 1.5), max_val 1.
"""

import tensorflow as tf
import tf_keras

from components import features

IMAGE_SHAPE = features.IMAGE_SHAPE
METRICS_MODULE = __name__


def _as_images(tensor):
  return tf.reshape(tf.cast(tensor, tf.float32), (-1,) + IMAGE_SHAPE)


class _MeanOverPixels(tf_keras.metrics.Metric):
  """Accumulates the squared error and the number of pixels."""

  def __init__(self, name, **kwargs):
    super().__init__(name=name, **kwargs)
    self.squared_error = self.add_weight('squared_error', initializer='zeros',
                                         dtype=tf.float64)
    self.pixels = self.add_weight('pixels', initializer='zeros', dtype=tf.float64)

  def update_state(self, y_true, y_pred, sample_weight=None):
    del sample_weight
    error = tf.cast(_as_images(y_true) - _as_images(y_pred), tf.float64)
    self.squared_error.assign_add(tf.reduce_sum(tf.square(error)))
    self.pixels.assign_add(tf.cast(tf.size(error), tf.float64))

  def _mse(self):
    return tf.math.divide_no_nan(self.squared_error, self.pixels)


class MSE(_MeanOverPixels):
  """Mean squared error over all pixels."""

  def __init__(self, name='mse', **kwargs):
    super().__init__(name=name, **kwargs)

  def result(self):
    return self._mse()


class PSNR(_MeanOverPixels):
  """Headline PSNR in dB, from the mean MSE over all pixels (max value 1)."""

  def __init__(self, name='psnr', **kwargs):
    super().__init__(name=name, **kwargs)

  def result(self):
    return -10.0 * tf.math.log(self._mse()) / tf.math.log(tf.constant(10.0, tf.float64))


class _MeanOverImages(tf_keras.metrics.Metric):
  """Mean of a per-image score."""

  def __init__(self, name, **kwargs):
    super().__init__(name=name, **kwargs)
    self.total = self.add_weight('total', initializer='zeros', dtype=tf.float64)
    self.images = self.add_weight('images', initializer='zeros', dtype=tf.float64)

  def score(self, y_true, y_pred):
    raise NotImplementedError

  def update_state(self, y_true, y_pred, sample_weight=None):
    del sample_weight
    scores = tf.cast(self.score(_as_images(y_true), _as_images(y_pred)), tf.float64)
    self.total.assign_add(tf.reduce_sum(scores))
    self.images.assign_add(tf.cast(tf.size(scores), tf.float64))

  def result(self):
    return tf.math.divide_no_nan(self.total, self.images)


class MeanImagePSNR(_MeanOverImages):
  """Mean of per-image PSNR in dB (not the headline; see PSNR)."""

  def __init__(self, name='mean_image_psnr', **kwargs):
    super().__init__(name=name, **kwargs)

  def score(self, y_true, y_pred):
    return tf.image.psnr(y_true, y_pred, max_val=1.0)


class SSIM(_MeanOverImages):
  """Mean structural similarity (tf.image.ssim defaults, max_val 1)."""

  def __init__(self, name='ssim', **kwargs):
    super().__init__(name=name, **kwargs)

  def score(self, y_true, y_pred):
    return tf.image.ssim(y_true, y_pred, max_val=1.0)
