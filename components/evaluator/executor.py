"""TFX's Evaluator, told when its baseline holds no model.

The baseline comes from ServedModel, which outputs an empty Model artifact
while nothing is served. TFX's Evaluator decides "no baseline" by the
*absence* of the baseline input (tfx/components/evaluator/executor.py:
`has_baseline = bool(input_dict.get(BASELINE_MODEL_KEY))`, then the change
thresholds are dropped: rubber stamp). So an empty baseline is removed from
the inputs here and the first model is gated on value thresholds alone.
"""

from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_component_specs

from components.served_model import executor as served_model_executor

BASELINE_MODEL_KEY = standard_component_specs.BASELINE_MODEL_KEY


class Executor(evaluator_executor.Executor):
  """Evaluates against the served model, or on values alone when none is."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    baseline = input_dict.get(BASELINE_MODEL_KEY) or []
    if baseline and not served_model_executor.holds_model(baseline[0]):
      logging.info('No model is served yet: no baseline, value thresholds only')
      input_dict = {key: artifacts for key, artifacts in input_dict.items()
                    if key != BASELINE_MODEL_KEY}
    super().Do(input_dict, output_dict, exec_properties)
