"""The TFX Trainer's entry point: trains the DAE (noisy -> clean) and exports it.

Used as ``Trainer(run_fn='components.trainer.run_fn.run_fn', ...)``: the
function is imported from the installed package, so no module file needs
packaging. Its settings come in ``custom_config`` under the keys below, every
one of them required (the pipeline's configuration is their one source of
defaults; see `pipeline.pipeline.trainer_custom_config`).

Steps are planned here, not taken from TrainArgs: the number of replicas is
known only now, and an epoch is a pass over the train split at the *global*
batch (`batch_size` per replica times the replicas). TrainArgs records the
plan of one replica.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, Mapping, Optional

from absl import logging
import keras
import tensorflow as tf

from components import features
from components import progress
from components.noise_transform import noise
from components.trainer import callbacks as callbacks_lib
from components.trainer import data
from components.trainer import export
from components.trainer import model as model_lib
from components.trainer import multi_worker as multi_worker_lib
from components.trainer import plan as plan_lib
from components.trainer import strategy as strategy_lib

# custom_config keys, all required.
ARCHITECTURE_KEY = 'architecture'
LOSS_KEY = 'loss'
BATCH_SIZE_KEY = 'batch_size'  # Images per step on each replica.
LEARNING_RATE_KEY = 'learning_rate'
LR_SCHEDULE_KEY = 'lr_schedule'
EPOCHS_KEY = 'epochs'
TRAIN_EXAMPLES_KEY = 'train_examples'
EVAL_EXAMPLES_KEY = 'eval_examples'
MAX_TRAIN_STEPS_KEY = 'max_train_steps'  # None: no cap.
SEED_KEY = 'seed'
XLA_KEY = 'xla'
MIXED_PRECISION_KEY = 'mixed_precision'
# True: every pass over the train split gets new noise (see data.make_dataset).
FRESH_NOISE_KEY = 'fresh_noise'
REQUIRED_KEYS = (ARCHITECTURE_KEY, LOSS_KEY, BATCH_SIZE_KEY, LEARNING_RATE_KEY,
                 LR_SCHEDULE_KEY, EPOCHS_KEY, TRAIN_EXAMPLES_KEY,
                 EVAL_EXAMPLES_KEY, MAX_TRAIN_STEPS_KEY, SEED_KEY, XLA_KEY,
                 MIXED_PRECISION_KEY, FRESH_NOISE_KEY)
# Added by the Trainer's executor (components/trainer/executor.py), not by
# the pipeline: JSON of the noise settings NoiseTransform recorded on the
# examples, which FRESH_NOISE_KEY redraws.
NOISE_SPEC_KEY = 'noise_spec'
# Optional, not a pipeline setting: cache parsed images in memory (tests of
# several worker processes turn it off).
CACHE_KEY = 'cache'

# Held-out images shown denoised in TensorBoard after every epoch.
TENSORBOARD_IMAGES = 8

# What training actually used, read back from the model and optimizer, in
# the model-run directory (beside the TensorBoard logs).
SETTINGS_FILENAME = 'training_settings.json'


def read_custom_config(custom_config: Mapping[str, Any]) -> Dict[str, Any]:
  """The required settings; raises KeyError naming every missing key."""
  custom_config = custom_config or {}
  missing = [key for key in REQUIRED_KEYS if key not in custom_config]
  if missing:
    raise KeyError(f'Trainer custom_config lacks {missing}; run_fn needs '
                   f'all of {list(REQUIRED_KEYS)}')
  return dict(custom_config)


def fresh_noise_spec(config: Mapping[str, Any]) -> Optional[noise.NoiseSpec]:
  """The noise to redraw every pass (None: train on the records' noisy copy).

  Raises:
    ValueError: fresh noise is asked for, but the examples carry no settings.
  """
  if not config[FRESH_NOISE_KEY]:
    return None
  if NOISE_SPEC_KEY not in config:
    raise ValueError(
        'training.fresh_noise needs the noise settings NoiseTransform records '
        f'on its examples (property {features.NOISE_SPEC_PROPERTY!r}); the '
        "Trainer's examples carry none: they were not written by NoiseTransform, "
        'or the Trainer does not run components.trainer.executor.Executor')
  return noise.NoiseSpec.from_json(config[NOISE_SPEC_KEY])


def fit_verbosity(stream) -> int:
  """Keras `fit`'s verbose: a live bar within epochs on a terminal, one line
  per epoch elsewhere (logs), nothing when progress is off (--quiet)."""
  if not progress.enabled():
    return 0
  return 1 if hasattr(stream, 'isatty') and stream.isatty() else 2


def _learning_rate(model: keras.Model) -> float:
  return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def run_fn(fn_args) -> None:
  """Trains and exports the model (TFX FnArgs in, SavedModel out).

  Args:
    fn_args: TFX FnArgs: train/eval files, serving and model-run directories,
      custom_config (keys above).
  """
  config = read_custom_config(fn_args.custom_config)
  seed = int(config[SEED_KEY])
  keras.utils.set_random_seed(seed)
  placement = strategy_lib.choose_placement(
      allow_mixed_precision=bool(config[MIXED_PRECISION_KEY]))
  replicas = placement.strategy.num_replicas_in_sync
  global_batch = int(config[BATCH_SIZE_KEY]) * replicas
  plan = plan_lib.plan_training(
      int(config[TRAIN_EXAMPLES_KEY]), global_batch, int(config[EPOCHS_KEY]),
      config[MAX_TRAIN_STEPS_KEY])
  print(f'Trainer: {placement.description}, precision policy '
        f'{keras.mixed_precision.global_policy().name}; {plan.epochs} epoch(s) '
        f'of {plan.steps_per_epoch} steps at a global batch of {global_batch}',
        flush=True)
  cache = bool(config.get(CACHE_KEY, True))
  loss_name = config[LOSS_KEY]

  with placement.strategy.scope():
    model = model_lib.compile_model(
        model_lib.build_model(config[ARCHITECTURE_KEY], loss_name,
                              data.IMAGE_SHAPE),
        loss=loss_name,
        learning_rate=float(config[LEARNING_RATE_KEY]),
        jit_compile=bool(config[XLA_KEY]),
        schedule=config[LR_SCHEDULE_KEY],
        total_steps=plan.total_steps)
  logging.info('Model %s: %d parameters', model.name, model.count_params())
  first_learning_rate = _learning_rate(model)

  # Under MultiWorkerMirroredStrategy every worker runs this function and
  # takes part in saving; only the chief's copies are kept.
  chief = strategy_lib.is_chief()
  scratch = tempfile.mkdtemp(prefix='dae-worker-') if not chief else None
  log_dir = fn_args.model_run_dir if chief else scratch
  export_dir = fn_args.serving_model_dir if chief else os.path.join(scratch, 'model')
  multi_worker = isinstance(placement.strategy,
                            tf.distribute.MultiWorkerMirroredStrategy)
  if plan.total_steps > 0:
    train_dataset = data.make_dataset(fn_args.train_files, global_batch,
                                      shuffle_seed=seed, repeat=True, cache=cache,
                                      fresh_noise=fresh_noise_spec(config))
  fit_start = time.monotonic()
  if plan.total_steps > 0 and multi_worker:
    loss = multi_worker_lib.train(model, placement.strategy, loss_name,
                                  train_dataset, plan.total_steps, global_batch,
                                  log_dir)
    logging.info('Trained %d steps on several workers, last loss %.4f',
                 plan.total_steps, loss)
  elif plan.total_steps > 0:
    eval_dataset = data.make_dataset(fn_args.eval_files, global_batch,
                                     repeat=True, cache=cache)
    model.fit(
        train_dataset,
        epochs=plan.epochs,
        steps_per_epoch=plan.steps_per_epoch,
        validation_data=eval_dataset,
        validation_steps=plan_lib.steps_per_pass(
            int(config[EVAL_EXAMPLES_KEY]), global_batch),
        callbacks=[
            keras.callbacks.BackupAndRestore(
                os.path.join(fn_args.model_run_dir, 'backup')),
            keras.callbacks.TensorBoard(log_dir=log_dir),
            callbacks_lib.DenoisedImages(log_dir, *_first_images(
                fn_args.eval_files, TENSORBOARD_IMAGES)),
        ],
        verbose=fit_verbosity(sys.stdout))
  else:
    logging.warning('No training steps planned: exporting the untrained model')
  fit_seconds = time.monotonic() - fit_start
  export.export_saved_model(model, export_dir)
  if chief:
    logging.info('Exported the SavedModel to %s', export_dir)
    _write_settings(fn_args.model_run_dir, {
        'architecture': model.name,
        'parameters': model.count_params(),
        'loss': model.loss.name,
        'batch_size_per_replica': global_batch // replicas,
        'global_batch': global_batch,
        'replicas': replicas,
        'placement': placement.description,
        'precision_policy': keras.mixed_precision.global_policy().name,
        'jit_compile': bool(model.jit_compile),
        'seed': seed,
        'fresh_noise': bool(config[FRESH_NOISE_KEY]),
        'epochs': plan.epochs,
        'steps_per_epoch': plan.steps_per_epoch,
        'steps_run': int(model.optimizer.iterations.numpy()),
        # Wall seconds of training itself (`fit`, its validation included).
        'fit_seconds': round(fit_seconds, 2),
        'learning_rate_first': first_learning_rate,
        'learning_rate_last': _learning_rate(model),
    })
  else:
    shutil.rmtree(scratch, ignore_errors=True)


def _first_images(file_patterns, count: int):
  """(noisy, clean) numpy arrays of the first `count` examples of the files."""
  noisy, clean = next(iter(data.make_dataset(file_patterns, count, cache=False)))
  return noisy.numpy(), clean.numpy()


def _write_settings(model_run_dir: str, settings: Dict[str, Any]) -> None:
  tf.io.gfile.makedirs(model_run_dir)
  with tf.io.gfile.GFile(os.path.join(model_run_dir, SETTINGS_FILENAME), 'w') as out:
    json.dump(settings, out, indent=2, sort_keys=True)
