"""The counter-based generator behind every noise kind (numpy, vectorised).

SplitMix64 over a per-example key and a pixel index draws every value
independently, so a draw depends only on (key, stream, index): the same
whatever the batching, sharding, runner or worker order.
"""

import numpy as np

# Independent streams of the generator. A noise kind draws each of its
# random quantities from a stream of its own (components/common/noise/kinds.py).
STREAM_RADIUS = 1  # Box-Muller's radius (standard_normal).
STREAM_ANGLE = 2  # Box-Muller's angle (standard_normal).
STREAM_SALT_MASK = 3
STREAM_SALT_VALUE = 4
STREAM_LEVEL = 5  # A per-example noise level.

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray) -> np.ndarray:
  """The SplitMix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
  with np.errstate(over='ignore'):
    values = (values ^ (values >> np.uint64(30))) * _MIX_1
    values = (values ^ (values >> np.uint64(27))) * _MIX_2
    return values ^ (values >> np.uint64(31))


def uniform(keys: np.ndarray, count: int, stream: int) -> np.ndarray:
  """Uniform draws in (0, 1), float64 [batch, count], one per (key, index)."""
  with np.errstate(over='ignore'):
    counters = (np.arange(count, dtype=np.uint64) +
                np.uint64(stream) * np.uint64(1 << 32)) * _GOLDEN_GAMMA
    bits = splitmix64(splitmix64(keys.astype(np.uint64))[:, None] + counters)
  # The top 53 bits, shifted by half a step to exclude 0 and 1.
  return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def standard_normal(keys: np.ndarray, count: int) -> np.ndarray:
  """Standard normal draws [batch, count] by the Box-Muller transform."""
  radius = np.sqrt(-2.0 * np.log(uniform(keys, count, STREAM_RADIUS)))
  return radius * np.cos(2.0 * np.pi * uniform(keys, count, STREAM_ANGLE))
