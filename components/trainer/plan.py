"""How many epochs and steps the Trainer runs: one plan, from the global batch.

Kept free of TensorFlow (the benchmarks plan without it). `run_fn` plans
when it runs, from the split sizes the examples record and the global batch
of the strategy it finds (N replicas take N times fewer steps for the same
epochs), and builds its learning-rate schedule for exactly the steps of that
plan.
"""

import dataclasses
import math
from typing import Optional


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
  """Keras `fit` arguments: `epochs` epochs of `steps_per_epoch` steps.

  Attributes:
    epochs: Number of epochs (0: no training).
    steps_per_epoch: Optimisation steps in each epoch.
  """
  epochs: int
  steps_per_epoch: int

  @property
  def total_steps(self) -> int:
    """The optimisation steps actually run: what the schedule must span."""
    return self.epochs * self.steps_per_epoch


def steps_per_pass(examples: int, global_batch: int) -> int:
  """Steps of `global_batch` images that cover `examples` once (last partial)."""
  if examples <= 0 or global_batch <= 0:
    raise ValueError(f'examples and global_batch must be positive, got '
                     f'{examples} and {global_batch}')
  return math.ceil(examples / global_batch)


def plan_training(train_examples: int, global_batch: int, epochs: int,
                  max_steps: Optional[int] = None) -> TrainingPlan:
  """The epochs and steps that train `epochs` passes of `train_examples`.

  Args:
    train_examples: Images in the train split.
    global_batch: Images per step over all replicas.
    epochs: Passes over the train split (positive: TrainingSpec checks it).
    max_steps: Cap on the total steps (None: no cap). Under the cap the plan
      runs as many steps as it can in whole epochs of equal length, never
      more than the cap: ceil(cap / pass) epochs of floor(cap / epochs) steps.

  Returns:
    The plan; `total_steps` is exactly what `fit` will run.
  """
  per_pass = steps_per_pass(train_examples, global_batch)
  if max_steps is None or max_steps >= epochs * per_pass:
    return TrainingPlan(epochs, per_pass)
  if max_steps <= 0:
    return TrainingPlan(0, per_pass)
  capped_epochs = math.ceil(max_steps / per_pass)
  return TrainingPlan(capped_epochs, max_steps // capped_epochs)
