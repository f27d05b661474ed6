"""ServingCheck: the candidate is loaded and answers as a server would, before any push.

TFX's InfraValidator does this job by starting TF Serving (a binary or a
Docker container the pipeline's image does not carry) and cannot be
compiled for Kubeflow Pipelines v2 at all: TFX's v2 step builder raises
NotImplementedError for it (tfx/orchestration/kubeflow/v2/step_builder.py;
tensorflow/tfx#5512 asks for that support). This component runs the same
check on every orchestrator, with no server: it loads the exported
SavedModel in a fresh Python process (probe.py) as a server would, sends
canary requests from a few test examples to every signature, and writes a
standard `InfraBlessing` as InfraValidator writes it (custom property
`blessed` 1/0, a `has_model` stamped copy of the model with
`assets.extra/tf_serving_warmup_requests`). TFX's Pusher refuses an
unblessed InfraBlessing (`CheckBlessing`, tfx/components/pusher/executor.py)
and ours pushes the stamped copy (components/pusher/executor.py).
"""

from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import channel
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components.serving_check import executor

MODEL_KEY = executor.MODEL_KEY
MODEL_BLESSING_KEY = executor.MODEL_BLESSING_KEY
EXAMPLES_KEY = executor.EXAMPLES_KEY
BLESSING_KEY = executor.BLESSING_KEY
SPLIT_KEY = executor.SPLIT_KEY
CANARIES_KEY = executor.CANARIES_KEY
TIMEOUT_KEY = executor.TIMEOUT_KEY


class ServingCheckSpec(component_spec.ComponentSpec):
  """The Trainer's model, the Evaluator's blessing and the noisy examples in;
  an InfraBlessing out."""
  PARAMETERS = {
      SPLIT_KEY: component_spec.ExecutionParameter(type=str),
      CANARIES_KEY: component_spec.ExecutionParameter(type=int),
      TIMEOUT_KEY: component_spec.ExecutionParameter(type=int),
  }
  INPUTS = {
      MODEL_KEY: component_spec.ChannelParameter(type=standard_artifacts.Model),
      MODEL_BLESSING_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelBlessing),
      EXAMPLES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples),
  }
  OUTPUTS = {BLESSING_KEY: component_spec.ChannelParameter(
      type=standard_artifacts.InfraBlessing)}


class ServingCheck(base_component.BaseComponent):
  """Blesses a model for serving when every signature answers its canaries."""

  SPEC_CLASS = ServingCheckSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: channel.BaseChannel,
               model_blessing: channel.BaseChannel,
               examples: channel.BaseChannel, split: str = 'test',
               canaries: int = executor.DEFAULT_CANARIES,
               timeout_s: int = executor.DEFAULT_TIMEOUT_S):
    """Creates the component.

    Args:
      model: The Trainer's Model.
      model_blessing: The Evaluator's ModelBlessing (an unblessed model is
        not probed, and not blessed).
      examples: NoiseTransform's noisy Examples.
      split: The split whose first examples are the canaries.
      canaries: How many examples each signature is sent.
      timeout_s: Seconds the probe process may take, loading included.
    """
    super().__init__(spec=ServingCheckSpec(
        model=model, model_blessing=model_blessing, examples=examples,
        split=split, canaries=canaries, timeout_s=timeout_s,
        blessing=channel.Channel(type=standard_artifacts.InfraBlessing)))
