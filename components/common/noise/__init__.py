"""Seeded, vectorised image noise whose draws depend only on what they corrupt.

The noise of an example is a pure function of (seed, noise settings, example
identity): a counter-based generator (draws.py) draws every pixel
independently, so the result is the same whatever the batching, sharding,
runner or worker order. The identity of an example is the SHA-256 of its
pixels and label (label 0 for a dataset without labels). What each kind of noise draws is its entry in the registry
(kinds.py); this module keys and dispatches through it.

All functions work on whole batches with numpy (no per-pixel Python loops).
"""

import hashlib
import json
from typing import Dict, Optional

import numpy as np

from components.common import names
from components.common.noise import draws as draws_lib
from components.common.noise import kinds
from components.common.noise import spec as spec_lib

NoiseSpec = spec_lib.NoiseSpec
InvalidNoiseSpec = spec_lib.InvalidNoiseSpec


def record_spec(examples, spec: NoiseSpec) -> None:
  """Records the spec on an Examples artifact (NoiseTransform's output)."""
  examples.set_string_custom_property(names.NOISE_SPEC_PROPERTY,
                                      spec.to_json())


def recorded_spec_json(examples) -> Optional[str]:
  """The settings NoiseTransform recorded on its Examples artifact (JSON of a
  NoiseSpec), or None where it recorded none (examples not written by
  NoiseTransform, or by a version before it recorded its settings)."""
  if not examples.has_custom_property(names.NOISE_SPEC_PROPERTY):
    return None
  return examples.get_string_custom_property(names.NOISE_SPEC_PROPERTY)


def describe(spec: NoiseSpec) -> str:
  """A short human description of the noise: its kind and the settings that
  shape it (kinds.NoiseKind.parameters), e.g. 'gaussian stddev=0.5' or
  'salt_and_pepper amount=0.1, clipped'. The seed is left out: it changes
  the draws, not the noise's distribution, so figures measured under two
  seeds compare."""
  settings = ' '.join(f'{name}={value:g}'
                      for name, value in _parameters(spec).items())
  return f'{spec.kind} {settings}'.strip() + (', clipped' if spec.clip else '')


def _parameters(spec: NoiseSpec) -> Dict[str, float]:
  """The settings of the spec's kind (kinds.NoiseKind.parameters)."""
  return {name: getattr(spec, name) for name in kinds.REGISTRY[spec.kind].parameters}


def spec_key(spec: NoiseSpec) -> np.uint64:
  """64 bits that change with the seed or any setting that shapes the noise."""
  relevant = {'kind': spec.kind, 'seed': spec.seed, 'clip': spec.clip}
  relevant.update(_parameters(spec))
  digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).digest()
  return np.frombuffer(digest[:8], dtype='<u8')[0]


def example_keys(images: np.ndarray,
                 labels: Optional[np.ndarray] = None) -> np.ndarray:
  """The identity of each example: 64 bits of SHA-256 of pixels and label.

  Args:
    images: uint8 [batch, pixels].
    labels: integer [batch]; None for a dataset without labels, whose
      examples are keyed as if every label were 0.

  Returns:
    uint64 [batch].
  """
  images = np.ascontiguousarray(images, dtype=np.uint8)
  if labels is None:
    labels = np.zeros(len(images), dtype=np.int64)
  digests = b''.join(
      hashlib.sha256(image.tobytes() + int(label).to_bytes(2, 'little')).digest()[:8]
      for image, label in zip(images, labels))
  return np.frombuffer(digests, dtype='<u8').astype(np.uint64)


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
          draws_lib.splitmix64(np.asarray(draws, dtype=np.uint64)))


def noise_levels(keys: np.ndarray, spec: NoiseSpec) -> np.ndarray:
  """The noise level of each example (its kind's `levels`), float64 [batch].

  Args:
    keys: uint64 [batch], the examples' keys combined with spec_key.
    spec: The noise.
  """
  return kinds.REGISTRY[spec.kind].levels(keys, _parameters(spec))


def add_noise(clean: np.ndarray, keys: np.ndarray, spec: NoiseSpec):
  """Corrupts a batch of clean images with the spec's kind of noise.

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
  noisy = kinds.REGISTRY[spec.kind].corrupt(clean, keys, levels, _parameters(spec))
  if spec.clip:
    noisy = np.clip(noisy, 0.0, 1.0)
  return noisy.astype(np.float32), levels.astype(np.float32)
