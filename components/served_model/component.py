"""ServedModel: what the serving directory serves now, as the Evaluator's baseline.

It replaces TFX's `latest_blessed_model_resolver`. A Resolver compiles to a
`resolver` executor, which the open-source KFP v2 backend refuses ("resolver
executors not implemented", kubeflow/pipelines
`backend/src/v2/compiler/argocompiler/dag.go`); this is a plain container
task there, and a plain component locally. It also compares the candidate
with what is actually served, not with MLMD's record of the last blessing
(which differs when the serving dir was emptied, or filled by another
pipeline root). Its result depends on the world outside the pipeline root.
A runner that looks at the serving dir when a run starts (the local one)
passes what it found as `expected_fingerprint` (version and SHA-256 of its
files): that parameter is part of TFX's cache key, so the node, and the
Evaluator and report after it, come from cache exactly while the same model
is served, and the executor fails if what it copies is not that model. A
runner that cannot know it (Kubeflow: the package runs later, many times)
passes none and never serves the node from cache
(pipeline.never_cached_nodes).
"""

from typing import Optional

from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import channel
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components.served_model import executor

MODEL_KEY = executor.MODEL_KEY
SERVING_DIR_KEY = executor.SERVING_DIR_KEY
EXPECTED_FINGERPRINT_KEY = executor.EXPECTED_FINGERPRINT_KEY


class ServedModelSpec(component_spec.ComponentSpec):
  """No inputs; the serving dir (and what it served at the start) as
  parameters; one Model out."""
  PARAMETERS = {
      SERVING_DIR_KEY: component_spec.ExecutionParameter(type=str),
      EXPECTED_FINGERPRINT_KEY: component_spec.ExecutionParameter(
          type=str, optional=True),
  }
  INPUTS = {}
  OUTPUTS = {MODEL_KEY: component_spec.ChannelParameter(
      type=standard_artifacts.Model)}


class ServedModel(base_component.BaseComponent):
  """Outputs the newest complete version of a serving dir as a Model
  (empty when nothing is served)."""

  SPEC_CLASS = ServedModelSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, serving_dir: str,
               expected_fingerprint: Optional[str] = None):
    """Creates the component.

    Args:
      serving_dir: The Pusher's base directory (a path or a bucket URI).
      expected_fingerprint: `serving_dir.served_fingerprint(serving_dir)`
        when the run started, or None: whatever is served when it runs.
    """
    super().__init__(spec=ServedModelSpec(
        serving_dir=serving_dir,
        expected_fingerprint=expected_fingerprint,
        model=channel.Channel(type=standard_artifacts.Model)))
