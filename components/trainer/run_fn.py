"""The TFX Trainer's entry point: trains the DAE (noisy -> clean) and exports it.

Used as ``Trainer(run_fn='components.trainer.run_fn.run_fn', ...)``: the
function is imported from the installed package, so no module file needs
packaging. Its settings come in ``custom_config`` under the keys below.
"""

import os
import shutil
import tempfile

from absl import logging
import keras
import tensorflow as tf

from components.trainer import data
from components.trainer import export
from components.trainer import model as model_lib
from components.trainer import multi_worker as multi_worker_lib
from components.trainer import strategy as strategy_lib

# custom_config keys.
ARCHITECTURE_KEY = 'architecture'
LOSS_KEY = 'loss'
BATCH_SIZE_KEY = 'batch_size'
LEARNING_RATE_KEY = 'learning_rate'
LR_SCHEDULE_KEY = 'lr_schedule'
STEPS_PER_EPOCH_KEY = 'steps_per_epoch'
SEED_KEY = 'seed'
XLA_KEY = 'xla'
MIXED_PRECISION_KEY = 'mixed_precision'
CACHE_KEY = 'cache'


def plan_epochs(train_steps: int, steps_per_epoch: int):
  """(epochs, steps per epoch) running exactly `train_steps` steps in total
  when they divide, else the largest whole number of full epochs (>= 1 step)."""
  steps_per_epoch = max(1, min(steps_per_epoch, train_steps))
  return max(1, train_steps // steps_per_epoch), steps_per_epoch


def run_fn(fn_args) -> None:
  """Trains and exports the model (TFX FnArgs in, SavedModel out).

  Args:
    fn_args: TFX FnArgs: train/eval files, train/eval steps, serving and
      model-run directories, custom_config (keys above).
  """
  config = fn_args.custom_config or {}
  batch_size = int(config.get(BATCH_SIZE_KEY, 128))
  seed = int(config.get(SEED_KEY, 42))
  keras.utils.set_random_seed(seed)
  placement = strategy_lib.choose_placement(
      allow_mixed_precision=bool(config.get(MIXED_PRECISION_KEY, True)))
  print(f'Trainer: {placement.description}, precision policy '
        f'{keras.mixed_precision.global_policy().name}', flush=True)
  global_batch = batch_size * placement.strategy.num_replicas_in_sync
  cache = bool(config.get(CACHE_KEY, True))
  loss_name = config.get(LOSS_KEY, 'bce')

  with placement.strategy.scope():
    model = model_lib.compile_model(
        model_lib.build_model(config.get(ARCHITECTURE_KEY, 'unet')),
        loss=loss_name,
        learning_rate=float(config.get(LEARNING_RATE_KEY, 1e-3)),
        jit_compile=bool(config.get(XLA_KEY, False)),
        schedule=config.get(LR_SCHEDULE_KEY, 'constant'),
        total_steps=int(fn_args.train_steps or 0))
  logging.info('Model %s: %d parameters', model.name, model.count_params())

  # Under MultiWorkerMirroredStrategy every worker runs this function and
  # takes part in saving; only the chief's copies are kept.
  chief = strategy_lib.is_chief()
  scratch = tempfile.mkdtemp(prefix='dae-worker-') if not chief else None
  log_dir = fn_args.model_run_dir if chief else scratch
  export_dir = fn_args.serving_model_dir if chief else os.path.join(scratch, 'model')
  train_steps = int(fn_args.train_steps or 0)
  multi_worker = isinstance(placement.strategy,
                            tf.distribute.MultiWorkerMirroredStrategy)
  if train_steps > 0:
    train_dataset = data.make_dataset(fn_args.train_files, global_batch,
                                      shuffle_seed=seed, repeat=True, cache=cache)
  if train_steps > 0 and multi_worker:
    loss = multi_worker_lib.train(model, placement.strategy, loss_name,
                                  train_dataset, train_steps, global_batch,
                                  log_dir)
    logging.info('Trained %d steps on several workers, last loss %.4f',
                 train_steps, loss)
  elif train_steps > 0:
    eval_dataset = data.make_dataset(fn_args.eval_files, global_batch,
                                     repeat=True, cache=cache)
    epochs, steps_per_epoch = plan_epochs(
        train_steps, int(config.get(STEPS_PER_EPOCH_KEY, train_steps)))
    model.fit(
        train_dataset,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_dataset,
        validation_steps=max(1, int(fn_args.eval_steps or 1)),
        callbacks=[
            keras.callbacks.BackupAndRestore(
                os.path.join(fn_args.model_run_dir, 'backup')),
            keras.callbacks.TensorBoard(log_dir=log_dir),
        ],
        verbose=2)
  else:
    logging.warning('train_steps is 0: exporting the untrained model')
  export.export_saved_model(model, export_dir)
  if chief:
    logging.info('Exported the SavedModel to %s', export_dir)
  else:
    shutil.rmtree(scratch, ignore_errors=True)

