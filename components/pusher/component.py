"""AtomicPusher: TFX's Pusher with the atomic filesystem executor (executor.py)
and the Evaluator's evaluation as an optional input (the push record's
metrics, components/push_records.py)."""

from typing import Optional

from tfx import types
from tfx.components import Pusher
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import component_spec
from tfx.types import standard_artifacts

from components.pusher import executor

EVALUATION_KEY = executor.EVALUATION_KEY


class AtomicPusherSpec(Pusher.SPEC_CLASS):
  """TFX's PusherSpec plus the evaluation of the model pushed."""
  INPUTS = {
      **Pusher.SPEC_CLASS.INPUTS,
      EVALUATION_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ModelEvaluation, optional=True),
  }


class AtomicPusher(Pusher):
  """Pushes a blessed model as a new, atomically published version directory."""

  SPEC_CLASS = AtomicPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               push_destination: pusher_pb2.PushDestination,
               evaluation: Optional[types.BaseChannel] = None,
               infra_blessing: Optional[types.BaseChannel] = None):
    """Creates the component.

    Args:
      model: The Trainer's model.
      model_blessing: The Evaluator's blessing of it.
      push_destination: The serving dir (a filesystem destination).
      evaluation: The Evaluator's evaluation: the push record's metrics
        (without it the record has none).
      infra_blessing: ServingCheck's InfraBlessing: an unblessed one is not
        pushed, a stamped model (with warm-up requests) is pushed instead.
    """
    # Pusher.__init__ builds TFX's own spec: this one is built here instead.
    base_component.BaseComponent.__init__(self, spec=AtomicPusherSpec(
        model=model, model_blessing=model_blessing,
        push_destination=push_destination, evaluation=evaluation,
        infra_blessing=infra_blessing,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
