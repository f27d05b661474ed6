"""Picks the tf.distribute strategy (and precision) from the hardware found."""

import dataclasses
import glob
import json
import os

from absl import logging
import tensorflow as tf

from components.trainer import cpu_info


@dataclasses.dataclass(frozen=True)
class Placement:
  """Where training runs."""
  strategy: tf.distribute.Strategy
  description: str
  mixed_precision: bool


# /proc/cpuinfo flags of native bfloat16 matrix math (Intel AMX, AVX512-BF16):
# there, oneDNN runs mixed_bfloat16 convolutions about twice as fast as float32.
NATIVE_BFLOAT16_CPU_FLAGS = ('amx_bf16', 'avx512_bf16')


def cpu_has_native_bfloat16(cpuinfo_path: str = cpu_info.CPUINFO_PATH) -> bool:
  """Whether the CPU flags include native bfloat16 matrix math."""
  _, flags = cpu_info.read(cpuinfo_path)
  return any(flag in flags for flag in NATIVE_BFLOAT16_CPU_FLAGS)


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

  Mixed precision (float32 variables) computes in float16 on GPUs, in bfloat16
  on TPUs and on CPUs with native bfloat16 (see NATIVE_BFLOAT16_CPU_FLAGS);
  other CPUs train in float32, as does everything when
  `allow_mixed_precision` is False.
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
    log_devices(gpus)
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
      native = cpu_has_native_bfloat16()
      placement = Placement(
          tf.distribute.get_strategy(),
          'default strategy on the CPU' + (' (native bfloat16)' if native else ''),
          native and allow_mixed_precision)
    policy = 'mixed_float16' if gpus else 'mixed_bfloat16'
  import keras  # pylint: disable=g-import-not-at-top
  keras.mixed_precision.set_global_policy(
      policy if placement.mixed_precision else 'float32')
  logging.info('Training placement: %s, precision policy %s', placement.description,
               keras.mixed_precision.global_policy().name)
  return placement


def log_devices(gpus) -> None:
  """Logs the devices TensorFlow sees, and warns when a GPU is attached to the
  container (NVIDIA's device plugin sets NVIDIA_VISIBLE_DEVICES) but this
  TensorFlow cannot use it: the CPU image on a GPU node trains on the CPU."""
  logging.info('TensorFlow %s (built with CUDA: %s) sees %s',
               tf.__version__, tf.test.is_built_with_cuda(),
               [device.name for device in tf.config.list_physical_devices()])
  attached = os.environ.get('NVIDIA_VISIBLE_DEVICES', '')
  if attached and attached not in ('void', 'none') and not gpus:
    logging.warning(
        'GPU(s) %r are attached to this container but TensorFlow sees none '
        '(built with CUDA: %s): training runs on the CPU. Use the GPU image '
        '(make image-gpu) for GPU nodes.', attached, tf.test.is_built_with_cuda())
