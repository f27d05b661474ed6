"""tf.train.Example records of a whole batch, encoded by tfx_bsl in C++.

The components that write many images (TfdsExampleGen, NoiseTransform) hold
a batch's features as numpy arrays; `serialize` hands them to tfx_bsl's
`RecordBatchToExamplesEncoder` as one Arrow record batch instead of building
one protobuf message per image (values converted element by element, in
Python).

The encoder writes each example's feature map in protobuf's (unordered) map
order, so the bytes of one example may differ from run to run while its
parsed content does not: compare parsed examples, not bytes.
"""

from typing import List, Mapping, Sequence, Union

import numpy as np
import pyarrow as pa
from tfx_bsl.coders import example_coder

# Stateless; needs a schema only for ragged features, which these are not.
_ENCODER = example_coder.RecordBatchToExamplesEncoder()


Column = Union[np.ndarray, Sequence[np.ndarray]]


def _list_column(values: Column) -> pa.LargeListArray:
  """One list of values per row of `values` ([rows] or [rows, values], or a
  sequence of rows of any lengths): float32 (a float_list) for floats, int64
  (an int64_list) for integers."""
  if isinstance(values, np.ndarray):
    rows = values.reshape(len(values), -1)
    lengths = np.full(len(rows), rows.shape[1], dtype=np.int64)
    flat = rows.reshape(-1)
  else:  # Rows of their own lengths (whole images of any size).
    lengths = np.array([np.size(row) for row in values], dtype=np.int64)
    flat = np.concatenate([np.ravel(row) for row in values])
  dtype = np.float32 if np.issubdtype(flat.dtype, np.floating) else np.int64
  offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  return pa.LargeListArray.from_arrays(
      pa.array(offsets), pa.array(np.ascontiguousarray(flat, dtype)))


def serialize(features: Mapping[str, Column]) -> List[bytes]:
  """The serialized tf.Examples of a batch, one per row.

  Args:
    features: {feature name: values [rows] or [rows, values], or a list of
      each row's values of any lengths}; floating arrays become float_lists
      (float32), integer arrays int64_lists.

  Returns:
    Each row's serialized tf.Example, in row order.
  """
  names = sorted(features)
  columns = [_list_column(features[name] if isinstance(features[name], list)
                          else np.asarray(features[name])) for name in names]
  return _ENCODER.encode(
      pa.RecordBatch.from_arrays(columns, names))
