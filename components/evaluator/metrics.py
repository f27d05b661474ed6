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


class _Mean(tf_keras.metrics.Metric):
  """Mean of `values(y_true, y_pred)` over everything seen (float64 sums)."""

  def __init__(self, name, **kwargs):
    super().__init__(name=name, **kwargs)
    self.total = self.add_weight('total', initializer='zeros', dtype=tf.float64)
    self.count = self.add_weight('count', initializer='zeros', dtype=tf.float64)

  def values(self, y_true, y_pred):
    """The values to average, from [N, 28, 28, 1] images."""
    raise NotImplementedError

  def update_state(self, y_true, y_pred, sample_weight=None):
    del sample_weight
    values = tf.cast(self.values(_as_images(y_true), _as_images(y_pred)),
                     tf.float64)
    self.total.assign_add(tf.reduce_sum(values))
    self.count.assign_add(tf.cast(tf.size(values), tf.float64))

  def result(self):
    return tf.math.divide_no_nan(self.total, self.count)


class MSE(_Mean):
  """Mean squared error over all pixels."""

  def __init__(self, name='mse', **kwargs):
    super().__init__(name=name, **kwargs)

  def values(self, y_true, y_pred):
    return tf.square(tf.cast(y_true, tf.float64) - tf.cast(y_pred, tf.float64))


class PSNR(MSE):
  """Headline PSNR in dB, from the mean MSE over all pixels (max value 1)."""

  def __init__(self, name='psnr', **kwargs):
    super().__init__(name=name, **kwargs)

  def result(self):
    return -10.0 * tf.math.log(super().result()) / tf.math.log(
        tf.constant(10.0, tf.float64))


class MeanImagePSNR(_Mean):
  """Mean of per-image PSNR in dB (not the headline; see PSNR)."""

  def __init__(self, name='mean_image_psnr', **kwargs):
    super().__init__(name=name, **kwargs)

  def values(self, y_true, y_pred):
    return tf.image.psnr(y_true, y_pred, max_val=1.0)


class SSIM(_Mean):
  """Mean structural similarity (tf.image.ssim defaults, max_val 1)."""

  def __init__(self, name='ssim', **kwargs):
    super().__init__(name=name, **kwargs)

  def values(self, y_true, y_pred):
    return tf.image.ssim(y_true, y_pred, max_val=1.0)


def metrics_of_arrays(clean, denoised, batch_size: int = 1000) -> dict:
  """The metrics above for whole arrays of images, outside TFMA.

  Args:
    clean: [N, 28, 28, 1] (or [N, 784]) target images in [0, 1].
    denoised: The reconstructions, same shape.
    batch_size: Images per update (bounds memory).

  Returns:
    {'mse', 'psnr', 'mean_image_psnr', 'ssim'} as floats: the same metric
    classes TFMA runs, so the figures are comparable to the pipeline's.
  """
  if len(clean) != len(denoised):
    raise ValueError(f'{len(clean)} clean images but {len(denoised)} denoised')
  instances = [MSE(), PSNR(), MeanImagePSNR(), SSIM()]
  for start in range(0, len(clean), batch_size):
    for metric in instances:
      metric.update_state(clean[start:start + batch_size],
                          denoised[start:start + batch_size])
  return {metric.name: float(metric.result()) for metric in instances}
