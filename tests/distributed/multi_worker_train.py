"""One Trainer worker of the multi-worker test (run as a separate process).

Usage: python -m tests.distributed.multi_worker_train DATA_GLOB OUT_DIR
with TF_CONFIG set by the test.
"""

import json
import os
import sys

from components.common import dataset_info
from components.trainer import run_fn as run_fn_lib
from components.trainer import settings
from components.trainer import strategy

REPORT_FILENAME = 'worker_report.json'


class _FnArgs:
  """The FnArgs fields run_fn reads."""

  def __init__(self, files, out_dir):
    self.train_files = [files]
    self.eval_files = [files]
    self.serving_model_dir = os.path.join(out_dir, 'serving_model_dir')
    self.model_run_dir = os.path.join(out_dir, 'model_run_dir')
    # 64 images, 8 per replica, one epoch; no TFX import in the workers.
    self.custom_config = {
        run_fn_lib.TRAINING_KEY: settings.TrainingSpec(
            architecture='unet', loss='bce', batch_size=8, learning_rate=1e-3,
            epochs=1, cache_budget_mb=0).to_json(),
        run_fn_lib.TRAIN_EXAMPLES_KEY: 64, run_fn_lib.EVAL_EXAMPLES_KEY: 64,
        run_fn_lib.DATASET_INFO_KEY: dataset_info.DatasetInfo(
            'mnist', (28, 28, 1), [str(digit) for digit in range(10)]).to_json()}


def main(files: str, out_dir: str) -> None:
  run_fn_lib.run_fn(_FnArgs(files, out_dir))
  os.makedirs(out_dir, exist_ok=True)
  placement = strategy.choose_placement()
  # A file, not stdout: gRPC may log after the last line at shutdown.
  with open(os.path.join(out_dir, REPORT_FILENAME), 'w') as report:
    json.dump({'placement': placement.description,
               'replicas': placement.strategy.num_replicas_in_sync,
               'chief': strategy.is_chief()}, report)


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2])
