"""ServedModel: what the serving directory serves now, as the Evaluator's baseline.

It replaces TFX's `latest_blessed_model_resolver`. A Resolver compiles to a
`resolver` executor, which the open-source KFP v2 backend refuses ("resolver
executors not implemented", kubeflow/pipelines
`backend/src/v2/compiler/argocompiler/dag.go`); this is a plain container
task there, and a plain component locally. It also compares the candidate
with what is actually served, not with MLMD's record of the last blessing
(which differs when the serving dir was emptied, or filled by another
pipeline root). Its result depends on the world outside the pipeline root,
so the runners never serve it from cache (pipeline.NEVER_CACHED_NODES).
"""

from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import channel
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components.served_model import executor

MODEL_KEY = executor.MODEL_KEY
SERVING_DIR_KEY = executor.SERVING_DIR_KEY


class ServedModelSpec(component_spec.ComponentSpec):
  """No inputs; the serving dir as a parameter; one Model out."""
  PARAMETERS = {SERVING_DIR_KEY: component_spec.ExecutionParameter(type=str)}
  INPUTS = {}
  OUTPUTS = {MODEL_KEY: component_spec.ChannelParameter(
      type=standard_artifacts.Model)}


class ServedModel(base_component.BaseComponent):
  """Outputs the newest complete version of a serving dir as a Model
  (empty when nothing is served)."""

  SPEC_CLASS = ServedModelSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, serving_dir: str):
    """Creates the component.

    Args:
      serving_dir: The Pusher's base directory (a path or a bucket URI).
    """
    super().__init__(spec=ServedModelSpec(
        serving_dir=serving_dir,
        model=channel.Channel(type=standard_artifacts.Model)))
