"""Seeded, vectorised image noise whose draws depend only on what they corrupt.

The noise of an example is a pure function of (seed, noise settings, example
identity): a counter-based generator (SplitMix64 over a per-example key and
the pixel index) draws every pixel independently, so the result is the same
whatever the batching, sharding, runner or worker order. The identity of an
example is the SHA-256 of its pixels and label.

All functions work on whole batches with numpy (no per-pixel Python loops).
"""

import hashlib
import json
from typing import Optional

import numpy as np

from components import features
from components.noise_transform import spec as spec_lib

GAUSSIAN, SALT_AND_PEPPER, RANDOM_GAUSSIAN = features.NOISE_KINDS

PIXELS = features.PIXELS

# Independent streams of the counter-based generator.
_STREAM_RADIUS = 1
_STREAM_ANGLE = 2
_STREAM_SALT_MASK = 3
_STREAM_SALT_VALUE = 4
_STREAM_LEVEL = 5

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


NoiseSpec = spec_lib.NoiseSpec
InvalidNoiseSpec = spec_lib.InvalidNoiseSpec


def record_spec(examples, spec: NoiseSpec) -> None:
  """Records the spec on an Examples artifact (NoiseTransform's output)."""
  examples.set_string_custom_property(features.NOISE_SPEC_PROPERTY,
                                      spec.to_json())


def recorded_spec_json(examples) -> Optional[str]:
  """The settings NoiseTransform recorded on its Examples artifact (JSON of a
  NoiseSpec), or None where it recorded none (examples not written by
  NoiseTransform, or by a version before it recorded its settings)."""
  if not examples.has_custom_property(features.NOISE_SPEC_PROPERTY):
    return None
  return examples.get_string_custom_property(features.NOISE_SPEC_PROPERTY)


def spec_key(spec: NoiseSpec) -> np.uint64:
  """64 bits that change with the seed or any setting that shapes the noise."""
  relevant = {'kind': spec.kind, 'seed': spec.seed, 'clip': spec.clip}
  relevant.update({GAUSSIAN: {'stddev': spec.stddev},
                   SALT_AND_PEPPER: {'amount': spec.amount},
                   RANDOM_GAUSSIAN: {'min_stddev': spec.min_stddev,
                                     'max_stddev': spec.max_stddev}}[spec.kind])
  digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).digest()
  return np.frombuffer(digest[:8], dtype='<u8')[0]


def example_keys(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """The identity of each example: 64 bits of SHA-256 of pixels and label.

  Args:
    images: uint8 [batch, 784].
    labels: integer [batch].

  Returns:
    uint64 [batch].
  """
  images = np.ascontiguousarray(images, dtype=np.uint8)
  digests = b''.join(
      hashlib.sha256(image.tobytes() + int(label).to_bytes(2, 'little')).digest()[:8]
      for image, label in zip(images, labels))
  return np.frombuffer(digests, dtype='<u8').astype(np.uint64)


def _splitmix64(values: np.ndarray) -> np.ndarray:
  """The SplitMix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
  with np.errstate(over='ignore'):
    values = (values ^ (values >> np.uint64(30))) * _MIX_1
    values = (values ^ (values >> np.uint64(27))) * _MIX_2
    return values ^ (values >> np.uint64(31))


def redraw_keys(keys: np.ndarray, draws: np.ndarray) -> np.ndarray:
  """The keys of an example's `draws`-th independent noise (draw 0: its own).

  `add_noise(clean, redraw_keys(keys, d), spec)` gives, for d = 0, exactly the
  noise NoiseTransform wrote, and for each d > 0 a new draw with the same
  settings: how the Trainer gives every pass over the data fresh noise.

  Args:
    keys: uint64 [batch], the examples' identities (see example_keys).
    draws: integers [batch] >= 0, which draw each example gets.

  Returns:
    uint64 [batch].
  """
  # SplitMix64 maps 0 to 0, so draw 0 leaves the key as it is.
  return (np.asarray(keys, dtype=np.uint64) ^
          _splitmix64(np.asarray(draws, dtype=np.uint64)))


def uniform(keys: np.ndarray, count: int, stream: int) -> np.ndarray:
  """Uniform draws in (0, 1), float64 [batch, count], one per (key, index)."""
  with np.errstate(over='ignore'):
    counters = (np.arange(count, dtype=np.uint64) +
                np.uint64(stream) * np.uint64(1 << 32)) * _GOLDEN_GAMMA
    bits = _splitmix64(_splitmix64(keys.astype(np.uint64))[:, None] + counters)
  # The top 53 bits, shifted by half a step to exclude 0 and 1.
  return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def standard_normal(keys: np.ndarray, count: int) -> np.ndarray:
  """Standard normal draws [batch, count] by the Box-Muller transform."""
  radius = np.sqrt(-2.0 * np.log(uniform(keys, count, _STREAM_RADIUS)))
  return radius * np.cos(2.0 * np.pi * uniform(keys, count, _STREAM_ANGLE))


def noise_levels(keys: np.ndarray, spec: NoiseSpec) -> np.ndarray:
  """The noise level of each example: its stddev, or the salt-and-pepper amount."""
  if spec.kind == GAUSSIAN:
    return np.full(len(keys), spec.stddev)
  if spec.kind == SALT_AND_PEPPER:
    return np.full(len(keys), spec.amount)
  draws = uniform(keys, 1, _STREAM_LEVEL)[:, 0]
  return spec.min_stddev + (spec.max_stddev - spec.min_stddev) * draws


def add_noise(clean: np.ndarray, keys: np.ndarray, spec: NoiseSpec):
  """Corrupts a batch of clean images.

  Args:
    clean: float [batch, pixels], values in [0, 1].
    keys: uint64 [batch], the identity of each example (see example_keys).
    spec: The noise to add.

  Returns:
    (noisy float32 [batch, pixels], noise level float32 [batch]).
  """
  keys = spec_key(spec) ^ np.asarray(keys, dtype=np.uint64)
  clean = np.asarray(clean, dtype=np.float64)
  levels = noise_levels(keys, spec)
  count = clean.shape[1]
  if spec.kind == SALT_AND_PEPPER:
    hit = uniform(keys, count, _STREAM_SALT_MASK) < spec.amount
    salt = uniform(keys, count, _STREAM_SALT_VALUE) < 0.5
    noisy = np.where(hit, salt.astype(np.float64), clean)
  else:
    noisy = clean + levels[:, None] * standard_normal(keys, count)
  if spec.clip:
    noisy = np.clip(noisy, 0.0, 1.0)
  return noisy.astype(np.float32), levels.astype(np.float32)
