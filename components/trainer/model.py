"""The denoising autoencoders (Keras 3, Functional API): noisy in, clean out.

The architectures are registered by name in architectures.py (whose
build_model builds them), built by the functions here:

* ``unet``: a small fully convolutional U-Net. Two stride-2 levels with skip
  connections keep stroke positions exact, which a bottleneck-only
  autoencoder blurs.
* ``unet_large``: the same U-Net, wider and batch-normalised, for training on
  an accelerator.
* ``article``: the article's design with its bugs fixed: two conv + pool
  blocks, *flatten* before the 128-unit latent Dense layer (the article applied
  Dense to a 4-D feature map), a mirrored decoder and an output head.

All map ``[N, H, W, C]`` float images in [0, 1] scale to the same shape,
in float32 also under mixed precision, for any image size: an input whose
sides are not multiples of the two pooling levels' 4 is zero-padded to the
next multiple and the output cropped back (no layers are added where no
padding is needed). The U-Nets can also be built for images of any height
and width (image_shape (None, None, C)): the padding then happens when the
graph runs (`PadToPooling`, `CropToInput`), split as for a fixed size, so the
same weights give the same output at the trained size; that is the model the
Trainer exports (architectures.any_size_model). The article's Dense latent
fixes its size. The output head follows the loss (`output_head`): a
sigmoid for binary cross-entropy; for the regression losses (MSE, L1) a
linear output clipped to [0, 1] with a straight-through gradient
(`StraightThroughClip`). A sigmoid trained on MSE or L1 collapses to a black
image: its gradient is scaled by the sigmoid's slope, which vanishes there;
cross-entropy's gradient has no such factor.
"""

import dataclasses
from typing import Optional, Sequence, Tuple

import keras
import tensorflow as tf

from components.common import names

LOSSES = names.LOSSES
LR_SCHEDULES = names.LR_SCHEDULES
UPSAMPLINGS = ('transpose', 'bilinear')
# The cosine schedule ends at this fraction of the peak learning rate.
COSINE_FINAL_FRACTION = 0.02


@dataclasses.dataclass(frozen=True)
class UNetSpec:
  """The shape of a two-level U-Net.

  Attributes:
    widths: Channels at 28x28, 14x14 and 7x7 (the bottleneck).
    convs_per_block: 3x3 convolutions in each encoder, bottleneck and decoder
      block.
    batch_norm: Batch normalisation after each convolution, before its ReLU
      (the convolution then has no bias).
    upsampling: 'transpose' (2x2 stride-2 transposed convolution) or
      'bilinear' (bilinear resize, then a 3x3 convolution).
  """
  widths: Tuple[int, int, int] = (32, 64, 64)
  convs_per_block: int = 2
  batch_norm: bool = False
  upsampling: str = 'transpose'


# The default, sized for training on CPUs.
UNET = UNetSpec()
# For accelerators: 2-4x the channels and three batch-normalised convolutions
# per block (bench/recipes.py counts their arithmetic).
UNET_LARGE = UNetSpec(widths=(64, 128, 256), convs_per_block=3, batch_norm=True)
UNET_SPECS = {'unet': UNET, 'unet_large': UNET_LARGE}
# Both architectures pool twice by 2: their inputs' sides are padded to a
# multiple of this.
POOLING_FACTOR = 4
# Output heads (see `output_head`).
SIGMOID_HEAD, CLIP_HEAD = 'sigmoid', 'clip'


def output_head(loss: str) -> str:
  """The output head a loss trains: 'sigmoid' for binary cross-entropy (a
  probability per pixel), 'clip' for the regression losses (MSE, L1)."""
  if loss not in LOSSES:
    raise ValueError(f'unknown loss {loss!r}; one of {LOSSES}')
  return SIGMOID_HEAD if loss == 'bce' else CLIP_HEAD


@keras.saving.register_keras_serializable(package='mnist_dae')
class StraightThroughClip(keras.layers.Layer):
  """Clips to [0, 1] on the way forward; passes the gradient unchanged.

  The straight-through estimator: the forward value is a valid image, and a
  pixel pushed outside [0, 1] still receives its loss's gradient (a plain
  clip would give it none, and a pixel stuck at 0 whose target is 1 would
  never move).
  """

  def call(self, inputs):
    clipped = keras.ops.clip(inputs, 0.0, 1.0)
    return inputs + keras.ops.stop_gradient(clipped - inputs)


