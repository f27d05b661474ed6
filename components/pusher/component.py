"""AtomicPusher: TFX's Pusher with the atomic filesystem executor (executor.py)."""

from tfx.components import Pusher
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class AtomicPusher(Pusher):
  """Pushes a blessed model as a new, atomically published version directory."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
