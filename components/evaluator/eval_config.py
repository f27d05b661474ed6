"""The TFMA EvalConfig: reconstruction metrics, slices and push thresholds."""

import tensorflow_model_analysis as tfma

from components import features
from components.evaluator import metrics
from components.trainer import export
import pipeline_config

LABEL_KEY = features.CLEAN  # The clean image: what the model must reconstruct.
SLICE_FEATURE = features.LABEL  # The digit: metrics are also reported per digit.


def _metric(class_name: str, threshold=None) -> tfma.MetricConfig:
  config = tfma.MetricConfig(class_name=class_name, module=metrics.METRICS_MODULE)
  if threshold is not None:
    config.threshold.CopyFrom(threshold)
  return config


def make_eval_config(thresholds: pipeline_config.ThresholdConfig) -> tfma.EvalConfig:
  """Overall and per-digit MSE, PSNR, mean-image PSNR and SSIM; the candidate
  is blessed only if its PSNR and MSE pass the value thresholds and its PSNR
  is not below the latest blessed model's by more than the allowed drop."""
  psnr_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': thresholds.min_psnr_db}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -thresholds.max_psnr_drop_db}))
  mse_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          upper_bound={'value': thresholds.max_mse}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name=export.EXAMPLES_SIGNATURE,
                                  label_key=LABEL_KEY,
                                  prediction_key=export.OUTPUT_KEY)],
      slicing_specs=[tfma.SlicingSpec(),
                     tfma.SlicingSpec(feature_keys=[SLICE_FEATURE])],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          _metric('PSNR', psnr_threshold),
          _metric('MSE', mse_threshold),
          _metric('MeanImagePSNR'),
          _metric('SSIM'),
      ])],
      options=tfma.Options(include_default_metrics={'value': False}))
