"""The TFX Trainer's entry point: trains the DAE (noisy -> clean) and exports it.

Used as ``Trainer(run_fn='components.trainer.run_fn.run_fn', ...)``: the
function is imported from the installed package, so no module file needs
packaging. Its settings come in ``custom_config`` under the keys below, every
one of them required: the TrainingSpec as JSON (settings.py, the one
definition of the training settings), from the pipeline
(`pipeline.pipeline.trainer_custom_config`); the split sizes and the dataset's
description (DatasetInfo), which the examples carry and the Trainer's
executor adds (components/trainer/executor.py).

Steps are planned here, not taken from TrainArgs (which sets none): the
split sizes and the number of replicas are known only now, and an epoch is a
pass over the train split at the *global* batch (`batch_size` per replica
times the replicas).
"""

import dataclasses
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

from components.common import dataset_info as dataset_info_lib
from components.common import names
from components.common import progress
from components.common import noise
from components.trainer import architectures
from components.trainer import callbacks as callbacks_lib
from components.trainer import data
from components.common import saved_model
from components.trainer import memory
from components.trainer import model as model_lib
from components.trainer import multi_worker as multi_worker_lib
from components.trainer import plan as plan_lib
from components.trainer import settings as settings_lib
from components.trainer import strategy as strategy_lib

# custom_config keys, all required: the TrainingSpec (JSON, see settings.py),
# the sizes of the splits it trains and validates on and the dataset's
# DatasetInfo (JSON); the last three are the examples' (see executor.py).
TRAINING_KEY = 'training'
TRAIN_EXAMPLES_KEY = 'train_examples'
EVAL_EXAMPLES_KEY = 'eval_examples'
DATASET_INFO_KEY = 'dataset_info'
REQUIRED_KEYS = (TRAINING_KEY, TRAIN_EXAMPLES_KEY, EVAL_EXAMPLES_KEY,
                 DATASET_INFO_KEY)
# Added by the Trainer's executor (components/trainer/executor.py), not by
# the pipeline: JSON of the noise settings NoiseTransform recorded on the
# examples, which TrainingSpec.fresh_noise redraws.
NOISE_SPEC_KEY = 'noise_spec'

# Held-out images shown denoised in TensorBoard after every epoch.
TENSORBOARD_IMAGES = 8

# What training actually used, read back from the model and optimizer, in
# the model-run directory (beside the TensorBoard logs).
SETTINGS_FILENAME = 'training_settings.json'


@dataclasses.dataclass(frozen=True)
class Settings:
  """What run_fn reads from custom_config.

  Attributes:
    training: The training settings.
    train_examples: Images of the train split.
    eval_examples: Images of the eval split.
    dataset: The images' shape and classes.
    fresh_noise: The noise to redraw every pass; None: train on the records'
      noisy copy (training.fresh_noise off).
  """
  training: settings_lib.TrainingSpec
  train_examples: int
  eval_examples: int
  dataset: dataset_info_lib.DatasetInfo
  fresh_noise: Optional[noise.NoiseSpec]


def read_custom_config(custom_config: Mapping[str, Any]) -> Settings:
  """The settings of custom_config (validated).

  Raises:
    KeyError: keys are missing (it names every one).
    ValueError: fresh noise is asked for, but the examples carry no settings.
    InvalidTrainingSpec: a training setting is invalid.
  """
  custom_config = custom_config or {}
  missing = [key for key in REQUIRED_KEYS if key not in custom_config]
  if missing:
    raise KeyError(f'Trainer custom_config lacks {missing}; run_fn needs '
                   f'all of {list(REQUIRED_KEYS)}')
  training = settings_lib.TrainingSpec.from_json(custom_config[TRAINING_KEY])
  return Settings(training=training,
                  train_examples=int(custom_config[TRAIN_EXAMPLES_KEY]),
                  eval_examples=int(custom_config[EVAL_EXAMPLES_KEY]),
                  dataset=dataset_info_lib.DatasetInfo.from_json(
                      custom_config[DATASET_INFO_KEY]),
                  fresh_noise=_fresh_noise_spec(training, custom_config))


