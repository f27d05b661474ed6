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

from typing import List, Mapping

import numpy as np
import pyarrow as pa
from tfx_bsl.coders import example_coder

# Stateless; needs a schema only for ragged features, which these are not.
_ENCODER = example_coder.RecordBatchToExamplesEncoder()


def _list_column(values: np.ndarray) -> pa.LargeListArray:
  """One list of values per row of `values` ([rows] or [rows, values]):
  float32 (a float_list) for floats, int64 (an int64_list) for integers."""
  rows = values.reshape(len(values), -1)
  dtype = np.float32 if np.issubdtype(rows.dtype, np.floating) else np.int64
  offsets = np.arange(len(rows) + 1, dtype=np.int64) * rows.shape[1]
  return pa.LargeListArray.from_arrays(
      pa.array(offsets), pa.array(np.ascontiguousarray(rows, dtype).reshape(-1)))


def serialize(features: Mapping[str, np.ndarray]) -> List[bytes]:
  """The serialized tf.Examples of a batch, one per row.

  Args:
    features: {feature name: values [rows] or [rows, values]}; floating
      arrays become float_lists (float32), integer arrays int64_lists.

  Returns:
    Each row's serialized tf.Example, in row order.
  """
  names = sorted(features)
  columns = [_list_column(np.asarray(features[name])) for name in names]
  return _ENCODER.encode(
      pa.RecordBatch.from_arrays(columns, names))
