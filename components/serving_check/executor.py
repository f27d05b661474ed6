"""Executor of ServingCheck: the probe in a fresh process, then the InfraBlessing.

The InfraBlessing is written as TFX's InfraValidator writes it
(tfx/components/infra_validator/executor.py: `_mark_blessed`,
`_mark_not_blessed`, `_CreateWarmupModel`): custom property `blessed` 1 or 0,
an empty `INFRA_BLESSED` or `INFRA_NOT_BLESSED` file, and on a blessing the
model copied to `<uri>/stamped_model` (tfx.utils.path_utils.
stamped_model_path) with the warm-up requests in its
`assets.extra/tf_serving_warmup_requests`, flagged by `has_model` = 1.
Beyond InfraValidator's: `failure` (one line: why not blessed), the load
time and the requests' p50/p99 latency, and `serving_check.json` (the
probe's whole result) in the artifact.
"""

import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List

from absl import logging
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

import components
from components.common import dataset_info
from components.common import names
from components.common import serving_dir
from components.serving_check import probe

MODEL_KEY = 'model'
MODEL_BLESSING_KEY = 'model_blessing'
EXAMPLES_KEY = 'examples'
BLESSING_KEY = names.INFRA_BLESSING_KEY  # InfraValidator's output key.
SPLIT_KEY = 'split'
CANARIES_KEY = 'canaries'
TIMEOUT_KEY = 'timeout_s'
DEFAULT_CANARIES = 4
# A fresh process imports TensorFlow (seconds on a busy machine) before loading.
DEFAULT_TIMEOUT_S = 300

# InfraBlessing custom properties and files, as InfraValidator names them
# (its executor's _BLESSED_KEY, _MODEL_FLAG_KEY, _BLESSED_FILENAME and
# _NOT_BLESSED_FILENAME; TFX's Pusher reads the first two).
BLESSED_PROPERTY = names.INFRA_BLESSED_PROPERTY
HAS_MODEL_PROPERTY = names.INFRA_HAS_MODEL_PROPERTY
BLESSED_FILENAME = 'INFRA_BLESSED'
NOT_BLESSED_FILENAME = 'INFRA_NOT_BLESSED'
# Ours.
FAILURE_PROPERTY = names.SERVING_FAILURE_PROPERTY
LOAD_SECONDS_PROPERTY = probe.LOAD_SECONDS
LATENCY_P50_PROPERTY = probe.LATENCY_P50_MS
LATENCY_P99_PROPERTY = probe.LATENCY_P99_MS
# Where TF Serving looks for warm-up requests in a SavedModel directory.
WARMUP_RELATIVE_PATH = (f'{serving_dir.SERVING_EXTRAS_DIRNAME}/'
                        f'{probe.WARMUP_FILENAME}')
CANARIES_FILENAME = 'canaries.tfrecord'


def _write_canaries(examples: types.Artifact, split: str, count: int,
                    path: str) -> None:
  """The first `count` serialized records of a split, to a TFRecord file."""
  pattern = os.path.join(artifact_utils.get_split_uri([examples], split), '*')
  files = sorted(fileio.glob(pattern))
  if not files:
    raise FileNotFoundError(f'no {split!r} examples match {pattern}')
  with tf.io.TFRecordWriter(path) as writer:
    for record in tf.data.TFRecordDataset(files, compression_type='GZIP').take(
        count):
      writer.write(record.numpy())


