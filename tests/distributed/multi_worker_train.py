"""One Trainer worker of the multi-worker test (run as a separate process).

Usage: python -m tests.distributed.multi_worker_train DATA_GLOB OUT_DIR
with TF_CONFIG set by the test.
"""

import json
import os
import sys

from components.trainer import run_fn as run_fn_lib
from components.trainer import strategy


class _FnArgs:
  """The FnArgs fields run_fn reads."""

  def __init__(self, files, out_dir):
    self.train_files = [files]
    self.eval_files = [files]
    self.train_steps = 4
    self.eval_steps = 1
    self.serving_model_dir = os.path.join(out_dir, 'serving_model_dir')
    self.model_run_dir = os.path.join(out_dir, 'model_run_dir')
    self.custom_config = {run_fn_lib.BATCH_SIZE_KEY: 8,
                          run_fn_lib.STEPS_PER_EPOCH_KEY: 2,
                          run_fn_lib.ARCHITECTURE_KEY: 'unet',
                          run_fn_lib.CACHE_KEY: False}


def main(files: str, out_dir: str) -> None:
  run_fn_lib.run_fn(_FnArgs(files, out_dir))
  placement = strategy.choose_placement()
  print(json.dumps({'placement': placement.description,
                    'replicas': placement.strategy.num_replicas_in_sync,
                    'chief': strategy.is_chief()}), flush=True)


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2])
