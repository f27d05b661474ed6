"""Trainer: TFX's Trainer with this project's executor (components/trainer/executor.py).

Same spec, inputs, outputs and `run_fn` as `tfx.components.Trainer`; only the
executor differs, so that `run_fn` learns the noise settings recorded on its
examples (needed by `training.fresh_noise`).
"""

from tfx.components.trainer import component as tfx_trainer
from tfx.dsl.components.base import executor_spec

from components.trainer import executor


class Trainer(tfx_trainer.Trainer):
  """TFX's Trainer; its executor adds the examples' noise spec to custom_config."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
