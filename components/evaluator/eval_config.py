"""The TFMA EvalConfig: reconstruction metrics, slices and push thresholds.

`make_eval_config` builds it from the thresholds when the pipeline is built;
`for_dataset` completes it for the examples when the Evaluator runs (their
image shape, and whether they have classes to slice by), since only the
examples' DatasetInfo knows those.
"""

import json
from typing import Any, List, Optional

from tensorflow_model_analysis.proto import config_pb2

from components import dataset_info as dataset_info_lib
from components import features
from components.evaluator import metrics
from components.trainer import export

LABEL_KEY = features.CLEAN  # The clean image: what the model must reconstruct.
SLICE_FEATURE = features.LABEL  # The class: metrics are also reported per class.


OVERALL = config_pb2.SlicingSpec()
PER_CLASS = config_pb2.SlicingSpec(feature_keys=[SLICE_FEATURE])


def _gated(slicing_spec: config_pb2.SlicingSpec,
           **threshold) -> config_pb2.PerSliceMetricThreshold:
  """A threshold on the slices of one spec only.

  TFMA (0.52, `evaluators/metrics_validator.py`) applies a MetricConfig's
  plain `threshold` to *every* slice computed, the per-class ones included;
  per-slice thresholds say which slices each bound is for.
  """
  return config_pb2.PerSliceMetricThreshold(
      slicing_specs=[slicing_spec], threshold=config_pb2.MetricThreshold(**threshold))


def _metric(class_name: str,
            *gates: config_pb2.PerSliceMetricThreshold) -> config_pb2.MetricConfig:
  """A metric of `metrics` with its gates (its image shape: for_dataset)."""
  return config_pb2.MetricConfig(
      class_name=class_name, module=metrics.METRICS_MODULE,
      per_slice_thresholds=gates)


def _no_drop_below_baseline(max_drop_db: float) -> config_pb2.GenericChangeThreshold:
  return config_pb2.GenericChangeThreshold(
      direction=config_pb2.MetricDirection.HIGHER_IS_BETTER,
      absolute={'value': -max_drop_db})


def make_eval_config(thresholds: Any) -> config_pb2.EvalConfig:
  """Overall and per-class MSE, PSNR, mean-image PSNR and SSIM, and the gate.

  The candidate is blessed only if, over the whole test split, its PSNR and
  MSE pass the value thresholds and its PSNR is not below the baseline's (the
  served model's) by more than `max_psnr_drop_db`; and, unless
  `max_class_psnr_drop_db` is None, no class's PSNR is below that class's
  under the baseline by more than that many dB.

  `thresholds` is duck-typed: any object with the fields of
  pipeline_config.ThresholdConfig (not imported: VisualReport imports this
  module, and its code fingerprint must not follow the CLI's configuration).
  Without a baseline (the first run) TFX's Evaluator skips change
  thresholds: the values alone gate. The Evaluator completes the config for
  its examples' dataset (for_dataset).
  """
  psnr_gates = [_gated(
      OVERALL,
      value_threshold=config_pb2.GenericValueThreshold(
          lower_bound={'value': thresholds.min_psnr_db}),
      change_threshold=_no_drop_below_baseline(thresholds.max_psnr_drop_db))]
  if thresholds.max_class_psnr_drop_db is not None:
    psnr_gates.append(_gated(PER_CLASS, change_threshold=_no_drop_below_baseline(
        thresholds.max_class_psnr_drop_db)))
  mse_gate = _gated(OVERALL, value_threshold=config_pb2.GenericValueThreshold(
      upper_bound={'value': thresholds.max_mse}))
  return config_pb2.EvalConfig(
      model_specs=[config_pb2.ModelSpec(signature_name=export.EXAMPLES_SIGNATURE,
                                  label_key=LABEL_KEY,
                                  prediction_key=export.OUTPUT_KEY)],
      slicing_specs=[OVERALL, PER_CLASS],
      metrics_specs=[config_pb2.MetricsSpec(metrics=[
          _metric('PSNR', *psnr_gates),
          _metric('MSE', mse_gate),
          _metric('MeanImagePSNR'),
          _metric('SSIM'),
      ])],
      options=config_pb2.Options(include_default_metrics={'value': False}))


def for_dataset(eval_config: config_pb2.EvalConfig,
                info: dataset_info_lib.DatasetInfo) -> config_pb2.EvalConfig:
  """The EvalConfig completed for the examples of a dataset (a copy).

  Every metric is told the images' shape (see metrics._as_images); a dataset
  without labels has no per-class slices, nor gates on them.
  """
  completed = config_pb2.EvalConfig()
  completed.CopyFrom(eval_config)
  if not info.labeled:
    _drop_slicing(completed, PER_CLASS)
  for metrics_spec in completed.metrics_specs:
    for metric in metrics_spec.metrics:
      settings = json.loads(metric.config or '{}')
      settings['image_shape'] = list(info.image_shape)
      metric.config = json.dumps(settings, sort_keys=True)
  return completed


def _drop_slicing(eval_config: config_pb2.EvalConfig,
                  slicing_spec: config_pb2.SlicingSpec) -> None:
  """Removes a slicing spec, and every gate on its slices, in place."""
  kept = [spec for spec in eval_config.slicing_specs if spec != slicing_spec]
  del eval_config.slicing_specs[:]
  eval_config.slicing_specs.extend(kept)
  for metrics_spec in eval_config.metrics_specs:
    for metric in metrics_spec.metrics:
      gates = [gate for gate in metric.per_slice_thresholds
               if list(gate.slicing_specs) != [slicing_spec]]
      del metric.per_slice_thresholds[:]
      metric.per_slice_thresholds.extend(gates)


# Which config field each gate of `make_eval_config` comes from, by (metric,
# per-slice or overall, value or change threshold): what a failure names.
_GATE_FIELDS = {
    ('psnr', False, 'value'): 'thresholds.min_psnr_db',
    ('psnr', False, 'change'): 'thresholds.max_psnr_drop_db',
    ('psnr', True, 'change'): 'thresholds.max_class_psnr_drop_db',
    ('mse', False, 'value'): 'thresholds.max_mse',
}
_UNITS = {'psnr': ' dB'}


def _bound(value_threshold) -> str:
  """'>= 24.0' or '<= 0.004': the side of a value threshold that is set."""
  if value_threshold.HasField('lower_bound'):
    return f'>= {value_threshold.lower_bound.value:g}'
  return f'<= {value_threshold.upper_bound.value:g}'


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
      name = failure.metric_key.name
      unit = _UNITS.get(name, '')
      value = failure.metric_value.double_value.value
      threshold = failure.metric_threshold
      kind = 'change' if failure.metric_key.is_diff else 'value'
      field = _GATE_FIELDS.get((name, bool(where), kind), 'a threshold')
      if kind == 'change':
        allowed = -threshold.change_threshold.absolute.value
        lines.append(f'{where}{name} {value:+.2f}{unit} against the last blessed '
                     f'model, more than the {allowed:g}{unit} drop allowed ({field})')
      else:
        lines.append(f'{where}{name} {value:.4g}{unit}, needs '
                     f'{_bound(threshold.value_threshold)}{unit} ({field})')
  return lines