def _padding(image_shape: Sequence[int]):
  """((top, bottom), (left, right)) zeros that make the sides multiples of
  POOLING_FACTOR; None when they are already."""
  extra = [-side % POOLING_FACTOR for side in image_shape[:2]]
  if not any(extra):
    return None
  return tuple((pad // 2, pad - pad // 2) for pad in extra)


def _any_size(image_shape: Sequence[int]) -> bool:
  """Whether a model is built for images of any height and width (a side is
  None), rather than for one size."""
  return any(side is None for side in image_shape[:2])


def _dynamic_padding(height, width):
  """`_padding` for sides known only when the graph runs: int32 [4, 2] (batch,
  height, width, channels), as tf.pad takes it."""
  extra = [(POOLING_FACTOR - side % POOLING_FACTOR) % POOLING_FACTOR
           for side in (height, width)]
  zero = tf.constant([0, 0])
  return tf.stack([zero] + [tf.stack([pad // 2, pad - pad // 2])
                            for pad in extra] + [zero])


@keras.saving.register_keras_serializable(package='mnist_dae')
class PadToPooling(keras.layers.Layer):
  """Zero-pads the sides to multiples of POOLING_FACTOR, split as `_padding`
  splits them, for sides known only when the graph runs (ZeroPadding2D's
  padding is fixed when the model is built)."""

  def call(self, inputs):
    shape = tf.shape(inputs)
    return tf.pad(inputs, _dynamic_padding(shape[1], shape[2]))

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:1]) + tuple(
        None if side is None else side + (-side % POOLING_FACTOR)
        for side in input_shape[1:3]) + tuple(input_shape[3:])


@keras.saving.register_keras_serializable(package='mnist_dae')
class CropToInput(keras.layers.Layer):
  """Crops the padding of PadToPooling off: [padded, original] -> padded
  cropped to the original's height and width."""

  def call(self, inputs):
    padded, original = inputs
    shape = tf.shape(original)
    padding = _dynamic_padding(shape[1], shape[2])
    return padded[:, padding[1, 0]:padding[1, 0] + shape[1],
                  padding[2, 0]:padding[2, 0] + shape[2], :]

  def compute_output_shape(self, input_shape):
    padded, original = input_shape
    return tuple(original[:3]) + tuple(padded[3:])


def _input_and_padded(image_shape: Sequence[int]):
  """(the model's input, that input padded as `_padding` says)."""
  noisy_images = keras.Input(shape=tuple(image_shape), name='noisy_images')
  if _any_size(image_shape):
    return noisy_images, PadToPooling(name='pad_to_pooling')(noisy_images)
  padding = _padding(image_shape)
  if padding is None:
    return noisy_images, noisy_images
  return noisy_images, keras.layers.ZeroPadding2D(
      padding, name='pad_to_pooling')(noisy_images)


def _cropped(tensor, noisy_images, image_shape: Sequence[int]):
  """`tensor` with the padding of `_input_and_padded` cropped off."""
  if _any_size(image_shape):
    return CropToInput(name='crop_padding')([tensor, noisy_images])
  padding = _padding(image_shape)
  if padding is None:
    return tensor
  return keras.layers.Cropping2D(padding, name='crop_padding')(tensor)


def _clean_images(tensor, kernel_size: int, loss: str, channels: int):
  """The float32 output layer(s) of the head `output_head(loss)` chooses."""
  head = output_head(loss)
  activation = 'sigmoid' if head == SIGMOID_HEAD else None
  tensor = keras.layers.Conv2D(channels, kernel_size, padding='same',
                               activation=activation, dtype='float32',
                               name='clean_images')(tensor)
  if head == CLIP_HEAD:
    tensor = StraightThroughClip(dtype='float32',
                                 name='clean_images_clipped')(tensor)
  return tensor


def head_of(model: keras.Model) -> Optional[str]:
  """The output head of a model (see `output_head`); None when its last
  layer is neither (a model not built here)."""
  last = model.layers[-1]
  if isinstance(last, StraightThroughClip):
    return CLIP_HEAD
  if getattr(last, 'activation', None) is keras.activations.sigmoid:
    return SIGMOID_HEAD
  return None


def _conv_block(tensor, filters: int, name: str, spec: UNetSpec):
  """`spec.convs_per_block` 3x3 convolutions with ReLU (batch-normalised
  before the ReLU when `spec.batch_norm`)."""
  for index in range(1, spec.convs_per_block + 1):
    layer_name = f'{name}_conv{index}'
    if spec.batch_norm:
      tensor = keras.layers.Conv2D(filters, 3, padding='same', use_bias=False,
                                   name=layer_name)(tensor)
      tensor = keras.layers.BatchNormalization(name=f'{layer_name}_norm')(tensor)
      tensor = keras.layers.ReLU(name=f'{layer_name}_relu')(tensor)
    else:
      tensor = keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                                   name=layer_name)(tensor)
  return tensor


def _upsample(tensor, filters: int, name: str, spec: UNetSpec):
  """Doubles the height and width (see UNetSpec.upsampling)."""
  if spec.upsampling == 'transpose':
    return keras.layers.Conv2DTranspose(filters, 2, strides=2,
                                        name=f'{name}_up')(tensor)
  if spec.upsampling == 'bilinear':
    tensor = keras.layers.UpSampling2D(2, interpolation='bilinear',
                                       name=f'{name}_resize')(tensor)
    return keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                               name=f'{name}_up')(tensor)
  raise ValueError(f'unknown upsampling {spec.upsampling!r}; one of '
                   f'{UPSAMPLINGS}')


