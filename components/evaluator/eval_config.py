"""The TFMA EvalConfig: reconstruction metrics, slices and push thresholds.

`make_eval_config` builds it from the thresholds when the pipeline is built;
`for_dataset` completes it for the examples when the Evaluator runs (their
image shape, and whether they have classes to slice by), since only the
examples' DatasetInfo knows those.
"""

import json
from typing import Any

from tensorflow_model_analysis.proto import config_pb2

from components.common import dataset_info as dataset_info_lib
from components.common import evaluation
from components.common import names
from components.common import metrics
from components.common import saved_model

LABEL_KEY = names.CLEAN  # The clean image: what the model must reconstruct.


OVERALL = config_pb2.SlicingSpec()
# Metrics are also reported per class.
PER_CLASS = config_pb2.SlicingSpec(feature_keys=[evaluation.SLICE_FEATURE])


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
      model_specs=[config_pb2.ModelSpec(signature_name=saved_model.EXAMPLES_SIGNATURE,
                                  label_key=LABEL_KEY,
                                  prediction_key=saved_model.OUTPUT_KEY)],
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
