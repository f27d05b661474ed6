"""tf.train.Example records written as bytes directly, for whole batches.

Building one protobuf message per image costs ~200 us here (numpy values
converted element by element); the components that write many images
(TfdsExampleGen, NoiseTransform) encode the values of a whole batch with
array operations and assemble each record from these bytes instead. The
result is what `example.SerializeToString(deterministic=True)` writes: map
entries in key order, packed repeated values (the components' tests compare
both).
"""

import functools
from typing import Mapping, Tuple

import numpy as np

# Field numbers of example.proto / feature.proto.
_EXAMPLE_FEATURES = 1        # Example.features
_FEATURES_FEATURE = 1        # Features.feature (map<string, Feature>)
_MAP_KEY, _MAP_VALUE = 1, 2  # A map entry's key and value
_FEATURE_FLOAT_LIST = 2      # Feature.float_list
_FEATURE_INT64_LIST = 3      # Feature.int64_list
_LIST_VALUE = 1              # FloatList.value / Int64List.value (packed)


def varint(value: int) -> bytes:
  """Protobuf's base-128 varint of an int64 (negatives as 10 bytes)."""
  if 0 <= value < 0x80:
    return _ONE_BYTE[value]
  if value < 0:
    value += 1 << 64
  out = bytearray()
  while value >= 0x80:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]


def _tag(field_number: int) -> bytes:
  """The key of a field of wire type 2 (length-delimited)."""
  return varint(field_number << 3 | 2)


@functools.lru_cache(maxsize=8192)
def _field_header(field_number: int, length: int) -> bytes:
  """The tag and length of a length-delimited field; cached, as the images'
  fields repeat a few lengths (784 float32s, a clean digit's varints)."""
  return _tag(field_number) + varint(length)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
  """A field of wire type 2 (bytes, string, message, packed values)."""
  return _field_header(field_number, len(payload)) + payload


_KEY_FIELDS = {}  # Feature name -> its map entry's encoded key field.


def int64_feature(packed_varints: bytes) -> bytes:
  """A Feature message with an int64_list of already packed varints."""
  return _length_delimited(_FEATURE_INT64_LIST,
                           _length_delimited(_LIST_VALUE, packed_varints))


def float_feature(little_endian_float32: bytes) -> bytes:
  """A Feature message with a float_list of raw little-endian float32s."""
  return _length_delimited(_FEATURE_FLOAT_LIST,
                           _length_delimited(_LIST_VALUE, little_endian_float32))


def example(features: Mapping[str, bytes]) -> bytes:
  """A serialized Example of {name: Feature message bytes}, keys in order."""
  entries = []
  for name in sorted(features):
    if name not in _KEY_FIELDS:
      _KEY_FIELDS[name] = _length_delimited(_MAP_KEY, name.encode())
    entry = _KEY_FIELDS[name] + _length_delimited(_MAP_VALUE, features[name])
    entries.append(_length_delimited(_FEATURES_FEATURE, entry))
  return _length_delimited(_EXAMPLE_FEATURES, b''.join(entries))


def packed_uint8_varints(values: np.ndarray) -> Tuple[bytes, np.ndarray]:
  """The packed varints of each row of a uint8 array, all rows at once.

  Args:
    values: uint8 [rows, columns].

  Returns:
    (the rows' varints concatenated, each row's byte count).
  """
  high = values >= 0x80  # Two bytes: the low 7 bits + 0x80, then 1.
  codes = np.empty(values.shape + (2,), np.uint8)
  codes[..., 0] = (values & 0x7F) | (high.astype(np.uint8) << 7)
  codes[..., 1] = 1
  keep = np.ones(values.shape + (2,), bool)
  keep[..., 1] = high
  return codes[keep].tobytes(), values.shape[1] + high.sum(axis=1)


def float32_rows(values: np.ndarray) -> list:
  """Each row of a float array as raw little-endian float32 bytes."""
  rows = np.ascontiguousarray(values, '<f4').reshape(len(values), -1)
  flat, width = rows.tobytes(), rows.shape[1] * 4
  return [flat[start:start + width] for start in range(0, len(flat), width)]
