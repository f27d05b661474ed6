"""Reconstruction metrics computed in-graph, as tf_keras metrics TFMA can load.

TFMA (0.52 too) loads a custom metric as a tf_keras (Keras 2) class only
(metrics/metric_specs.py, ``to_computations``): these subclass
``tf_keras.metrics.Metric``; a Keras 3 metric has no ``computations`` there. Labels arrive as
the flattened ``clean`` feature (H*W*C values) and are reshaped to the
predictions' image shape, so any image size works.

* ``mse``: mean squared error over every pixel of the split.
* ``psnr``: the headline PSNR, ``10 * log10(1 / mse)`` from that mean MSE
  (pixels in [0, 1]); the thresholds and the verdict use this one.
* ``mean_image_psnr``: the mean of per-image PSNR (``tf.image.psnr``).
* ``ssim``: mean of per-image SSIM as ``tf.image.ssim`` defines it (11x11
  Gaussian window, sigma 1.5, k1 0.01, k2 0.03), max_val 1; computed with the
  window as two matrix products (see `ssim`).
"""

import numpy as np
import tensorflow as tf
import tf_keras

from components.common import dataset_info

METRICS_MODULE = __name__


def _as_images(labels, predictions, image_shape=None):
  """(labels, predictions) as float32 [N, H, W, C] images.

  TFMA hands over the labels flat (the `clean` feature) and the predictions
  with their axes of size 1 squeezed (a grey image's channel, a batch of
  one), so the metric is told its `image_shape` in the EvalConfig. Without
  one (arrays outside TFMA) the predictions' own shape is the images'.
  """
  predictions = tf.cast(predictions, tf.float32)
  labels = tf.cast(labels, tf.float32)
  if image_shape is not None:
    shape = (-1,) + tuple(image_shape)
    return tf.reshape(labels, shape), tf.reshape(predictions, shape)
  labels = tf.reshape(labels, tf.shape(predictions))
  # The static shape too: SSIM's window is built from the image sides.
  return tf.ensure_shape(labels, predictions.shape), predictions


class _Mean(tf_keras.metrics.Metric):
  """Mean of `values(y_true, y_pred)` over everything seen (float64 sums).

  Args:
    name: The metric's name.
    image_shape: (height, width, channels) of the images; None: the shape of
      the predictions as given (see `_as_images`).
  """

  def __init__(self, name, image_shape=None, **kwargs):
    super().__init__(name=name, **kwargs)
    self.image_shape = tuple(image_shape) if image_shape is not None else None
    self.total = self.add_weight('total', initializer='zeros', dtype=tf.float64)
    self.count = self.add_weight('count', initializer='zeros', dtype=tf.float64)

  def get_config(self):
    config = super().get_config()
    if self.image_shape is not None:
      config['image_shape'] = list(self.image_shape)
    return config

  def values(self, y_true, y_pred):
    """The values to average, from [N, H, W, C] images."""
    raise NotImplementedError

  def update_state(self, y_true, y_pred, sample_weight=None):
    del sample_weight
    values = tf.cast(self.values(*_as_images(y_true, y_pred, self.image_shape)),
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


# tf.image.ssim's defaults (the window is why images have a smallest side).
SSIM_FILTER_SIZE = dataset_info.MIN_SIDE
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_window_matrix(length: int, filter_size: int = SSIM_FILTER_SIZE,
                           sigma: float = SSIM_FILTER_SIGMA) -> np.ndarray:
  """The [length - filter_size + 1, length] matrix whose product with a
  vector is that vector filtered by a normalised 1-D Gaussian ('VALID').

  tf.image.ssim's 2-D window is the normalised exp(-(x^2 + y^2) / 2 sigma^2),
  the outer product of two such 1-D windows, so filtering an image with it is
  `G_rows @ image @ G_columns^T`.
  """
  if length < filter_size:
    raise ValueError(f'images of side {length} are smaller than the '
                     f'{filter_size}-pixel SSIM window')
  coordinates = np.arange(filter_size, dtype=np.float64) - (filter_size - 1) / 2
  window = np.exp(-coordinates**2 / (2 * sigma**2))
  window /= window.sum()
  matrix = np.zeros((length - filter_size + 1, length), np.float32)
  for row in range(len(matrix)):
    matrix[row, row:row + filter_size] = window
  return matrix


def ssim(images_a: tf.Tensor, images_b: tf.Tensor, max_val: float = 1.0) -> tf.Tensor:
  """Per-image SSIM of [N, H, W, C] float32 images, as `tf.image.ssim` with
  its defaults computes it (tested to agree within 1e-6 per image; 1e-4
  on a flat white image, where both lose float32 digits to cancellation).

  `tf.image.ssim` filters with an 11x11 depthwise convolution, which TF's CPU
  kernels run slowly (most of the Evaluator's TFMA time); the same Gaussian
  as two batched matrix products is many times faster on a CPU.
  """
  rows = tf.constant(gaussian_window_matrix(images_a.shape[1]))
  columns = tf.constant(gaussian_window_matrix(images_a.shape[2]))

  def blur(images):
    return tf.einsum('ij,njkc,lk->nilc', rows, images, columns)

  c1 = (SSIM_K1 * max_val)**2
  c2 = (SSIM_K2 * max_val)**2
  # tf.image.ssim's _ssim_helper, term for term.
  mean_a, mean_b = blur(images_a), blur(images_b)
  num0 = mean_a * mean_b * 2.0
  den0 = tf.square(mean_a) + tf.square(mean_b)
  luminance = (num0 + c1) / (den0 + c1)
  num1 = blur(images_a * images_b) * 2.0
  den1 = blur(tf.square(images_a) + tf.square(images_b))
  contrast_structure = (num1 - num0 + c2) / (den1 - den0 + c2)
  return tf.reduce_mean(luminance * contrast_structure, axis=[-3, -2, -1])


class SSIM(_Mean):
  """Mean structural similarity (tf.image.ssim's definition, max_val 1)."""

  def __init__(self, name='ssim', **kwargs):
    super().__init__(name=name, **kwargs)

  def values(self, y_true, y_pred):
    return ssim(y_true, y_pred, max_val=1.0)


def metrics_of_arrays(clean, denoised, batch_size: int = 1000) -> dict:
  """The metrics above for whole arrays of images, outside TFMA.

  Args:
    clean: [N, H, W, C] target images in [0, 1].
    denoised: The reconstructions, same shape.
    batch_size: Images per update (bounds memory).

  Returns:
    {'mse', 'psnr', 'mean_image_psnr', 'ssim'} as floats: the same metric
    classes TFMA runs, so the figures are comparable to the pipeline's.
  """
  if len(clean) != len(denoised):
    raise ValueError(f'{len(clean)} clean images but {len(denoised)} denoised')
  image_shape = np.shape(clean)[1:]
  instances = [metric(image_shape=image_shape)
               for metric in (MSE, PSNR, MeanImagePSNR, SSIM)]
  for start in range(0, len(clean), batch_size):
    for metric in instances:
      metric.update_state(clean[start:start + batch_size],
                          denoised[start:start + batch_size])
  return {metric.name: float(metric.result()) for metric in instances}
