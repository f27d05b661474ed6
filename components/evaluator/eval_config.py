"""The TFMA EvalConfig: reconstruction metrics, slices and push thresholds."""

import json
from typing import Any, List, Sequence

import tensorflow_model_analysis as tfma

from components import features
from components.evaluator import metrics
from components.trainer import export

LABEL_KEY = features.CLEAN  # The clean image: what the model must reconstruct.
SLICE_FEATURE = features.LABEL  # The digit: metrics are also reported per digit.


OVERALL = tfma.SlicingSpec()
PER_DIGIT = tfma.SlicingSpec(feature_keys=[SLICE_FEATURE])


def _gated(slicing_spec: tfma.SlicingSpec, **threshold) -> tfma.PerSliceMetricThreshold:
  """A threshold on the slices of one spec only.

  TFMA (0.47, `evaluators/metrics_validator.py`) applies a MetricConfig's
  plain `threshold` to *every* slice computed, the per-digit ones included;
  per-slice thresholds say which slices each bound is for.
  """
  return tfma.PerSliceMetricThreshold(
      slicing_specs=[slicing_spec], threshold=tfma.MetricThreshold(**threshold))


def _metric(class_name: str, image_shape: Sequence[int],
            *gates: tfma.PerSliceMetricThreshold) -> tfma.MetricConfig:
  """A metric of `metrics` for images of `image_shape`, with its gates."""
  return tfma.MetricConfig(
      class_name=class_name, module=metrics.METRICS_MODULE,
      config=json.dumps({'image_shape': [int(side) for side in image_shape]}),
      per_slice_thresholds=gates)


def _no_drop_below_baseline(max_drop_db: float) -> tfma.GenericChangeThreshold:
  return tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.HIGHER_IS_BETTER,
      absolute={'value': -max_drop_db})


def make_eval_config(thresholds: Any, image_shape: Sequence[int]) -> tfma.EvalConfig:
  """Overall and per-digit MSE, PSNR, mean-image PSNR and SSIM, and the gate.

  The candidate is blessed only if, over the whole test split, its PSNR and
  MSE pass the value thresholds and its PSNR is not below the baseline's (the
  served model's) by more than `max_psnr_drop_db`; and, unless
  `max_digit_psnr_drop_db` is None, no digit's PSNR is below that digit's
  under the baseline by more than that many dB.

  `thresholds` is duck-typed: any object with the fields of
  pipeline_config.ThresholdConfig (not imported: VisualReport imports this
  module, and its code fingerprint must not follow the CLI's configuration).
  Without a baseline (the first run) TFX's Evaluator skips change
  thresholds: the values alone gate. `image_shape` (height, width, channels)
  is the examples' (see metrics._as_images).
  """
  psnr_gates = [_gated(
      OVERALL,
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': thresholds.min_psnr_db}),
      change_threshold=_no_drop_below_baseline(thresholds.max_psnr_drop_db))]
  if thresholds.max_digit_psnr_drop_db is not None:
    psnr_gates.append(_gated(PER_DIGIT, change_threshold=_no_drop_below_baseline(
        thresholds.max_digit_psnr_drop_db)))
  mse_gate = _gated(OVERALL, value_threshold=tfma.GenericValueThreshold(
      upper_bound={'value': thresholds.max_mse}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name=export.EXAMPLES_SIGNATURE,
                                  label_key=LABEL_KEY,
                                  prediction_key=export.OUTPUT_KEY)],
      slicing_specs=[OVERALL, PER_DIGIT],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          _metric('PSNR', image_shape, *psnr_gates),
          _metric('MSE', image_shape, mse_gate),
          _metric('MeanImagePSNR', image_shape),
          _metric('SSIM', image_shape),
      ])],
      options=tfma.Options(include_default_metrics={'value': False}))


# Which config field each gate of `make_eval_config` comes from, by (metric,
# per-slice or overall, value or change threshold): what a failure names.
_GATE_FIELDS = {
    ('psnr', False, 'value'): 'thresholds.min_psnr_db',
    ('psnr', False, 'change'): 'thresholds.max_psnr_drop_db',
    ('psnr', True, 'change'): 'thresholds.max_digit_psnr_drop_db',
    ('mse', False, 'value'): 'thresholds.max_mse',
}
_UNITS = {'psnr': ' dB'}


def _bound(value_threshold) -> str:
  """'>= 24.0' or '<= 0.004': the side of a value threshold that is set."""
  if value_threshold.HasField('lower_bound'):
    return f'>= {value_threshold.lower_bound.value:g}'
  return f'<= {value_threshold.upper_bound.value:g}'


def _slice_name(slice_key) -> str:
  """'' for the whole split, 'digit 3: ' for a per-digit slice."""
  columns = [column for column in slice_key.single_slice_keys]
  if not columns:
    return ''
  return ', '.join(f'{SLICE_FEATURE} {column.int64_value}' if column.HasField(
      'int64_value') else f'{column.column} {column.bytes_value.decode()}'
                   for column in columns) + ': '


def describe_failures(validation_result) -> List[str]:
  """One line per failed gate of a TFMA ValidationResult, with the numbers
  and the config field that sets the bound, e.g. 'psnr 15.21 dB, needs >= 16
  (thresholds.min_psnr_db)'."""
  lines = []
  for per_slice in validation_result.metric_validations_per_slice:
    where = _slice_name(per_slice.slice_key)
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
