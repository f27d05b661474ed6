"""The registry of model architectures: each defined once, by name, builder
and description.

`training.architecture` accepts exactly the registered names (TrainingSpec),
docs/configuration.md lists them with their descriptions, and `build_model`
builds through the registry, so a new architecture is one
`register(name, builder, description)`.

A builder is (loss, image_shape) -> an uncompiled keras.Model mapping
[N, H, W, C] images in [0, 1] to the same shape, with the output head of
`loss` (model.output_head). Keras is imported by the builders, not here: the
settings check names without TensorFlow. Every process that trains imports
this module, not the caller's code: an architecture a pipeline uses must be
registered here (or in a module this one imports).
"""

from typing import Callable, Sequence

from components.common import registry as registry_lib

# (loss, image_shape) -> keras.Model (`object` here: no Keras import).
Builder = Callable[[str, Sequence[int]], object]

REGISTRY: registry_lib.Registry[Builder] = registry_lib.Registry('architecture')


def register(name: str, builder: Builder, description: str) -> Builder:
  """Adds an architecture and returns its builder.

  Raises:
    ValueError: an architecture of that name is registered already.
  """
  return REGISTRY.register(name, builder, description)


def build_model(architecture: str, loss: str, image_shape: Sequence[int]):
  """The registered architecture with the output head of `loss`
  (model.output_head), uncompiled, for images of `image_shape` (height,
  width, channels).

  Raises:
    ValueError: `architecture` is not registered (the message names those
      that are).
  """
  return REGISTRY[architecture](loss, image_shape)


def _article(loss: str, image_shape: Sequence[int]):
  from components.trainer import model  # pylint: disable=g-import-not-at-top
  return model.build_article(loss=loss, image_shape=image_shape)


def _unet(loss: str, image_shape: Sequence[int]):
  from components.trainer import model  # pylint: disable=g-import-not-at-top
  return model.build_unet(model.UNET, 'unet_dae', loss=loss,
                          image_shape=image_shape)


def _unet_large(loss: str, image_shape: Sequence[int]):
  from components.trainer import model  # pylint: disable=g-import-not-at-top
  return model.build_unet(model.UNET_LARGE, 'unet_large_dae', loss=loss,
                          image_shape=image_shape)


register('article', _article,
         "the article's design, corrected: two conv + pool blocks, flatten, a "
         '128-unit latent Dense layer, a mirrored decoder')
register('unet', _unet,
         'a small fully convolutional U-Net (32/64/64 channels, two stride-2 '
         'levels with skips), sized for training on CPUs')
register('unet_large', _unet_large,
         'the same U-Net with 64/128/256 channels and three batch-normalised '
         'convolutions per block, for training on an accelerator (with '
         "fresh_noise, loss 'bce', batch_size 128 and 30 epochs: see "
         'docs/benchmarks.md)')
