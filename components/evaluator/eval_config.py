"""The TFMA EvalConfig: reconstruction metrics, slices and push thresholds."""

import tensorflow_model_analysis as tfma

from components import features
from components.evaluator import metrics
from components.trainer import export
import pipeline_config

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


def _metric(class_name: str, *gates: tfma.PerSliceMetricThreshold) -> tfma.MetricConfig:
  return tfma.MetricConfig(class_name=class_name, module=metrics.METRICS_MODULE,
                           per_slice_thresholds=gates)


def _no_drop_below_baseline(max_drop_db: float) -> tfma.GenericChangeThreshold:
  return tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.HIGHER_IS_BETTER,
      absolute={'value': -max_drop_db})


def make_eval_config(thresholds: pipeline_config.ThresholdConfig) -> tfma.EvalConfig:
  """Overall and per-digit MSE, PSNR, mean-image PSNR and SSIM, and the gate.

  The candidate is blessed only if, over the whole test split, its PSNR and
  MSE pass the value thresholds and its PSNR is not below the baseline's (the
  served model's) by more than `max_psnr_drop_db`; and, unless
  `max_digit_psnr_drop_db` is None, no digit's PSNR is below that digit's
  under the baseline by more than that many dB.

  `thresholds` is duck-typed: any object with the fields of
  pipeline_config.ThresholdConfig. Without a baseline (the first run) TFX's
  Evaluator skips change thresholds: the values alone gate.
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
          _metric('PSNR', *psnr_gates),
          _metric('MSE', mse_gate),
          _metric('MeanImagePSNR'),
          _metric('SSIM'),
      ])],
      options=tfma.Options(include_default_metrics={'value': False}))
