"""Keras callbacks of the Trainer beyond Keras's own."""

import keras
import numpy as np
import tensorflow as tf

# Subdirectory of the TensorBoard log dir with the per-epoch images.
IMAGES_SUBDIR = 'images'
IMAGES_TAG = 'denoised'


def image_strip(noisy: np.ndarray, denoised: np.ndarray,
                clean: np.ndarray) -> np.ndarray:
  """One picture per example: noisy | denoised | clean side by side.

  Args:
    noisy, denoised, clean: float [count, height, width, channels].

  Returns:
    float32 [count, height, 3 x width, channels], values clipped to [0, 1] for display.
  """
  strip = np.concatenate([noisy, denoised, clean], axis=2).astype(np.float32)
  return np.clip(strip, 0.0, 1.0)


class DenoisedImages(keras.callbacks.Callback):
  """Writes a few denoised images per epoch to TensorBoard (Images tab).

  Args:
    log_dir: The TensorBoard log dir (images go to `<log_dir>/images`).
    noisy: float32 [count, height, width, channels]: fixed held-out noisy inputs.
    clean: float32 [count, height, width, channels]: their clean originals.
  """

  def __init__(self, log_dir: str, noisy: np.ndarray, clean: np.ndarray):
    super().__init__()
    self._log_dir = f'{log_dir.rstrip("/")}/{IMAGES_SUBDIR}'
    self._noisy = noisy
    self._clean = clean
    self._writer = None

  def on_train_begin(self, logs=None):
    self._writer = tf.summary.create_file_writer(self._log_dir)

  def on_epoch_end(self, epoch, logs=None):
    denoised = self.model.predict(self._noisy, verbose=0)
    with self._writer.as_default():
      tf.summary.image(IMAGES_TAG, image_strip(self._noisy, denoised, self._clean),
                       step=epoch + 1, max_outputs=len(self._noisy))
    self._writer.flush()

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.close()
