"""Picks the tf.distribute strategy (and precision) from the hardware found."""

import dataclasses
import glob
import json
import os

from absl import logging
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Placement:
  """Where training runs."""
  strategy: tf.distribute.Strategy
  description: str
  mixed_precision: bool


def _tpu_present() -> bool:
  # Only ask for a TPU where one is announced: the resolver's default probe
  # queries a cloud metadata server, which hangs off-cloud.
  return bool(os.environ.get('TPU_NAME') or glob.glob('/dev/accel*'))


def _tf_config() -> dict:
  try:
    return json.loads(os.environ.get('TF_CONFIG', '{}'))
  except json.JSONDecodeError as error:
    raise ValueError(f'TF_CONFIG is not valid JSON: {error}') from None


def _workers_in_tf_config() -> int:
  cluster = _tf_config().get('cluster', {})
  return len(cluster.get('worker', [])) + len(cluster.get('chief', []))


def is_chief() -> bool:
  """Whether this process writes the model: the chief, or worker 0 without one.

  A process with no multi-worker TF_CONFIG is its own chief.
  """
  tf_config = _tf_config()
  task = tf_config.get('task', {})
  cluster = tf_config.get('cluster', {})
  if not task:
    return True
  if task.get('type') == 'chief':
    return True
  return task.get('type') == 'worker' and int(task.get('index', 0)) == 0 and (
      'chief' not in cluster)


def choose_placement(allow_mixed_precision: bool = True) -> Placement:
  """TPUStrategy on a TPU, MultiWorkerMirrored with several TF_CONFIG workers,
  MirroredStrategy over visible GPUs, else the default (CPU) strategy.

  Mixed precision (float16 compute, float32 variables) is used on GPUs, bfloat16
  on TPUs; the CPU trains in float32.
  """
  if _tpu_present():
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=os.environ.get('TPU_NAME', ''))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    placement = Placement(tf.distribute.TPUStrategy(resolver),
                          f'TPUStrategy on {resolver.master()}',
                          allow_mixed_precision)
    policy = 'mixed_bfloat16'
  else:
    gpus = tf.config.list_physical_devices('GPU')
    if _workers_in_tf_config() > 1:
      strategy = tf.distribute.MultiWorkerMirroredStrategy()
      placement = Placement(
          strategy, f'MultiWorkerMirroredStrategy over {_workers_in_tf_config()} '
          f'workers, {len(gpus)} GPU(s) here', bool(gpus) and allow_mixed_precision)
    elif gpus:
      placement = Placement(tf.distribute.MirroredStrategy(),
                            f'MirroredStrategy over {len(gpus)} GPU(s)',
                            allow_mixed_precision)
    else:
      placement = Placement(tf.distribute.get_strategy(),
                            'default strategy on the CPU', False)
    policy = 'mixed_float16'
  import keras  # pylint: disable=g-import-not-at-top
  keras.mixed_precision.set_global_policy(
      policy if placement.mixed_precision else 'float32')
  logging.info('Training placement: %s, precision policy %s', placement.description,
               keras.mixed_precision.global_policy().name)
  return placement
