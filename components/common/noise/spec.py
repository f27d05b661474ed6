"""The noise settings: their one definition (fields, units, defaults, checks).

A validated value type of the components' own, so that their code (and its
cache fingerprint) does not depend on the CLI's configuration module, which
takes it whole as its `noise` section (naming a refused field
`noise.<field>`). NoiseTransform takes it as one JSON property
and records it on its output, where the Trainer reads it back.
"""

import dataclasses
import math
import numbers

from components.common import setting_specs
from components.common.noise import kinds

# Bounds of a numeric setting, and the words its error uses for them.
_BOUNDS = 'bounds'
_UNIT = 'unit'


class InvalidNoiseSpec(setting_specs.InvalidSetting):
  """A noise setting is invalid; `field` names it."""

  KIND = 'noise'


def _setting(default, unit: str, low, high) -> dataclasses.Field:
  """A numeric field that must lie in [low, high], described as `unit`."""
  return dataclasses.field(default=default,
                           metadata={_BOUNDS: (low, high), _UNIT: unit})


_STDDEV = 'a stddev in [0, 1] pixel units'


@dataclasses.dataclass(frozen=True)
class NoiseSpec(setting_specs.JsonSpec):
  """The corruption applied to clean images (pixels scaled to [0, 1]).

  Attributes:
    kind: A kind of noise registered in components/common/noise/kinds.py.
    stddev: Standard deviation of Gaussian noise, in pixel units of [0, 1].
    min_stddev: Lower bound of the per-example stddev (random_gaussian).
    max_stddev: Upper bound of the per-example stddev (random_gaussian).
    amount: Fraction of pixels set to 0 or 1 (salt_and_pepper), in [0, 1].
    clip: Clip noisy pixels to [0, 1]; False keeps the article's unclipped noise.
    seed: Seed of the noise; with the example's identity it fixes its noise.
  """
  kind: str = setting_specs.option(kinds.GAUSSIAN.name, kinds.REGISTRY)
  stddev: float = _setting(0.2, _STDDEV, 0.0, 1.0)
  min_stddev: float = _setting(0.0, _STDDEV, 0.0, 1.0)
  max_stddev: float = _setting(0.5, _STDDEV, 0.0, 1.0)
  amount: float = _setting(0.1, 'a fraction in [0, 1]', 0.0, 1.0)
  clip: bool = False
  seed: int = _setting(42, 'a non-negative 64-bit integer', 0, 2**63 - 1)

  def __post_init__(self):
    for field in dataclasses.fields(self):
      object.__setattr__(self, field.name, _typed(field, getattr(self, field.name)))
      if _BOUNDS in field.metadata:
        _check_bounds(field, getattr(self, field.name))
    setting_specs.check_options(self, InvalidNoiseSpec)
    InvalidNoiseSpec.require(
        self.min_stddev <= self.max_stddev, 'min_stddev',
        f'{self.min_stddev} is above noise.max_stddev {self.max_stddev}')


def _typed(field: dataclasses.Field, value):
  """`value` as the field's type: JSON and Kubeflow's parameters may give an
  int for a float; the noise's key (noise.spec_key) must not see the
  difference."""
  if field.type is bool:
    InvalidNoiseSpec.require(value in (0, 1), field.name,
                             f'must be true or false, got {value!r}')
    return bool(value)
  if field.type in (int, float):
    InvalidNoiseSpec.require(
        not isinstance(value, bool) and isinstance(value, numbers.Real) and (
            field.type is float or float(value).is_integer()),
        field.name, f'must be a {field.type.__name__}, got {value!r}')
    return field.type(value)
  InvalidNoiseSpec.require(isinstance(value, field.type), field.name,
                           f'must be a {field.type.__name__}, got {value!r}')
  return value


def _check_bounds(field: dataclasses.Field, value) -> None:
  low, high = field.metadata[_BOUNDS]
  InvalidNoiseSpec.require(math.isfinite(value) and low <= value <= high,
                           field.name, f'must be {field.metadata[_UNIT]}, got {value}')
