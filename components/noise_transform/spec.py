"""The noise settings as NoiseTransform and the Trainer receive them.

A small, validated value type of the components' own, so that their code
(and its cache fingerprint) does not depend on the CLI's configuration
module: `pipeline_config.NoiseConfig` holds the defaults, units and meaning
of each field and checks its values through `NoiseSpec`.
"""

import dataclasses
import json
import math

from components import features


class InvalidNoiseSpec(ValueError):
  """A noise setting is out of range; `field` names it."""

  def __init__(self, field: str, reason: str):
    super().__init__(f'noise setting {field!r}: {reason}')
    self.field = field
    self.reason = reason


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
  """How clean images (pixels in [0, 1]) are corrupted.

  Attributes (meaning, units and defaults: pipeline_config.NoiseConfig):
    kind: One of features.NOISE_KINDS.
    stddev, min_stddev, max_stddev: Gaussian stddevs in [0, 1] pixel units.
    amount: Fraction of pixels set to 0 or 1 (salt_and_pepper), in [0, 1].
    clip: Clip noisy pixels to [0, 1].
    seed: Non-negative 64-bit seed.
  """
  kind: str
  stddev: float
  min_stddev: float
  max_stddev: float
  amount: float
  clip: bool
  seed: int

  def __post_init__(self):
    if self.kind not in features.NOISE_KINDS:
      raise InvalidNoiseSpec(
          'kind', f'{self.kind!r} is not one of {", ".join(features.NOISE_KINDS)}')
    for name in ('stddev', 'min_stddev', 'max_stddev'):
      value = getattr(self, name)
      if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidNoiseSpec(
            name, f'must be a stddev in [0, 1] pixel units, got {value}')
    if self.min_stddev > self.max_stddev:
      raise InvalidNoiseSpec(
          'min_stddev', f'{self.min_stddev} is above noise.max_stddev {self.max_stddev}')
    if not (math.isfinite(self.amount) and 0.0 <= self.amount <= 1.0):
      raise InvalidNoiseSpec('amount', f'must be a fraction in [0, 1], got {self.amount}')
    if not 0 <= self.seed < 2**63:
      raise InvalidNoiseSpec(
          'seed', f'must be a non-negative 64-bit integer, got {self.seed}')

  def to_json(self) -> str:
    """The spec as JSON (recorded on NoiseTransform's output artifact)."""
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'NoiseSpec':
    """The spec `to_json` wrote (validated again)."""
    return cls(**json.loads(text))
