"""The project's Beam and training code on real multi-worker engines, on loopback.

* NoiseTransform on Beam's DirectRunner in multi_processing mode (separate
  worker processes) must write the same examples as the single-worker run.
* Two Trainer processes with TF_CONFIG and MultiWorkerMirroredStrategy train
  a few steps together; only the chief exports the SavedModel.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from components.trainer import run_fn as run_fn_lib
from pipeline_config import repository_root
from tests.distributed import multi_worker_train
from tests.components import test_noise_transform as noise_tests
from tests.components import test_trainer as trainer_tests

pytestmark = pytest.mark.slow


def test_noise_on_multiple_worker_processes_writes_the_same_examples(tmp_path):
  images, labels = noise_tests._images(600)  # pylint: disable=protected-access
  examples = noise_tests._write_examples(tmp_path / 'in', images, labels,  # pylint: disable=protected-access
                                         files_per_split=4)
  started = time.monotonic()
  single = noise_tests._run(examples, tmp_path / 'single')  # pylint: disable=protected-access
  single_s = time.monotonic() - started
  started = time.monotonic()
  multi = noise_tests._run(  # pylint: disable=protected-access
      examples, tmp_path / 'multi',
      beam_args=['--direct_running_mode=multi_processing', '--direct_num_workers=2'])
  multi_s = time.monotonic() - started
  print(f'noise of 3 x 600 examples: in_memory {single_s:.1f} s, '
        f'multi_processing x2 {multi_s:.1f} s')
  for split in noise_tests.SPLITS:
    records = noise_tests._records(single, split)  # pylint: disable=protected-access
    assert len(records) == 600
    assert records == noise_tests._records(multi, split)  # pylint: disable=protected-access


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for probe in sockets:
    probe.bind(('127.0.0.1', 0))
  ports = [probe.getsockname()[1] for probe in sockets]
  for probe in sockets:
    probe.close()
  return ports


def test_two_workers_train_with_multi_worker_mirrored_strategy(tmp_path):
  trainer_tests._write_noisy_examples(str(tmp_path / 'data.gz'), count=64)  # pylint: disable=protected-access
  workers = [f'127.0.0.1:{port}' for port in _free_ports(2)]
  processes = []
  started = time.monotonic()
  for index in range(2):
    environment = dict(os.environ, TF_CONFIG=json.dumps({
        'cluster': {'worker': workers}, 'task': {'type': 'worker', 'index': index}}),
        CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2')
    processes.append(subprocess.Popen(
        [sys.executable, '-m', 'tests.distributed.multi_worker_train',
         str(tmp_path / '*.gz'), str(tmp_path / f'worker{index}')],
        cwd=repository_root(), env=environment, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True))
  outputs = []
  for process in processes:
    try:
      output, _ = process.communicate(timeout=300)
    finally:
      process.kill()
    outputs.append(output)
    assert process.returncode == 0, output[-3000:]
  print(f'two-worker training of 4 steps: {time.monotonic() - started:.1f} s')
  reports = [json.loads((tmp_path / f'worker{index}' / multi_worker_train.REPORT_FILENAME)
                        .read_text()) for index in range(2)]
  assert [report['chief'] for report in reports] == [True, False]
  assert all(report['replicas'] == 2 for report in reports)
  assert all('MultiWorkerMirroredStrategy over 2 workers' in report['placement']
             for report in reports)
  chief_model = tmp_path / 'worker0' / 'serving_model_dir'
  # 64 images at a global batch of 2 x 8: 4 steps make the one epoch.
  settings = json.loads((tmp_path / 'worker0' / 'model_run_dir' /
                         run_fn_lib.SETTINGS_FILENAME).read_text())
  assert (settings['global_batch'], settings['replicas']) == (16, 2)
  assert (settings['epochs'], settings['steps_run']) == (1, 4)
  assert (chief_model / 'saved_model.pb').exists()
  assert not (tmp_path / 'worker1' / 'serving_model_dir').exists()
  loaded = tf.saved_model.load(str(chief_model))
  assert 'serving_default' in loaded.signatures
