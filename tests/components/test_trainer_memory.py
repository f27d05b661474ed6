"""The Trainer's memory budget: it caches what fits and streams the rest."""

import json
import os

import keras
import pytest

from components.common import dataset_info
from components.trainer import data
from components.trainer import memory
from components.trainer import run_fn as run_fn_lib
from tests.components.test_trainer import _FnArgs
from tests.components.test_trainer import _custom_config
from tests.components.test_trainer import _write_noisy_examples

RGB = dataset_info.DatasetInfo('photos', (128, 128, 3), ())
MIB = memory.MIB


def test_an_example_takes_float32_noisy_and_8_bit_clean_or_clean_and_a_key():
  pixels = 128 * 128 * 3
  assert memory.example_bytes(RGB, fresh_noise=False) == 5 * pixels  # f32 + u8
  assert memory.example_bytes(RGB, fresh_noise=True) == pixels + 8


def test_examples_within_the_budget_are_cached():
  # 1,000 + 200 examples of 245,760 bytes: 281.25 MiB.
  plan = memory.plan_input(1_000, 200, RGB, fresh_noise=False, budget_mb=282)
  assert plan.cache
  assert plan.needed_bytes == 1_200 * 5 * 128 * 128 * 3
  assert plan.shuffle_buffer == memory.SHUFFLE_BUFFER
  assert 'cached in memory' in plan.describe()
  assert 'training.cache_budget_mb' in plan.describe()


def test_examples_beyond_the_budget_stream_through_a_buffer_within_it():
  # 100,000 RGB 128x128 images: ~23 GiB parsed, against a 2 GiB budget.
  plan = memory.plan_input(90_000, 10_000, RGB, fresh_noise=False,
                           budget_mb=2_048)
  assert not plan.cache
  per_example = memory.example_bytes(RGB, fresh_noise=False)
  assert plan.shuffle_buffer == 2_048 * MIB // per_example
  assert plan.shuffle_buffer * per_example <= plan.budget_bytes
  assert 'streamed from the records through a shuffle buffer of 8,738' in (
      plan.describe())


def test_a_zero_budget_streams_with_the_least_shuffle_buffer():
  plan = memory.plan_input(10, 10, RGB, fresh_noise=False, budget_mb=0)
  assert not plan.cache
  assert plan.shuffle_buffer == memory.MIN_SHUFFLE_BUFFER


def test_without_a_setting_the_budget_is_half_the_memory_found(monkeypatch):
  monkeypatch.setattr(memory, 'found_memory_bytes', lambda: 1_000 * MIB)
  needs_400 = 400 * MIB // memory.example_bytes(RGB, fresh_noise=False)
  assert memory.plan_input(needs_400, 0, RGB, False, None).cache
  plan = memory.plan_input(2 * needs_400, 0, RGB, False, None)
  assert not plan.cache
  assert plan.budget_bytes == 500 * MIB
  assert '50% of the memory found' in plan.describe()


@pytest.mark.parametrize('text, expected', [
    ('2147483648\n', 2 * 1024 * MIB),
    ('max\n', None),
])
def test_a_container_limit_below_the_machine_s_memory_is_the_memory_found(
    monkeypatch, tmp_path, text, expected):
  limit = tmp_path / 'memory.max'
  limit.write_text(text)
  monkeypatch.setattr(memory, 'CGROUP_LIMIT_FILES',
                      (str(tmp_path / 'absent'), str(limit)))
  assert memory._cgroup_limit_bytes() == expected
  found = memory.found_memory_bytes()
  assert found > 0
  if expected is not None:
    assert found <= expected


def _train_recording_datasets(tmp_path, monkeypatch, capsys, **changes):
  """Runs run_fn on 48 tiny examples; returns the cache and shuffle buffer
  each make_dataset call got, training_settings.json and the printed lines."""
  calls = []
  real_make_dataset = data.make_dataset

  def recording_make_dataset(*args, **kwargs):
    calls.append((kwargs.get('cache', True), kwargs.get('shuffle_buffer')))
    return real_make_dataset(*args, **kwargs)

  monkeypatch.setattr(data, 'make_dataset', recording_make_dataset)
  _write_noisy_examples(str(tmp_path / 'data.gz'))
  fn_args = _FnArgs(tmp_path, str(tmp_path / '*.gz'), _custom_config(**changes))
  try:
    run_fn_lib.run_fn(fn_args)
  finally:
    keras.mixed_precision.set_global_policy('float32')
  with open(os.path.join(fn_args.model_run_dir,
                         run_fn_lib.SETTINGS_FILENAME)) as settings_file:
    settings = json.load(settings_file)
  return calls, settings, capsys.readouterr().out


def test_the_trainer_streams_when_its_budget_is_below_the_data(
    tmp_path, monkeypatch, capsys):
  calls, settings, printed = _train_recording_datasets(
      tmp_path, monkeypatch, capsys, **{'training.cache_budget_mb': 0})
  # Train and eval inputs (the TensorBoard images are read uncached anyway).
  assert calls[:2] == [(False, memory.MIN_SHUFFLE_BUFFER), (False, None)]
  assert settings['input_cached'] is False
  assert settings['shuffle_buffer'] == memory.MIN_SHUFFLE_BUFFER
  assert 'Trainer: examples streamed from the records' in printed


def test_the_trainer_caches_what_fits_its_budget(tmp_path, monkeypatch, capsys):
  calls, settings, printed = _train_recording_datasets(
      tmp_path, monkeypatch, capsys, **{'training.cache_budget_mb': 1})
  assert calls[:2] == [(True, memory.SHUFFLE_BUFFER), (True, None)]
  assert settings['input_cached'] is True
  assert 'Trainer: examples cached in memory (0 MiB of parsed examples, ' \
         'budget 1 MiB (training.cache_budget_mb))' in printed


def test_whole_train_images_count_the_values_the_example_gen_recorded():
  # 10,000 whole train images of 200,000,000 values in all (1,000,000,000
  # bytes parsed), 200 eval patches.
  whole = dataset_info.DatasetInfo('photos', (128, 128, 3), (),
                                   whole_train_values=200_000_000)
  plan = memory.plan_input(10_000, 200, whole, fresh_noise=False, budget_mb=500)
  assert plan.needed_bytes == (200_000_000 * 5 +
                               200 * memory.example_bytes(whole, False))
  assert not plan.cache
  # The buffer holds whole images of 100,000 bytes each on average.
  assert plan.shuffle_buffer == 500 * MIB // 100_000
  assert memory.plan_input(10_000, 200, whole, False, budget_mb=1_001).cache