def _probe_environment() -> Dict[str, str]:
  """This process's environment, with the project importable in the probe
  (wherever it runs from), TensorFlow's C++ info logs off, and no GPU: in a
  local run the Trainer's and Evaluator's TensorFlow in this process may hold
  nearly all GPU memory (TensorFlow's default), where the probe could not
  start; a few canaries need none."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(components.__file__)))
  environment = dict(os.environ)
  environment['PYTHONPATH'] = os.pathsep.join(
      [root] + [path for path in environment.get('PYTHONPATH', '').split(
          os.pathsep) if path])
  environment.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  environment.setdefault('CUDA_VISIBLE_DEVICES', '-1')
  return environment


def run_probe(model_dir: str, canaries_path: str, image_shape, output_dir: str,
              timeout_s: int) -> dict:
  """Runs probe.py in a fresh Python process; returns its result, with the
  process's own failure (timeout, crash) as its only failure."""
  command = [sys.executable, '-m', probe.__name__, '--model_dir', model_dir,
             '--canaries', canaries_path,
             '--image_shape', ','.join(str(side) for side in image_shape),
             '--output_dir', output_dir]
  try:
    finished = subprocess.run(command, capture_output=True, text=True,
                              timeout=timeout_s, env=_probe_environment(),
                              check=False)
  except subprocess.TimeoutExpired:
    return {probe.FAILURES: [f'the model did not load and answer its canaries '
                             f'within {timeout_s} s']}
  result_path = os.path.join(output_dir, probe.RESULT_FILENAME)
  if finished.returncode != 0 or not fileio.exists(result_path):
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    return {probe.FAILURES: [
        f'the probe process exited with status {finished.returncode}: '
        f'{lines[-1].strip() if lines else "no message"}']}
  with fileio.open(result_path, 'r') as result_file:
    return json.load(result_file)


def _stamp(model_dir: str, warmup_path: str, blessing: types.Artifact) -> None:
  """Copies the model with its warm-up requests into the blessing."""
  stamped = path_utils.stamped_model_path(blessing.uri)
  serving_dir.copy_tree(model_dir, stamped)
  target = f'{stamped}/{WARMUP_RELATIVE_PATH}'
  fileio.makedirs(os.path.dirname(target))
  fileio.copy(warmup_path, target, overwrite=True)
  blessing.set_int_custom_property(HAS_MODEL_PROPERTY, 1)


def _mark(blessing: types.Artifact, failures: List[str]) -> None:
  """Records the verdict: blessed without failures, else the reasons."""
  blessed = not failures
  blessing.set_int_custom_property(BLESSED_PROPERTY, int(blessed))
  blessing.set_string_custom_property(FAILURE_PROPERTY, '; '.join(failures))
  marker = BLESSED_FILENAME if blessed else NOT_BLESSED_FILENAME
  with fileio.open(os.path.join(blessing.uri, marker), 'w') as marker_file:
    marker_file.write('')
  if blessed:
    logging.info('ServingCheck: every signature answered its canaries')
  else:
    logging.warning('ServingCheck: not blessed for serving: %s',
                    '; '.join(failures))


class Executor(base_executor.BaseExecutor):
  """Probes the model's signatures; writes an InfraBlessing."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    model_blessing = artifact_utils.get_single_instance(
        input_dict[MODEL_BLESSING_KEY])
    examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
    blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
    fileio.makedirs(blessing.uri)
    if model_blessing.get_int_custom_property(names.MODEL_BLESSED_PROPERTY) != 1:
      _mark(blessing, ['the Evaluator did not bless the model; not probed'])
      return
    model_dir = path_utils.serving_model_path(
        model.uri, path_utils.is_old_model_artifact(model))
    with tempfile.TemporaryDirectory(prefix='serving-check-') as work:
      canaries = os.path.join(work, CANARIES_FILENAME)
      _write_canaries(examples, exec_properties[SPLIT_KEY],
                      int(exec_properties[CANARIES_KEY]), canaries)
      result = run_probe(model_dir, canaries,
                         dataset_info.recorded(examples).image_shape, work,
                         int(exec_properties[TIMEOUT_KEY]))
      for key in (LOAD_SECONDS_PROPERTY, LATENCY_P50_PROPERTY,
                  LATENCY_P99_PROPERTY):
        if key in result:
          blessing.set_float_custom_property(key, result[key])
      with fileio.open(os.path.join(blessing.uri, probe.RESULT_FILENAME),
                       'w') as result_file:
        result_file.write(json.dumps(result, indent=1, sort_keys=True))
      failures = list(result.get(probe.FAILURES, []))
      if not failures:
        _stamp(model_dir, os.path.join(work, probe.WARMUP_FILENAME), blessing)
      _mark(blessing, failures)
