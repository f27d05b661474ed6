"""Classical denoisers from maintained libraries, each with one tuned parameter.

Every method maps float [N, 28, 28] noisy images to denoised ones and is
tuned by a grid search on held-out images (the PSNR from the mean MSE picks
the value). scikit-image provides Gaussian blur, median, total variation
(Chambolle) and non-local means; the `bm3d` package provides BM3D.
"""

import dataclasses
from typing import Callable, Dict, Sequence

import numpy as np

# BM3D has a fixed cost of about half a second per call whatever the image
# size, so digits are denoised in mosaics of MOSAIC_SIDE x MOSAIC_SIDE. MNIST
# digits sit on a black border of at least 2 pixels, so the blocks BM3D
# matches across a seam are mostly background.
MOSAIC_SIDE = 10


@dataclasses.dataclass(frozen=True)
class Method:
  """A denoiser with one parameter and the grid it is tuned over."""
  name: str
  parameter: str
  grid: Callable[[float], Sequence[float]]  # noise level -> candidate values
  denoise: Callable[[np.ndarray, float], np.ndarray]  # ([N,28,28], value)
  max_images: int = 0  # Evaluated on the first max_images only (0: all).


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
  from skimage import filters  # pylint: disable=g-import-not-at-top
  return filters.gaussian(images, sigma=(0, sigma, sigma), mode='nearest',
                          preserve_range=True)


def median(images: np.ndarray, size: float) -> np.ndarray:
  from skimage import filters  # pylint: disable=g-import-not-at-top
  footprint = np.ones((1, int(size), int(size)), dtype=bool)
  return filters.median(images, footprint=footprint, mode='nearest')


def total_variation(images: np.ndarray, weight: float) -> np.ndarray:
  from skimage import restoration  # pylint: disable=g-import-not-at-top
  # channel_axis=0: each image is denoised on its own.
  return restoration.denoise_tv_chambolle(images, weight=weight, channel_axis=0)


def non_local_means(images: np.ndarray, h: float) -> np.ndarray:
  from skimage import restoration  # pylint: disable=g-import-not-at-top
  return np.stack([
      restoration.denoise_nl_means(image, h=h, patch_size=5, patch_distance=6,
                                   fast_mode=True)
      for image in images])


def _mosaic(images: np.ndarray) -> np.ndarray:
  side, size = MOSAIC_SIDE, images.shape[1]
  padded = np.zeros((side * side,) + images.shape[1:], images.dtype)
  padded[:len(images)] = images
  return padded.reshape(side, side, size, size).transpose(0, 2, 1, 3).reshape(
      side * size, side * size)


def _unmosaic(mosaic: np.ndarray, count: int, size: int) -> np.ndarray:
  side = MOSAIC_SIDE
  return mosaic.reshape(side, size, side, size).transpose(0, 2, 1, 3).reshape(
      side * side, size, size)[:count]


def bm3d_denoise(images: np.ndarray, sigma_psd: float) -> np.ndarray:
  import bm3d  # pylint: disable=g-import-not-at-top
  per_mosaic = MOSAIC_SIDE * MOSAIC_SIDE
  outputs = []
  for start in range(0, len(images), per_mosaic):
    batch = images[start:start + per_mosaic]
    outputs.append(_unmosaic(bm3d.bm3d(_mosaic(batch), sigma_psd=sigma_psd),
                             len(batch), images.shape[1]))
  return np.concatenate(outputs)


def _around(level: float, factors: Sequence[float]) -> Sequence[float]:
  return [round(level * factor, 4) for factor in factors]


def methods(bm3d_images: int) -> Dict[str, Method]:
  """The classical denoisers; BM3D on the first `bm3d_images` images."""
  return {method.name: method for method in (
      Method('Gaussian blur', 'sigma (px)',
             lambda level: [0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 1.25, 1.5], gaussian_blur),
      Method('median', 'window (px)', lambda level: [3, 5], median),
      Method('total variation', 'weight',
             lambda level: _around(level, [0.15, 0.25, 0.4, 0.6, 0.8, 1.1, 1.5, 2.0]),
             total_variation),
      Method('non-local means', 'h',
             lambda level: _around(level, [0.4, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2]),
             non_local_means),
      Method('BM3D', 'sigma_psd',
             lambda level: _around(level, [0.6, 0.8, 1.0, 1.25, 1.6]),
             bm3d_denoise, max_images=bm3d_images),
  )}


def psnr_of_mean_mse(clean: np.ndarray, denoised: np.ndarray) -> float:
  """PSNR (dB) from the mean squared error over all pixels (max value 1)."""
  mse = float(np.mean((clean.astype(np.float64) - denoised) ** 2))
  return 10.0 * np.log10(1.0 / mse)


def tune(method: Method, clean: np.ndarray, noisy: np.ndarray,
         level: float) -> Dict[str, object]:
  """The grid value with the best PSNR on (clean, noisy) [N, 28, 28]."""
  scores = {value: psnr_of_mean_mse(clean, method.denoise(noisy, value))
            for value in method.grid(level)}
  best = max(scores, key=scores.get)
  return {'value': best, 'tuning_psnr': {str(value): round(score, 3)
                                         for value, score in scores.items()}}