def build_unet(spec: UNetSpec = UNET, name: str = 'unet_dae', *,
               loss: str, image_shape: Sequence[int]) -> keras.Model:
  """A U-Net of two stride-2 levels with skip concatenations (see UNetSpec),
  with the output head of `loss` (see `output_head`), for images of
  `image_shape` (height, width, channels). The comments' sizes are MNIST's."""
  width1, width2, width3 = spec.widths
  noisy_images, padded = _input_and_padded(image_shape)
  # Encoder
  level1 = _conv_block(padded, width1, 'encoder1', spec)                # 28x28
  down1 = keras.layers.MaxPooling2D(2, name='encoder1_pool')(level1)    # 14x14
  level2 = _conv_block(down1, width2, 'encoder2', spec)
  down2 = keras.layers.MaxPooling2D(2, name='encoder2_pool')(level2)    # 7x7
  bottleneck = _conv_block(down2, width3, 'bottleneck', spec)
  # Decoder
  up2 = _upsample(bottleneck, width2, 'decoder2', spec)                 # 14x14
  decoded2 = _conv_block(
      keras.layers.Concatenate(name='decoder2_skip')([up2, level2]),
      width2, 'decoder2', spec)
  up1 = _upsample(decoded2, width1, 'decoder1', spec)                   # 28x28
  decoded1 = _conv_block(
      keras.layers.Concatenate(name='decoder1_skip')([up1, level1]),
      width1, 'decoder1', spec)
  clean_images = _clean_images(_cropped(decoded1, noisy_images, image_shape),
                               1, loss, image_shape[-1])
  return keras.Model(noisy_images, clean_images, name=name)


