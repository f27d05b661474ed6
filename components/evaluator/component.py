"""The Evaluator component with the served-baseline executor (executor.py)."""

from tfx.components import Evaluator
from tfx.dsl.components.base import executor_spec

from components.evaluator import executor


class ServedBaselineEvaluator(Evaluator):
  """TFX's Evaluator; an empty baseline Model means "nothing served yet"."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
