"""The training settings: their one definition (fields, units, defaults, checks).

The Trainer's own value type, so that its code (and cache fingerprint) does
not depend on the CLI's configuration module, which takes it whole as its
`training` section (naming a refused field `training.<field>`). The pipeline
passes it to the Trainer as one JSON value of its custom_config, which run_fn
reads back (run_fn.read_custom_config).
"""

import dataclasses
import math
from typing import Optional

from components.common import names
from components.common import setting_specs
from components.trainer import architectures


class InvalidTrainingSpec(setting_specs.InvalidSetting):
  """A training setting is invalid; `field` names it."""

  KIND = 'training'


@dataclasses.dataclass(frozen=True)
class TrainingSpec(setting_specs.JsonSpec):
  """How the denoising autoencoder is trained.

  Attributes:
    architecture: A model architecture registered in
      components/trainer/architectures.py.
    loss: 'mse' (mean squared error), 'bce' (binary cross-entropy) or 'l1'
      (mean absolute error) on pixels in [0, 1]. It picks the model's output
      head: a linear output clipped to [0, 1] for 'mse' and 'l1', a sigmoid
      for 'bce' (see components/trainer/model.py).
    epochs: Passes over the `train` split.
    batch_size: Images per training step (on each replica); docs/benchmarks.md
      compares batch sizes and losses.
    learning_rate: Adam's (peak) learning rate.
    lr_schedule: 'cosine' (decays the rate to 2% of `learning_rate` over all
      training steps) or 'constant'.
    max_train_steps: Stop after this many steps in total (None: no cap;
      0 exports the untrained model, to test the push gate).
    seed: Seed of weight initialisation and shuffling.
    xla: Compile the training step with XLA.
    mixed_precision: Compute in float16 on GPUs, bfloat16 on TPUs and on CPUs
      with native bfloat16 (AMX / AVX512-BF16), variables in float32; False:
      float32 everywhere.
    fresh_noise: Give every pass over the train split new noise, drawn in the
      Trainer with the settings NoiseTransform recorded on its examples (the
      first pass: NoiseTransform's own noisy images); False trains every epoch
      on NoiseTransform's one noisy copy. For models large enough to memorise
      that copy ('unet_large'); the default 'unet' gained nothing from it.
    cache_budget_mb: Memory, in MiB, the parsed train and eval examples may
      take to be kept in memory after the first pass; examples that need
      more are read from the records every pass through a shuffle buffer
      within the same budget (0: always stream). None: half the memory the
      Trainer finds (the machine's available memory, or its container's
      limit). The Trainer's log says which it chose.
  """
  architecture: str = setting_specs.option('unet', architectures.REGISTRY)
  loss: str = setting_specs.option('mse', names.LOSSES)
  epochs: int = 8
  batch_size: int = 32
  learning_rate: float = 2e-3
  lr_schedule: str = setting_specs.option('cosine', names.LR_SCHEDULES)
  max_train_steps: Optional[int] = None
  seed: int = 42
  xla: bool = False
  mixed_precision: bool = True
  fresh_noise: bool = False
  cache_budget_mb: Optional[int] = None

  def __post_init__(self):
    setting_specs.check_options(self, InvalidTrainingSpec)
    for name in ('epochs', 'batch_size'):
      InvalidTrainingSpec.require(getattr(self, name) > 0, name,
                                  f'must be positive, got {getattr(self, name)}')
    InvalidTrainingSpec.require(
        math.isfinite(self.learning_rate) and self.learning_rate > 0,
        'learning_rate', f'must be a positive number, got {self.learning_rate}')
    InvalidTrainingSpec.require(
        self.max_train_steps is None or self.max_train_steps >= 0,
        'max_train_steps', f'must be >= 0 or None, got {self.max_train_steps}')
    InvalidTrainingSpec.require(
        self.cache_budget_mb is None or self.cache_budget_mb >= 0,
        'cache_budget_mb', f'must be >= 0 or None, got {self.cache_budget_mb}')
