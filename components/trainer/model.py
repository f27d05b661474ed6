"""The denoising autoencoders (Keras 3, Functional API): noisy in, clean out.

* ``unet`` (default): a small fully convolutional U-Net. Two stride-2 levels
  with skip connections keep stroke positions exact, which a bottleneck-only
  autoencoder blurs.
* ``article``: the article's design with its bugs fixed: two conv + pool
  blocks, *flatten* before the 128-unit latent Dense layer (the article applied
  Dense to a 4-D feature map), a mirrored decoder and a sigmoid output.

Both map ``[N, 28, 28, 1]`` float images in [0, 1] scale to the same shape,
with a float32 sigmoid output also under mixed precision.
"""

import keras

from components import features

IMAGE_SHAPE = features.IMAGE_SHAPE
ARCHITECTURES = features.ARCHITECTURES
LOSSES = features.LOSSES
LR_SCHEDULES = features.LR_SCHEDULES
# The cosine schedule ends at this fraction of the peak learning rate.
COSINE_FINAL_FRACTION = 0.02


def _conv_block(tensor, filters: int, name: str):
  """Two 3x3 convolutions with ReLU."""
  for index in (1, 2):
    tensor = keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                                 name=f'{name}_conv{index}')(tensor)
  return tensor


def build_unet(base_filters: int = 32) -> keras.Model:
  """A small U-Net: 32/64/64 channels, two stride-2 levels, skip concatenations."""
  noisy_images = keras.Input(shape=IMAGE_SHAPE, name='noisy_images')
  # Encoder
  level1 = _conv_block(noisy_images, base_filters, 'encoder1')          # 28x28
  down1 = keras.layers.MaxPooling2D(2, name='encoder1_pool')(level1)    # 14x14
  level2 = _conv_block(down1, base_filters * 2, 'encoder2')
  down2 = keras.layers.MaxPooling2D(2, name='encoder2_pool')(level2)    # 7x7
  bottleneck = _conv_block(down2, base_filters * 2, 'bottleneck')
  # Decoder
  up2 = keras.layers.Conv2DTranspose(base_filters * 2, 2, strides=2,
                                     name='decoder2_up')(bottleneck)    # 14x14
  decoded2 = _conv_block(
      keras.layers.Concatenate(name='decoder2_skip')([up2, level2]),
      base_filters * 2, 'decoder2')
  up1 = keras.layers.Conv2DTranspose(base_filters, 2, strides=2,
                                     name='decoder1_up')(decoded2)      # 28x28
  decoded1 = _conv_block(
      keras.layers.Concatenate(name='decoder1_skip')([up1, level1]),
      base_filters, 'decoder1')
  clean_images = keras.layers.Conv2D(1, 1, activation='sigmoid', dtype='float32',
                                     name='clean_images')(decoded1)
  return keras.Model(noisy_images, clean_images, name='unet_dae')


def build_article(latent_units: int = 128, filters: int = 32) -> keras.Model:
  """The article's autoencoder, corrected (see module docstring)."""
  noisy_images = keras.Input(shape=IMAGE_SHAPE, name='noisy_images')
  # Encoder
  tensor = keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                               name='encoder1_conv')(noisy_images)
  tensor = keras.layers.MaxPooling2D(2, name='encoder1_pool')(tensor)   # 14x14
  tensor = keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                               name='encoder2_conv')(tensor)
  tensor = keras.layers.MaxPooling2D(2, name='encoder2_pool')(tensor)   # 7x7
  tensor = keras.layers.Flatten(name='encoder_flatten')(tensor)
  latent = keras.layers.Dense(latent_units, activation='relu', name='latent')(tensor)
  # Decoder
  tensor = keras.layers.Dense(7 * 7 * filters, activation='relu',
                              name='decoder_dense')(latent)
  tensor = keras.layers.Reshape((7, 7, filters), name='decoder_reshape')(tensor)
  tensor = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding='same',
                                        activation='relu', name='decoder2_up')(tensor)
  tensor = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding='same',
                                        activation='relu', name='decoder1_up')(tensor)
  clean_images = keras.layers.Conv2D(1, 3, padding='same', activation='sigmoid',
                                     dtype='float32', name='clean_images')(tensor)
  return keras.Model(noisy_images, clean_images, name='article_dae')


def build_model(architecture: str) -> keras.Model:
  """The named architecture, uncompiled."""
  if architecture == 'unet':
    return build_unet()
  if architecture == 'article':
    return build_article()
  raise ValueError(f'unknown architecture {architecture!r}; one of {ARCHITECTURES}')


def make_loss(name: str) -> keras.losses.Loss:
  """Pixel-wise binary cross-entropy or mean squared error."""
  if name == 'bce':
    return keras.losses.BinaryCrossentropy(name='bce')
  if name == 'mse':
    return keras.losses.MeanSquaredError(name='mse')
  raise ValueError(f'unknown loss {name!r}; one of {LOSSES}')


def learning_rate_schedule(learning_rate: float, schedule: str,
                           total_steps: int):
  """A constant rate, or a cosine decay to 2% of it over `total_steps`."""
  if schedule == 'constant' or total_steps < 1:
    return learning_rate
  if schedule == 'cosine':
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=total_steps, alpha=COSINE_FINAL_FRACTION)
  raise ValueError(f'unknown schedule {schedule!r}; one of {LR_SCHEDULES}')


def compile_model(model: keras.Model, loss: str, learning_rate: float,
                  jit_compile: bool = False, schedule: str = 'constant',
                  total_steps: int = 0) -> keras.Model:
  """Compiles with Adam (rate per `schedule` over `total_steps`), the chosen
  loss, and MSE as a metric."""
  model.compile(optimizer=keras.optimizers.Adam(
      learning_rate_schedule(learning_rate, schedule, total_steps)),
                loss=make_loss(loss),
                metrics=[keras.metrics.MeanSquaredError(name='mse')],
                jit_compile=jit_compile)
  return model
