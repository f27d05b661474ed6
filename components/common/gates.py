"""The push gate, one row per threshold: what the Evaluator checks and what a
failure says.

eval_config.make_eval_config builds the TFMA thresholds from these rows,
evaluation.describe_failures finds the row of each failed threshold to
describe it, and applied_bounds reads the bounds of an EvalConfig back for
the report page, so a gate is added, or its wording changed, here alone. Each row
names the ThresholdSpec field (components/evaluator/settings.py) that sets its
bound; that field set to None turns the gate off. TF-free, and below the
components: the report and the CLI describe failures without the Evaluator.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

# Kinds of gate: a bound on the candidate's value, or on its drop against
# the baseline (the latest blessed model; skipped without one).
AT_LEAST = 'at_least'
AT_MOST = 'at_most'
MAX_DROP = 'max_drop'
# The configuration's section of the threshold fields, as failures name them.
SECTION = 'thresholds'
# Units of the metrics' values in failure lines, by metric key.
UNITS = {'psnr': ' dB'}


@dataclasses.dataclass(frozen=True)
class Gate:
  """One threshold of the push gate.

  Attributes:
    metric_class: The metric's class in components/common/metrics.py (the
      EvalConfig's `class_name`).
    metric_key: The name TFMA reports the metric's values under.
    field: The ThresholdSpec field that sets the bound (set to None: the
      gate is off).
    kind: AT_LEAST or AT_MOST (the candidate's value), or MAX_DROP (how far
      below the baseline's value on the same slice it may be).
    per_class: On each class's slice; else on the whole test split.
  """
  metric_class: str
  metric_key: str
  field: str
  kind: str
  per_class: bool = False

  @property
  def is_change(self) -> bool:
    """Whether the gate compares with the baseline (a TFMA change threshold)."""
    return self.kind == MAX_DROP


GATES: Tuple[Gate, ...] = (
    Gate('PSNR', 'psnr', 'min_psnr_db', AT_LEAST),
    Gate('PSNR', 'psnr', 'max_psnr_drop_db', MAX_DROP),
    Gate('PSNR', 'psnr', 'max_class_psnr_drop_db', MAX_DROP, per_class=True),
    Gate('MSE', 'mse', 'max_mse', AT_MOST),
)


def find(metric_key: str, per_class: bool, is_change: bool) -> Optional[Gate]:
  """The gate of a failed threshold (None: not a gate of this table)."""
  for gate in GATES:
    if (gate.metric_key, gate.per_class, gate.is_change) == (
        metric_key, per_class, is_change):
      return gate
  return None


def setting(gate: Gate) -> str:
  """The configuration field that sets the gate's bound: 'thresholds.max_mse'."""
  return f'{SECTION}.{gate.field}'


def describe_bound(gate: Gate, bound: float) -> str:
  """What the gate asks, in words: 'psnr >= 24 dB', 'mse <= 0.004', 'psnr
  at most 0.5 dB below the last blessed model's, on each class', 'psnr no
  lower than the last blessed model's'."""
  unit = UNITS.get(gate.metric_key, '')
  if gate.kind == AT_LEAST:
    return f'{gate.metric_key} >= {bound:g}{unit}'
  if gate.kind == AT_MOST:
    return f'{gate.metric_key} <= {bound:g}{unit}'
  where = ', on each class' if gate.per_class else ''
  if bound == 0:
    return f"{gate.metric_key} no lower than the last blessed model's{where}"
  return (f"{gate.metric_key} at most {bound:g}{unit} below the last blessed "
          f"model's{where}")


def _bounds_of(threshold) -> List[Tuple[str, float]]:
  """[(kind, bound)] that a TFMA MetricThreshold holds (the inverse of the
  Evaluator's eval_config._threshold)."""
  found = []
  if threshold.HasField('value_threshold'):
    bounds = threshold.value_threshold
    if bounds.HasField('lower_bound'):
      found.append((AT_LEAST, bounds.lower_bound.value))
    if bounds.HasField('upper_bound'):
      found.append((AT_MOST, bounds.upper_bound.value))
  if threshold.HasField('change_threshold'):
    found.append((MAX_DROP, -threshold.change_threshold.absolute.value))
  return found


def applied_bounds(eval_config) -> Dict[str, float]:
  """{ThresholdSpec field: bound} of every gate of this table that a TFMA
  EvalConfig applies: the bounds the Evaluator checked (its config read
  back), for the report to show. A gate that is off, or that was dropped for
  a dataset without labels, is not in it.

  Args:
    eval_config: A tensorflow_model_analysis EvalConfig (read as a message:
      no TFMA import here).
  """
  bounds = {}
  for metrics_spec in eval_config.metrics_specs:
    for metric in metrics_spec.metrics:
      for per_slice in metric.per_slice_thresholds:
        # The per-class gates are the ones on slices by a feature.
        per_class = any(spec.feature_keys for spec in per_slice.slicing_specs)
        for kind, bound in _bounds_of(per_slice.threshold):
          for gate in GATES:
            if (gate.metric_class, gate.kind, gate.per_class) == (
                metric.class_name, kind, per_class):
              bounds[gate.field] = bound + 0.0  # -0.0 (a drop of 0) as 0.0.
  return bounds


def describe_failure(where: str, metric_key: str, is_change: bool,
                     value: float, threshold) -> str:
  """The line of a failed threshold, naming the setting of its gate.

  Args:
    where: '' for the whole split, or the slice's name and ': ' ('class 3: ').
    metric_key: The metric (its TFMA key's name).
    is_change: Whether the threshold compares with the baseline.
    value: The metric's value; for a change threshold, its change.
    threshold: The TFMA MetricThreshold it failed (its bound is read from it).

  Returns:
    e.g. 'psnr 15.21 dB, needs >= 16 dB (thresholds.min_psnr_db)'.
  """
  gate = find(metric_key, bool(where), is_change)
  field = setting(gate) if gate else 'a threshold'
  unit = UNITS.get(metric_key, '')
  if is_change:
    allowed = -threshold.change_threshold.absolute.value
    return (f'{where}{metric_key} {value:+.2f}{unit} against the last blessed '
            f'model, more than the {allowed:g}{unit} drop allowed ({field})')
  bounds = threshold.value_threshold
  bound = (f'>= {bounds.lower_bound.value:g}' if bounds.HasField('lower_bound')
           else f'<= {bounds.upper_bound.value:g}')
  return f'{where}{metric_key} {value:.4g}{unit}, needs {bound}{unit} ({field})'
