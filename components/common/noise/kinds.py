"""The registry of noise kinds: each kind defined once, by name, settings and draws.

A kind is a `NoiseKind` registered here: the NoiseSpec settings it reads
(their defaults, units and bounds: components/common/noise/spec.py), its two
functions and a one-line description. NoiseSpec accepts exactly the
registered names, docs/configuration.md lists them with their descriptions,
and noise.py's key and dispatch go through the registry, so a new kind is one
`register(NoiseKind(...))` (and a NoiseSpec field for a new setting).

Beam workers in other processes import this module, not the caller's code: a
kind a pipeline uses must be registered here (or in a module this one imports).
"""

import dataclasses
from typing import Callable, Mapping, Tuple

import numpy as np

from components.common import registry as registry_lib
from components.common.noise import draws

# A kind's settings: {NoiseSpec field: value}, only the fields it declares.
Parameters = Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class NoiseKind:
  """One kind of noise.

  Attributes:
    name: What `noise.kind` calls it.
    parameters: The NoiseSpec fields that shape its noise, besides `seed` and
      `clip`. Its functions get these and no others, and the noise's key
      covers them (noise.spec_key), so a change of one changes the noise.
    levels: (keys uint64 [batch], parameters) -> float64 [batch]: the noise
      level of each example (written as its `noise_level` feature).
    corrupt: (clean float64 [batch, pixels] in [0, 1], keys, levels,
      parameters) -> float64 [batch, pixels]: the noisy images, unclipped.
      Each random quantity comes from its own stream of `draws`.
    description: One line for docs/configuration.md: what the noise is.
  """
  name: str
  parameters: Tuple[str, ...]
  levels: Callable[[np.ndarray, Parameters], np.ndarray]
  corrupt: Callable[[np.ndarray, np.ndarray, np.ndarray, Parameters], np.ndarray]
  description: str = ''


REGISTRY: registry_lib.Registry[NoiseKind] = registry_lib.Registry('noise kind')


def register(kind: NoiseKind) -> NoiseKind:
  """Adds a kind to the registry and returns it.

  Raises:
    ValueError: a kind of that name is registered already.
  """
  return REGISTRY.register(kind.name, kind, kind.description)


def names() -> Tuple[str, ...]:
  """The registered kinds' names, in order of registration."""
  return REGISTRY.names()


def constant_level(parameter: str) -> Callable[[np.ndarray, Parameters], np.ndarray]:
  """`levels` of a kind whose every example has the level of one setting."""
  def levels(keys: np.ndarray, parameters: Parameters) -> np.ndarray:
    return np.full(len(keys), parameters[parameter])
  return levels


def additive_gaussian(clean: np.ndarray, keys: np.ndarray, levels: np.ndarray,
                      parameters: Parameters) -> np.ndarray:
  """Adds Gaussian noise with each example's level as its stddev."""
  del parameters  # The level is the stddev.
  return clean + levels[:, None] * draws.standard_normal(keys, clean.shape[1])


def _salt_and_pepper(clean: np.ndarray, keys: np.ndarray, levels: np.ndarray,
                     parameters: Parameters) -> np.ndarray:
  """Sets a fraction `amount` of the pixels to 0 or 1, half each."""
  del levels  # The level is the amount.
  count = clean.shape[1]
  hit = draws.uniform(keys, count, draws.STREAM_SALT_MASK) < parameters['amount']
  salt = draws.uniform(keys, count, draws.STREAM_SALT_VALUE) < 0.5
  return np.where(hit, salt.astype(np.float64), clean)


def _uniform_stddev(keys: np.ndarray, parameters: Parameters) -> np.ndarray:
  """A stddev per example, uniform in [min_stddev, max_stddev]."""
  drawn = draws.uniform(keys, 1, draws.STREAM_LEVEL)[:, 0]
  low, high = parameters['min_stddev'], parameters['max_stddev']
  return low + (high - low) * drawn


GAUSSIAN = register(NoiseKind(
    'gaussian', ('stddev',), constant_level('stddev'), additive_gaussian,
    'additive Gaussian noise of `stddev`'))
register(NoiseKind(
    'salt_and_pepper', ('amount',), constant_level('amount'), _salt_and_pepper,
    'a fraction `amount` of the pixels set to 0 or 1'))
register(NoiseKind(
    'random_gaussian', ('min_stddev', 'max_stddev'), _uniform_stddev,
    additive_gaussian, 'additive Gaussian noise whose stddev each example '
    'draws uniformly from [`min_stddev`, `max_stddev`], for a blind denoiser'))
