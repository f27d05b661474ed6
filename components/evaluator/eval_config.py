"""The TFMA EvalConfig: reconstruction metrics, slices and push thresholds.

`make_eval_config` builds it from the thresholds when the pipeline is built,
one TFMA threshold per row of the gate table (components/common/gates.py);
`for_dataset` completes it for the examples when the Evaluator runs (their
image shape, and whether they have classes to slice by), since only the
examples' DatasetInfo knows those.
"""

import json
from typing import Dict, List

from tensorflow_model_analysis.proto import config_pb2

from components.common import dataset_info as dataset_info_lib
from components.common import evaluation
from components.common import gates as gates_lib
from components.common import names
from components.common import metrics
from components.common import saved_model
from components.evaluator import settings

LABEL_KEY = names.CLEAN  # The clean image: what the model must reconstruct.


OVERALL = config_pb2.SlicingSpec()
# Metrics are also reported per class.
PER_CLASS = config_pb2.SlicingSpec(feature_keys=[evaluation.SLICE_FEATURE])


# The metrics computed, in the config's order (gated as gates.GATES says).
METRICS = ('PSNR', 'MSE', 'MeanImagePSNR', 'SSIM')


def _threshold(gate: gates_lib.Gate, bound: float, threshold) -> None:
  """Sets the TFMA form of one gate with its `bound` in a MetricThreshold."""
  if gate.kind == gates_lib.AT_LEAST:
    threshold.value_threshold.lower_bound.value = bound
  elif gate.kind == gates_lib.AT_MOST:
    threshold.value_threshold.upper_bound.value = bound
  else:  # MAX_DROP: no more than `bound` below the baseline.
    threshold.change_threshold.direction = (
        config_pb2.MetricDirection.HIGHER_IS_BETTER)
    threshold.change_threshold.absolute.value = -bound


def _gates_by_slice(class_name: str, thresholds: settings.ThresholdSpec
                    ) -> List[config_pb2.PerSliceMetricThreshold]:
  """The metric's gates that are on, one PerSliceMetricThreshold per slicing
  spec (its value and change bounds together).

  TFMA (0.52, `evaluators/metrics_validator.py`) applies a MetricConfig's
  plain `threshold` to *every* slice computed, the per-class ones included;
  per-slice thresholds say which slices each bound is for.
  """
  by_slice: Dict[bool, config_pb2.PerSliceMetricThreshold] = {}
  for gate in gates_lib.GATES:
    bound = getattr(thresholds, gate.field)
    if gate.metric_class != class_name or bound is None:
      continue
    if gate.per_class not in by_slice:
      by_slice[gate.per_class] = config_pb2.PerSliceMetricThreshold(
          slicing_specs=[PER_CLASS if gate.per_class else OVERALL])
    _threshold(gate, bound, by_slice[gate.per_class].threshold)
  return list(by_slice.values())


def make_eval_config(thresholds: settings.ThresholdSpec) -> config_pb2.EvalConfig:
  """Overall and per-class MSE, PSNR, mean-image PSNR and SSIM, and the gate.

  The candidate is blessed only if it passes every gate of gates.GATES that
  `thresholds` turns on: over the whole test split, its PSNR and MSE within
  their bounds and its PSNR not below the baseline's (the served model's) by
  more than `max_psnr_drop_db`; and, unless `max_class_psnr_drop_db` is
  None, no class's PSNR below that class's under the baseline by more than
  that many dB.

  Without a baseline (the first run) TFX's Evaluator skips change
  thresholds: the values alone gate. The Evaluator completes the config for
  its examples' dataset (for_dataset).
  """
  return config_pb2.EvalConfig(
      model_specs=[config_pb2.ModelSpec(signature_name=saved_model.EXAMPLES_SIGNATURE,
                                  label_key=LABEL_KEY,
                                  prediction_key=saved_model.OUTPUT_KEY)],
      slicing_specs=[OVERALL, PER_CLASS],
      metrics_specs=[config_pb2.MetricsSpec(metrics=[
          config_pb2.MetricConfig(
              class_name=class_name, module=metrics.METRICS_MODULE,
              per_slice_thresholds=_gates_by_slice(class_name, thresholds))
          for class_name in METRICS])],
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
