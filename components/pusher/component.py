"""AtomicPusher: TFX's Pusher with the atomic filesystem executor (executor.py),
the baseline the candidate was evaluated against (for compare-and-push), the
Evaluator's evaluation and the examples it ran on (the push record's metrics
and what they were measured on, components/common/push_records.py) as optional
inputs."""

from typing import Optional

from tfx import types
from tfx.components import Pusher
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import component_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from components.pusher import executor

BASELINE_MODEL_KEY = executor.BASELINE_MODEL_KEY
EVALUATION_KEY = executor.EVALUATION_KEY
EXAMPLES_KEY = executor.EXAMPLES_KEY


class AtomicPusherSpec(standard_component_specs.PusherSpec):
  """TFX's Pusher spec, plus the optional baseline (ServedModel's output), the
  evaluation of the model pushed and the examples it was evaluated on."""
  INPUTS = {
      **standard_component_specs.PusherSpec.INPUTS,
      BASELINE_MODEL_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Model, optional=True),
      EVALUATION_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelEvaluation, optional=True),
      EXAMPLES_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
  }


class AtomicPusher(Pusher):
  """Pushes a blessed model as a new, atomically published version directory."""

  SPEC_CLASS = AtomicPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               push_destination: pusher_pb2.PushDestination,
               baseline_model: Optional[types.BaseChannel] = None,
               evaluation: Optional[types.BaseChannel] = None,
               examples: Optional[types.BaseChannel] = None,
               infra_blessing: Optional[types.BaseChannel] = None):
    """Creates the component.

    Args:
      model: The candidate (the Trainer's Model).
      model_blessing: The Evaluator's blessing of it.
      push_destination: Where to push (a filesystem base directory).
      baseline_model: ServedModel's Model, which the Evaluator compared the
        candidate with: the push happens only while it is still served.
      evaluation: The Evaluator's evaluation: the push record's metrics
        (without it the record has none).
      examples: The examples the Evaluator ran on (NoiseTransform's): the
        push record's dataset, image shape and noise (without them it names
        none).
      infra_blessing: ServingCheck's InfraBlessing: an unblessed one is not
        pushed, a stamped model (with warm-up requests) is pushed instead.
    """
    # TFX's Pusher.__init__ builds its own spec class; the base component
    # takes any spec.
    base_component.BaseComponent.__init__(self, spec=AtomicPusherSpec(
        model=model, model_blessing=model_blessing,
        push_destination=push_destination, baseline_model=baseline_model,
        evaluation=evaluation, examples=examples, infra_blessing=infra_blessing,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