def _fresh_noise_spec(training: settings_lib.TrainingSpec,
                      custom_config: Mapping[str, Any]) -> Optional[noise.NoiseSpec]:
  """The noise to redraw every pass (None: train on the records' noisy copy)."""
  if not training.fresh_noise:
    return None
  if NOISE_SPEC_KEY not in custom_config:
    raise ValueError(
        'training.fresh_noise needs the noise settings NoiseTransform records '
        f'on its examples (property {names.NOISE_SPEC_PROPERTY!r}); the '
        "Trainer's examples carry none: they were not written by NoiseTransform, "
        'or the Trainer does not run components.trainer.executor.Executor')
  return noise.NoiseSpec.from_json(custom_config[NOISE_SPEC_KEY])


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

  Keras' precision policy is process-global and the Trainer sets it (mixed
  bfloat16 on CPUs with native bfloat16): it is restored afterwards, so that
  what runs next in the same process (LocalDagRunner's other components, a
  test) computes in the precision it had.

  Args:
    fn_args: TFX FnArgs: train/eval files, serving and model-run directories,
      custom_config (keys above).
  """
  previous_policy = keras.mixed_precision.global_policy()
  try:
    _train_and_export(fn_args)
  finally:
    keras.mixed_precision.set_global_policy(previous_policy)


def _train_and_export(fn_args) -> None:
  """run_fn's work, under the precision policy it chooses."""
  settings = read_custom_config(fn_args.custom_config)
  training = settings.training
  seed = training.seed
  keras.utils.set_random_seed(seed)
  placement = strategy_lib.choose_placement(
      allow_mixed_precision=training.mixed_precision)
  replicas = placement.strategy.num_replicas_in_sync
  global_batch = training.batch_size * replicas
  plan = plan_lib.plan_training(settings.train_examples, global_batch,
                                training.epochs, training.max_train_steps)
  print(f'Trainer: {placement.description}, precision policy '
        f'{keras.mixed_precision.global_policy().name}; {plan.epochs} epoch(s) '
        f'of {plan.steps_per_epoch} steps at a global batch of {global_batch}',
        flush=True)
  input_plan = memory.plan_input(settings.train_examples, settings.eval_examples,
                                 settings.dataset, settings.fresh_noise is not None,
                                 training.cache_budget_mb)
  print(f'Trainer: {input_plan.describe()}', flush=True)
  loss_name = training.loss
  dataset = settings.dataset

  with placement.strategy.scope():
    model = model_lib.compile_model(
        architectures.build_model(training.architecture, loss_name,
                                  dataset.image_shape),
        loss=loss_name,
        learning_rate=training.learning_rate,
        jit_compile=training.xla,
        schedule=training.lr_schedule,
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
    train_dataset = data.make_dataset(fn_args.train_files, global_batch, dataset,
                                      shuffle_seed=seed, repeat=True,
                                      cache=input_plan.cache,
                                      shuffle_buffer=input_plan.shuffle_buffer,
                                      fresh_noise=settings.fresh_noise,
                                      examples_count=settings.train_examples,
                                      whole_images=dataset.whole_train_images)
  fit_start = time.monotonic()
  if plan.total_steps > 0 and multi_worker:
    loss = multi_worker_lib.train(model, placement.strategy, loss_name,
                                  train_dataset, plan.total_steps, global_batch,
                                  log_dir)
    logging.info('Trained %d steps on several workers, last loss %.4f',
                 plan.total_steps, loss)
  elif plan.total_steps > 0:
    eval_dataset = data.make_dataset(fn_args.eval_files, global_batch, dataset,
                                     repeat=True, cache=input_plan.cache)
    model.fit(
        train_dataset,
        epochs=plan.epochs,
        steps_per_epoch=plan.steps_per_epoch,
        validation_data=eval_dataset,
        validation_steps=plan_lib.steps_per_pass(
            settings.eval_examples, global_batch),
        callbacks=[
            keras.callbacks.BackupAndRestore(
                os.path.join(fn_args.model_run_dir, 'backup')),
            keras.callbacks.TensorBoard(log_dir=log_dir),
            callbacks_lib.DenoisedImages(log_dir, *_first_images(
                fn_args.eval_files, TENSORBOARD_IMAGES, dataset)),
        ],
        verbose=fit_verbosity(sys.stdout),
        # The dataset shuffles itself (seeded, data.py); Keras ignores this
        # for a tf.data.Dataset but warns on its default, True.
        shuffle=False)
  else:
    logging.warning('No training steps planned: exporting the untrained model')
  fit_seconds = time.monotonic() - fit_start
  # A fully convolutional model is served for images of any size; the
  # examples signature and the recorded shape stay those of training.
  saved_model.export_saved_model(
      architectures.any_size_model(model, training.architecture, loss_name),
      export_dir, trained_shape=model.input_shape[1:])
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
        'fresh_noise': training.fresh_noise,
        'input_cached': input_plan.cache,
        'shuffle_buffer': input_plan.shuffle_buffer,
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


def _first_images(file_patterns, count: int,
                  dataset: dataset_info_lib.DatasetInfo):
  """(noisy, clean) numpy arrays of the first `count` examples of the files."""
  noisy, clean = next(iter(data.make_dataset(file_patterns, count, dataset,
                                             cache=False)))
  return noisy.numpy(), clean.numpy()


def _write_settings(model_run_dir: str, settings: Dict[str, Any]) -> None:
  tf.io.gfile.makedirs(model_run_dir)
  with tf.io.gfile.GFile(os.path.join(model_run_dir, SETTINGS_FILENAME), 'w') as out:
    json.dump(settings, out, indent=2, sort_keys=True)
