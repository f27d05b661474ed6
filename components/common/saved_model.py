"""Exports the trained model as a SavedModel with three serving signatures.

H x W x C is the shape the model was trained on (MNIST: 28x28x1), recorded in
the SavedModel (`TRAINED_SHAPE_COLLECTION`; `saved_model_image_shape` reads
it). A model that takes images of any height and width (a fully
convolutional architecture, exported by the Trainer as
architectures.any_size_model builds it: padding to its poolings' multiple
happens in the graph) serves any size in the first and last signature; any
other model serves H x W only.

* ``serving_default``: ``images`` float32 ``[N, h, w, C]`` (noisy, [0, 1]
  scale) -> ``{'output': denoised [N, h, w, C]}``; h x w is any size or H x W.
* ``serving_examples``: ``examples`` string ``[N]`` of serialized tf.Examples
  with a ``noisy`` float feature of H*W*C values -> ``{'output': ...}``; what
  TFMA calls, always at the trained shape.
* ``serving_image_bytes``: ``image_bytes`` string ``[N]`` of PNG or JPEG
  files (any colour: converted to C channels; each of any size, or H x W) ->
  ``{'denoised_bytes': PNG files [N]}``, each the size of its input: the
  images of ``serving_default`` rounded to 8 bits. Files of one size are
  denoised as one batch, of mixed sizes one at a time. Both
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


# The variable collection that records the (height, width, channels) the
# model was trained on, which its serving signatures may no longer tell.
TRAINED_SHAPE_COLLECTION = 'trained_image_shape'


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


def _encode_png(image):
  """float32 [H, W, C] on [0, 1] -> a PNG file, each pixel rounded to the
  nearest 8-bit value (a cast alone would truncate: 0.999 -> 254)."""
  return tf.io.encode_png(tf.cast(tf.round(
      tf.clip_by_value(image, 0.0, 1.0) * MAX_PIXEL_VALUE), tf.uint8))


def _encode_pngs(images):
  """float32 [N, H, W, C] on [0, 1] -> [N] PNG files (see `_encode_png`)."""
  return tf.map_fn(_encode_png, images,
                   fn_output_signature=tf.TensorSpec([], tf.string))


def _denoise_files_of_any_size(image_bytes, channels: int, denoise):
  """[N] PNG/JPEG files of any sizes -> [N] PNGs of the same sizes.

  Decoded once each; a batch of one size (the usual case) goes through the
  model at once, a batch of mixed sizes one image at a time.
  """
  def decode(one):
    image = tf.io.decode_image(one, channels=channels, expand_animations=False)
    shape = tf.shape(image)
    # Stacked anew: TensorFlow's type inference warns of a shape tensor
    # written to map_fn's list of plain int32 tensors.
    return tf.reshape(image, [-1]), tf.stack([shape[0], shape[1], shape[2]])

  flat, shapes = tf.map_fn(decode, image_bytes, fn_output_signature=(
      tf.RaggedTensorSpec([None], tf.uint8, ragged_rank=0),
      tf.TensorSpec([3], tf.int32)))
  count = tf.shape(image_bytes)[0]
  one_size = tf.logical_and(count > 0, tf.reduce_all(
      tf.equal(shapes, shapes[:1])))

  def as_batch():
    images = tf.reshape(flat.flat_values,
                        tf.concat([[count], shapes[0]], axis=0))
    return _encode_pngs(denoise(tf.cast(images, tf.float32) / MAX_PIXEL_VALUE))

  def one_by_one():
    def one(index):
      image = tf.reshape(flat[index], shapes[index])
      return _encode_png(denoise(
          tf.cast(image[tf.newaxis], tf.float32) / MAX_PIXEL_VALUE)[0])
    return tf.map_fn(one, tf.range(count),
                     fn_output_signature=tf.TensorSpec([], tf.string))

  return tf.cond(one_size, as_batch, one_by_one)


def export_saved_model(model: keras.Model, export_dir: str,
                       trained_shape=None) -> None:
  """Writes `model` with the three signatures to `export_dir`.

  Args:
    model: The model to serve. When it takes images of any height and width
      (input shape [N, None, None, C], see architectures.any_size_model),
      `serving_default` and `serving_image_bytes` take any size too.
    export_dir: The SavedModel directory.
    trained_shape: (height, width, channels) the model was trained on: what
      `serving_examples` takes and `saved_model_image_shape` reports. Needed
      for a model of any size; else the model's input shape.

  Raises:
    ValueError: a model of any size without `trained_shape`, or a
      `trained_shape` that the model does not take.
  """
  served_shape = tuple(None if side is None else int(side)
                       for side in model.input_shape[1:])
  any_size = None in served_shape
  if trained_shape is None and any_size:
    raise ValueError(f'the model takes images of any size {served_shape}: '
                     'give trained_shape, the (height, width, channels) it '
                     'was trained on')
  trained_shape = tuple(served_shape if trained_shape is None else trained_shape)
  if None in trained_shape or not tf.TensorShape(
      served_shape).is_compatible_with(trained_shape):
    raise ValueError(f'trained_shape {trained_shape}: the model takes '
                     f'{served_shape}')
  trained_shape = tuple(int(side) for side in trained_shape)
  shape_name = _shape_name(side or letter
                           for side, letter in zip(served_shape, 'HWC'))

  def denoise(images):
    # Signatures do not check shapes at call time, and a wrong shape reaching
    # the convolutions aborts the process: check it here, as an error.
    images = tf.ensure_shape(images, (None,) + served_shape,
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
        tf.io.FixedLenFeature([int(np.prod(trained_shape))], tf.float32))})
    images = tf.reshape(features[names.NOISY], (-1,) + trained_shape)
    return denoise(images)

  def denoise_image_bytes(image_bytes):
    if any_size:
      return {DENOISED_BYTES_KEY: _denoise_files_of_any_size(
          image_bytes, served_shape[-1],
          lambda images: denoise(images)[OUTPUT_KEY])}
    denoised = denoise(_decode_images(image_bytes, served_shape))[OUTPUT_KEY]
    return {DENOISED_BYTES_KEY: _encode_pngs(denoised)}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint(
      name=IMAGES_SIGNATURE, fn=denoise,
      input_signature=[tf.TensorSpec((None,) + served_shape, tf.float32,
                                     name='images')])
  archive.add_endpoint(
      name=EXAMPLES_SIGNATURE, fn=denoise_examples,
      input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  archive.add_endpoint(
      name=IMAGE_BYTES_SIGNATURE, fn=denoise_image_bytes,
      input_signature=[tf.TensorSpec([None], tf.string,
                                     name=IMAGE_BYTES_INPUT_KEY)])
  archive.add_variable_collection(TRAINED_SHAPE_COLLECTION, [keras.Variable(
      list(trained_shape), dtype='int32', trainable=False,
      name=TRAINED_SHAPE_COLLECTION)])
  archive.write_out(export_dir, verbose=False)


class Denoiser:
  """The images signature of a SavedModel as a function of numpy batches.

  The input's name and image shape are read from the signature, so a model
  of any image shape and channel count works.

  Attributes:
    image_shape: (height, width, channels) of the images the model was
      trained on (recorded by `export_saved_model`; for a SavedModel without
      that record, the signature's shape).
    serving_shape: (height, width, channels) of the images the signature
      takes: height and width are None when it takes any size.
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
    if len(specs) != 1 or specs[0][1].shape.rank != 4 or specs[0][1].shape[
        -1] is None:
      raise ValueError(f'{model_dir}: {IMAGES_SIGNATURE!r} must take one '
                       f'[N, height, width, channels] input, not {inputs}')
    self._input_name = specs[0][0]
    self.serving_shape = tuple(specs[0][1].shape[1:].as_list())
    self.image_shape = _trained_shape(self._loaded, self.serving_shape, model_dir)
    outputs = self._signature.structured_outputs
    # This module's exports name it OUTPUT_KEY; another model's sole output.
    self._output_key = (OUTPUT_KEY if OUTPUT_KEY in outputs or len(outputs) != 1
                        else next(iter(outputs)))

  @property
  def any_size(self) -> bool:
    """Whether the model takes images of any height and width."""
    return None in self.serving_shape

  def __call__(self, images, batch_size: int = 1000) -> np.ndarray:
    """Denoised float32 numpy images, `batch_size` images per call."""
    outputs = [
        self._signature(**{self._input_name: tf.constant(
            images[start:start + batch_size], tf.float32)})[
                self._output_key].numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros_like(images)


def _trained_shape(loaded, serving_shape: tuple, model_dir: str) -> tuple:
  """The (height, width, channels) recorded at export, else `serving_shape`
  (a SavedModel exported before the record, which serves that size only).

  Raises:
    ValueError: neither tells the shape.
  """
  recorded = getattr(loaded, TRAINED_SHAPE_COLLECTION, None)
  if recorded:
    return tuple(int(side) for side in recorded[0].numpy())
  if None in serving_shape:
    raise ValueError(f'{model_dir}: {IMAGES_SIGNATURE!r} takes any size and the '
                     f'SavedModel records no {TRAINED_SHAPE_COLLECTION!r}')
  return serving_shape


def load_denoiser(model_dir: str) -> Denoiser:
  """A function [N, H, W, C] float32 -> denoised numpy, from a SavedModel."""
  return Denoiser(model_dir)


def saved_model_image_shape(model_dir: str) -> tuple:
  """(height, width, channels) of the images a SavedModel was trained on
  (Denoiser.image_shape; Denoiser's checks apply)."""
  return Denoiser(model_dir).image_shape
