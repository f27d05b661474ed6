"""The in-graph TFMA metrics against direct numpy / tf.image computations."""

import numpy as np
import pytest
import tensorflow as tf

from components.common import metrics


def _images(seed, count=6):
  rng = np.random.default_rng(seed)
  clean = rng.random((count, 28, 28, 1)).astype(np.float32)
  denoised = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
  return clean, denoised


def _accumulate(metric, batches):
  for clean, denoised in batches:
    metric.update_state(clean.reshape(len(clean), -1), denoised)  # flat labels
  return float(metric.result())


def test_metrics_accumulated_over_batches_match_direct_computations():
  batches = [_images(1), _images(2, count=3)]
  clean = np.concatenate([batch[0] for batch in batches])
  denoised = np.concatenate([batch[1] for batch in batches])
  mse = np.mean((clean.astype(np.float64) - denoised) ** 2)
  assert _accumulate(metrics.MSE(), batches) == pytest.approx(mse, rel=1e-6)
  assert _accumulate(metrics.PSNR(), batches) == pytest.approx(
      10 * np.log10(1 / mse), rel=1e-6)
  per_image = tf.image.psnr(clean, denoised, max_val=1.0).numpy()
  assert _accumulate(metrics.MeanImagePSNR(), batches) == pytest.approx(
      per_image.mean(), rel=1e-5)
  ssim = tf.image.ssim(clean, denoised, max_val=1.0).numpy()
  assert _accumulate(metrics.SSIM(), batches) == pytest.approx(ssim.mean(), rel=1e-5)


def test_ssim_is_tf_image_ssim_image_by_image():
  rng = np.random.default_rng(11)
  clean = rng.random((64, 28, 28, 1)).astype(np.float32)
  clean[0] = 0.0  # Flat images: the constants c1, c2 carry the result.
  clean[1] = 1.0
  noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1).astype(np.float32)
  noisy[2] = clean[2]  # Identical images: SSIM 1.
  expected = tf.image.ssim(clean, noisy, max_val=1.0).numpy()
  # Both in float32: the variance terms (E[x^2] - E[x]^2) cancel, on the flat
  # white image most (differences up to ~4e-5 there, ~1e-7 elsewhere).
  assert np.abs(metrics.ssim(clean, noisy).numpy() - expected).max() < 1e-4
  assert np.abs(metrics.ssim(clean[2:], noisy[2:]).numpy() - expected[2:]).max() < 1e-6
  assert metrics.ssim(clean, noisy).numpy()[2] == pytest.approx(1.0)
  three_channels = rng.random((4, 20, 33, 3)).astype(np.float32)
  other = rng.random((4, 20, 33, 3)).astype(np.float32)
  assert np.abs(metrics.ssim(three_channels, other).numpy() - tf.image.ssim(
      three_channels, other, max_val=1.0).numpy()).max() < 1e-6
  with pytest.raises(ValueError, match='smaller than the 11-pixel SSIM window'):
    metrics.ssim(clean[:, :10, :10], noisy[:, :10, :10])


def test_headline_psnr_differs_from_the_mean_of_per_image_psnr():
  clean = np.zeros((2, 28, 28, 1), np.float32)
  denoised = clean.copy()
  denoised[0] += 0.01
  denoised[1] += 0.3
  headline = _accumulate(metrics.PSNR(), [(clean, denoised)])
  mean_image = _accumulate(metrics.MeanImagePSNR(), [(clean, denoised)])
  assert headline == pytest.approx(10 * np.log10(1 / ((0.01**2 + 0.3**2) / 2)), rel=1e-5)
  assert mean_image > headline + 5


def test_metric_names_are_the_ones_thresholds_use():
  assert [metric().name for metric in (metrics.MSE, metrics.PSNR,
                                       metrics.MeanImagePSNR, metrics.SSIM)] == [
      'mse', 'psnr', 'mean_image_psnr', 'ssim']


def test_metrics_of_colour_images_of_any_size_match_tf_image():
  rng = np.random.default_rng(3)
  clean = rng.uniform(size=(5, 20, 17, 3)).astype(np.float32)
  denoised = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
  values = metrics.metrics_of_arrays(clean, denoised, batch_size=2)
  mse = float(np.mean((clean.astype(np.float64) - denoised) ** 2))
  assert values['mse'] == pytest.approx(mse, rel=1e-6)
  assert values['psnr'] == pytest.approx(-10 * np.log10(mse), rel=1e-6)
  assert values['ssim'] == pytest.approx(
      float(tf.reduce_mean(tf.image.ssim(clean, denoised, max_val=1.0))), abs=1e-5)
  # Labels arrive flat from TFMA: reshaped to the predictions' shape.
  metric = metrics.SSIM()
  metric.update_state(clean.reshape(5, -1), denoised)
  assert float(metric.result()) == pytest.approx(values['ssim'], abs=1e-6)


def test_with_its_image_shape_a_metric_takes_tfma_s_squeezed_predictions():
  # TFMA squeezes the predictions' axes of size 1 (a grey image's channel):
  # the EvalConfig tells each metric the images' shape.
  rng = np.random.default_rng(4)
  clean = rng.uniform(size=(3, 20, 17, 1)).astype(np.float32)
  denoised = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
  expected = metrics.metrics_of_arrays(clean, denoised)
  for metric_class in (metrics.MSE, metrics.PSNR, metrics.MeanImagePSNR, metrics.SSIM):
    metric = metric_class(image_shape=(20, 17, 1))
    metric.update_state(clean.reshape(3, -1), denoised[..., 0])
    assert float(metric.result()) == pytest.approx(expected[metric.name], rel=1e-6)
    assert metric_class.from_config(metric.get_config()).image_shape == (20, 17, 1)
