"""Reading a TFMA evaluation: its metrics per model and slice, its failed gates.

The Evaluator writes the evaluation; the report, the Pusher's push records
and `dae-pipeline report` read it through this module.
"""

from typing import List, Optional

from components.common import dataset_info as dataset_info_lib
from components.common import gates
from components.common import names

# Model names TFMA gives the compared models (no name without a baseline).
CANDIDATE = 'candidate'
BASELINE = 'baseline'
# The feature the metrics are sliced by: the class.
SLICE_FEATURE = names.LABEL


def read_evaluation(evaluation_uri: str) -> dict:
  """Metrics of a TFMA evaluation: overall and per class, per model.

  Returns:
    {'overall': {model: {metric: value}}, 'by_class': {model: {metric:
    {label: value}}}} where model is 'candidate' or 'baseline' ('candidate'
    also when the run had no baseline); change metrics are left out;
    'by_class' is {} for a dataset without labels.
  """
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  overall, by_class = {}, {}
  for slice_metrics in tfma.load_metrics(evaluation_uri):
    columns = {key.column: key for key in slice_metrics.slice_key.single_slice_keys}
    for entry in slice_metrics.metric_keys_and_values:
      if entry.key.is_diff:
        continue
      model = entry.key.model_name or CANDIDATE
      value = entry.value.double_value.value
      if not columns:
        overall.setdefault(model, {})[entry.key.name] = value
      elif len(columns) == 1:
        label = int(next(iter(columns.values())).int64_value)
        by_class.setdefault(model, {}).setdefault(entry.key.name, {})[label] = value
  if not overall:
    raise ValueError(f'no overall metrics in the evaluation at {evaluation_uri}')
  return {'overall': overall, 'by_class': by_class}


def _slice_name(slice_key,
                info: Optional[dataset_info_lib.DatasetInfo]) -> str:
  """'' for the whole split, 'class 3: ' or 'class T-shirt/top: ' for a
  per-class slice (named by `info`'s class names; by number without one)."""
  columns = [column for column in slice_key.single_slice_keys]
  if not columns:
    return ''
  return ', '.join(_column_name(column, info) for column in columns) + ': '


def _column_name(column, info: Optional[dataset_info_lib.DatasetInfo]) -> str:
  """'class T-shirt/top' for the class column, 'COLUMN VALUE' for others."""
  if column.column == SLICE_FEATURE and column.HasField('int64_value'):
    label = int(column.int64_value)
    return f'class {info.class_name(label) if info else label}'
  value = (column.int64_value if column.HasField('int64_value') else
           column.bytes_value.decode())
  return f'{column.column} {value}'


def describe_failures(validation_result,
                      info: Optional[dataset_info_lib.DatasetInfo] = None
                      ) -> List[str]:
  """One line per failed gate of a TFMA ValidationResult, with the numbers
  and the config field that sets the bound, e.g. 'psnr 15.21 dB, needs >= 16
  (thresholds.min_psnr_db)' or 'class T-shirt/top: psnr -0.71 dB against ...'
  (classes named by `info`, the examples' DatasetInfo)."""
  lines = []
  for per_slice in validation_result.metric_validations_per_slice:
    where = _slice_name(per_slice.slice_key, info)
    for failure in per_slice.failures:
      lines.append(gates.describe_failure(
          where, failure.metric_key.name, failure.metric_key.is_diff,
          failure.metric_value.double_value.value, failure.metric_threshold))
  return lines
