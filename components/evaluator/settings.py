"""The push gate's settings: their one definition (fields, units, defaults,
checks).

The Evaluator's own value type (no TensorFlow import), which the CLI's
configuration takes whole as its `thresholds` section (naming a refused field
`thresholds.<field>`). eval_config.make_eval_config turns it into the TFMA
thresholds, gate by gate as components/common/gates.py lists them.
"""

import dataclasses
import math
from typing import Optional

from components.common import setting_specs


class InvalidThresholdSpec(setting_specs.InvalidSetting):
  """A threshold setting is invalid; `field` names it."""

  KIND = 'threshold'


@dataclasses.dataclass(frozen=True)
class ThresholdSpec:
  """Gates of the push: a candidate below them is not blessed.

  Attributes:
    min_psnr_db: Lowest acceptable test-set PSNR, in dB, from the mean MSE.
    max_mse: Highest acceptable test-set mean squared error (pixels in [0, 1]).
    max_psnr_drop_db: Largest PSNR drop, in dB, tolerated against the latest
      blessed model (0: the candidate must not be worse).
    max_class_psnr_drop_db: Largest PSNR drop, in dB, tolerated on any one
      class (the test images of that label; MNIST's classes are its digits)
      against the latest blessed model's PSNR on that class; None turns the
      per-class gate off (a dataset without labels has none). A candidate
      better overall but much worse on one class is not blessed.
  """
  min_psnr_db: float = 24.0
  max_mse: float = 0.004
  max_psnr_drop_db: float = 0.0
  max_class_psnr_drop_db: Optional[float] = 0.5

  def __post_init__(self):
    require = InvalidThresholdSpec.require
    require(math.isfinite(self.min_psnr_db), 'min_psnr_db',
            f'must be a finite number of dB, got {self.min_psnr_db}')
    require(math.isfinite(self.max_mse) and self.max_mse > 0, 'max_mse',
            f'must be positive, got {self.max_mse}')
    require(math.isfinite(self.max_psnr_drop_db) and self.max_psnr_drop_db >= 0,
            'max_psnr_drop_db', f'must be >= 0 dB, got {self.max_psnr_drop_db}')
    require(self.max_class_psnr_drop_db is None or (
        math.isfinite(self.max_class_psnr_drop_db)
        and self.max_class_psnr_drop_db >= 0), 'max_class_psnr_drop_db',
            f'must be >= 0 dB or None, got {self.max_class_psnr_drop_db}')