def build_article(latent_units: int = 128, filters: int = 32, *,
                  loss: str, image_shape: Sequence[int]) -> keras.Model:
  """The article's autoencoder, corrected (see module docstring), with the
  output head of `loss` (see `output_head`), for images of `image_shape`.

  Raises:
    ValueError: a side of `image_shape` is None: the latent Dense layer's
      size follows the image's, so this model takes one size only.
  """
  if _any_size(image_shape):
    raise ValueError('the article architecture is not fully convolutional (its '
                     'latent Dense layer fixes the image size): it cannot be '
                     f'built for images of any size, {tuple(image_shape)}')
  noisy_images, padded = _input_and_padded(image_shape)
  # The padded sides after two poolings: MNIST's 7x7.
  rows, columns = (int(padded.shape[axis]) // POOLING_FACTOR for axis in (1, 2))
  # Encoder
  tensor = keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                               name='encoder1_conv')(padded)
  tensor = keras.layers.MaxPooling2D(2, name='encoder1_pool')(tensor)   # 14x14
  tensor = keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                               name='encoder2_conv')(tensor)
  tensor = keras.layers.MaxPooling2D(2, name='encoder2_pool')(tensor)   # 7x7
  tensor = keras.layers.Flatten(name='encoder_flatten')(tensor)
  latent = keras.layers.Dense(latent_units, activation='relu', name='latent')(tensor)
  # Decoder
  tensor = keras.layers.Dense(rows * columns * filters, activation='relu',
                              name='decoder_dense')(latent)
  tensor = keras.layers.Reshape((rows, columns, filters),
                                name='decoder_reshape')(tensor)
  tensor = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding='same',
                                        activation='relu', name='decoder2_up')(tensor)
  tensor = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding='same',
                                        activation='relu', name='decoder1_up')(tensor)
  clean_images = _clean_images(_cropped(tensor, noisy_images, image_shape), 3, loss,
                               image_shape[-1])
  return keras.Model(noisy_images, clean_images, name='article_dae')


def make_loss(name: str) -> keras.losses.Loss:
  """Pixel-wise binary cross-entropy, mean squared or mean absolute error."""
  if name == 'bce':
    return keras.losses.BinaryCrossentropy(name='bce')
  if name == 'mse':
    return keras.losses.MeanSquaredError(name='mse')
  if name == 'l1':
    return keras.losses.MeanAbsoluteError(name='l1')
  raise ValueError(f'unknown loss {name!r}; one of {LOSSES}')


def learning_rate_schedule(learning_rate: float, schedule: str,
                           total_steps: int, warmup_steps: int = 0):
  """A constant rate, or a cosine decay to 2% of it over `total_steps`.

  Args:
    learning_rate: The peak rate.
    schedule: 'cosine' or 'constant'.
    total_steps: The optimisation steps the schedule spans.
    warmup_steps: (cosine only) Of those steps, the first ones rise linearly
      from 0 to `learning_rate` before the decay.
  """
  if schedule == 'constant' or total_steps < 1:
    return learning_rate
  if schedule == 'cosine':
    warmup_steps = min(warmup_steps, total_steps - 1)
    if warmup_steps > 0:
      return keras.optimizers.schedules.CosineDecay(
          0.0, decay_steps=total_steps - warmup_steps,
          alpha=COSINE_FINAL_FRACTION, warmup_target=learning_rate,
          warmup_steps=warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=total_steps, alpha=COSINE_FINAL_FRACTION)
  raise ValueError(f'unknown schedule {schedule!r}; one of {LR_SCHEDULES}')


def compile_model(model: keras.Model, loss: str, learning_rate: float,
                  jit_compile: bool = False, schedule: str = 'constant',
                  total_steps: int = 0, warmup_steps: int = 0,
                  weight_decay: float = 0.0) -> keras.Model:
  """Compiles with Adam (AdamW when `weight_decay` > 0; rate per `schedule`
  over `total_steps`, after `warmup_steps`), the chosen loss, and MSE as a
  metric.

  Raises:
    ValueError: the model was built for another loss (its output head is not
      the one `loss` trains: a sigmoid under MSE collapses to black).
  """
  if head_of(model) not in (None, output_head(loss)):
    raise ValueError(
        f'model {model.name!r} has the {head_of(model)!r} output head, but loss '
        f'{loss!r} trains the {output_head(loss)!r} head: build it with the '
        'same loss')
  rate = learning_rate_schedule(learning_rate, schedule, total_steps,
                                warmup_steps)
  optimizer = (keras.optimizers.AdamW(rate, weight_decay=weight_decay)
               if weight_decay > 0 else keras.optimizers.Adam(rate))
  model.compile(optimizer=optimizer, loss=make_loss(loss),
                metrics=[keras.metrics.MeanSquaredError(name='mse')],
                jit_compile=jit_compile)
  return model
