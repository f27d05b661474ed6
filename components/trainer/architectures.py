"""The registry of model architectures: each defined once, by name, builder
and description.

`training.architecture` accepts exactly the registered names (TrainingSpec),
docs/configuration.md lists them with their descriptions, and `build_model`
builds through the registry, so a new architecture is one
`register(name, builder, description)`.

A builder is (loss, image_shape) -> an uncompiled keras.Model mapping
[N, H, W, C] images in [0, 1] to the same shape, with the output head of
`loss` (model.output_head). An architecture registered `fully_convolutional`
also builds for image_shape (None, None, C), images of any height and width,
with the same weights: the Trainer exports that model (`any_size_model`), so
its SavedModel serves any size. Keras is imported by the builders, not here: the
settings check names without TensorFlow. Every process that trains imports
this module, not the caller's code: an architecture a pipeline uses must be
registered here (or in a module this one imports).
"""

from typing import Callable, Sequence

from components.common import registry as registry_lib

# (loss, image_shape) -> keras.Model (`object` here: no Keras import).
Builder = Callable[[str, Sequence[int]], object]

REGISTRY: registry_lib.Registry[Builder] = registry_lib.Registry('architecture')
# The registered builders that build for images of any size (a set of
# builders, not names: a test's registration, undone with REGISTRY.entries,
# leaves no name behind).
_FULLY_CONVOLUTIONAL = set()


def register(name: str, builder: Builder, description: str,
             fully_convolutional: bool = False) -> Builder:
  """Adds an architecture and returns its builder.

  Args:
    name: The setting's value, `training.architecture`.
    builder: (loss, image_shape) -> keras.Model.
    description: One line for docs/configuration.md.
    fully_convolutional: The builder also takes image_shape (None, None, C)
      and builds the same layers (same names and weights, padding aside),
      which then take images of any height and width.

  Raises:
    ValueError: an architecture of that name is registered already.
  """
  REGISTRY.register(name, builder, description)
  if fully_convolutional:
    _FULLY_CONVOLUTIONAL.add(builder)
  return builder


def is_fully_convolutional(architecture: str) -> bool:
  """Whether the architecture's models take images of any size.

  Raises:
    ValueError: `architecture` is not registered.
  """
  return REGISTRY[architecture] in _FULLY_CONVOLUTIONAL


def build_model(architecture: str, loss: str, image_shape: Sequence[int]):
  """The registered architecture with the output head of `loss`
  (model.output_head), uncompiled, for images of `image_shape` (height,
  width, channels).

  Raises:
    ValueError: `architecture` is not registered (the message names those
      that are).
  """
  return REGISTRY[architecture](loss, image_shape)


def any_size_model(model, architecture: str, loss: str):
  """The trained `model` as one that takes images of any height and width,
  for export: the architecture built for (None, None, channels) with the
  model's weights, layer by layer (the padding layers have none). `model`
  itself when the architecture is not fully convolutional.

  Raises:
    ValueError: `architecture` is not registered, or its any-size build lacks
      a layer of `model` that has weights.
  """
  if not is_fully_convolutional(architecture):
    return model
  channels = model.input_shape[-1]
  copy = build_model(architecture, loss, (None, None, channels))
  for layer in model.layers:
    if layer.weights:
      copy.get_layer(layer.name).set_weights(layer.get_weights())
  return copy


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
         'levels with skips), sized for training on CPUs',
         fully_convolutional=True)
register('unet_large', _unet_large,
         'the same U-Net with 64/128/256 channels and three batch-normalised '
         'convolutions per block, for training on an accelerator (with '
         "fresh_noise, loss 'bce', batch_size 128 and 30 epochs: see "
         'docs/benchmarks.md)', fully_convolutional=True)
