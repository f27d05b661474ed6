"""AtomicPusher: TFX's Pusher with the atomic filesystem executor (executor.py)."""

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class AtomicPusher(tfx.components.Pusher):
  """Pushes a blessed model as a new, atomically published version directory."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
