"""The benchmark's own logic: classical denoisers, tuning, result tables."""

import dataclasses

import keras
import numpy as np
import pytest

from bench import classical
from bench import common
from bench import quality
from bench import recipes
from components.common import metrics
from components.trainer import model as model_lib
import pipeline_config
from tests import idx_files

MNIST_SHAPE = (28, 28, 1)  # The tests' images (tests/idx_files.py writes MNIST's shape).


def _digits(count, seed=0):
  rng = np.random.default_rng(seed)
  clean = np.zeros((count, 28, 28))
  for index in range(count):
    row, column = rng.integers(6, 18, size=2)
    clean[index, row:row + 8, column:column + 3] = 1.0
  return clean


def test_mosaic_round_trip_keeps_every_digit():
  images = np.random.default_rng(1).random((37, 28, 28))
  mosaic = classical._mosaic(images)  # pylint: disable=protected-access
  assert mosaic.shape == (280, 280)
  np.testing.assert_array_equal(classical._unmosaic(mosaic, 37, 28), images)  # pylint: disable=protected-access


@pytest.mark.parametrize('name', ['Gaussian blur', 'median', 'total variation',
                                  'non-local means', 'BM3D'])
def test_each_classical_denoiser_reduces_gaussian_noise(name):
  clean = _digits(6)
  noisy = clean + np.random.default_rng(2).normal(0, 0.2, clean.shape)
  method = classical.methods(bm3d_images=6)[name]
  tuned = classical.tune(method, clean, noisy, level=0.2)
  assert tuned['value'] in method.grid(0.2)
  denoised = method.denoise(noisy, tuned['value'])
  assert denoised.shape == clean.shape
  assert classical.psnr_of_mean_mse(clean, denoised) > classical.psnr_of_mean_mse(clean, noisy) + 1


def test_tune_picks_the_value_with_the_best_psnr():
  clean = _digits(2)
  method = classical.Method('scale', 'factor', lambda level: [0.5, 1.0, 2.0],
                            lambda images, factor: images * factor)
  tuned = classical.tune(method, clean, clean * 0.45, level=0.1)
  assert tuned['value'] == 2.0 and set(tuned['tuning_psnr']) == {'0.5', '1.0', '2.0'}


def test_metrics_of_arrays_follow_the_stated_definitions():
  clean = np.zeros((4, 28, 28, 1), np.float32)
  denoised = np.full((4, 28, 28, 1), 0.1, np.float32)
  values = metrics.metrics_of_arrays(clean, denoised, batch_size=3)
  assert values['mse'] == pytest.approx(0.01)
  assert values['psnr'] == pytest.approx(20.0)
  assert values['mean_image_psnr'] == pytest.approx(20.0)
  assert values['ssim'] < 1.0
  assert metrics.metrics_of_arrays(clean, clean)['ssim'] == pytest.approx(1.0)
  with pytest.raises(ValueError):
    metrics.metrics_of_arrays(clean, denoised[:2])


def test_verdict_compares_the_best_dae_with_the_best_classical():
  rows = {'noisy input': {'subset': {'psnr': 14.0}},
          'BM3D': {'subset': {'psnr': 22.6}}, 'median': {'subset': {'psnr': 18.0}},
          'DAE a': {'subset': {'psnr': 26.5}}, 'DAE b': {'subset': {'psnr': 21.0}}}
  verdict = quality.verdict(rows)
  assert verdict['best_classical'] == 'BM3D' and verdict['best_dae'] == 'DAE a'
  assert verdict['dae_wins'] and verdict['psnr_margin_db_on_subset'] == pytest.approx(3.9)


def test_replace_section_rewrites_only_between_its_markers(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('intro\n<!-- speed:begin -->\nold\n<!-- speed:end -->\nrest\n')
  common.replace_section('speed', 'new table', str(readme))
  assert readme.read_text() == ('intro\n<!-- speed:begin -->\nnew table\n'
                                '<!-- speed:end -->\nrest\n')
  with pytest.raises(ValueError, match='quality'):
    common.replace_section('quality', 'x', str(readme))


@pytest.mark.parametrize('name', ['quality', 'speed', 'recipes', 'stacks', 'scale'])
def test_the_results_page_shows_what_the_results_files_hold(name):
  # What `python -m bench.NAME --render` would write: a results file updated
  # without its table (or a table edited by hand) fails here.
  from bench import scale  # pylint: disable=g-import-not-at-top
  from bench import speed  # pylint: disable=g-import-not-at-top
  from bench import stacks  # pylint: disable=g-import-not-at-top
  render = {'quality': quality.render_tables, 'speed': speed.render_table,
            'recipes': recipes.render_table, 'stacks': stacks.render_table,
            'scale': scale.render}[name]
  expected = render(common.read_recorded(name)).rstrip('\n') + '\n'
  with open(common.RESULTS_PAGE) as page:
    content = page.read()
  begin, end = f'<!-- {name}:begin -->\n', f'<!-- {name}:end -->'
  assert content[content.index(begin) + len(begin):content.index(end)] == expected


def test_pipeline_arguments_give_each_model_its_own_root():
  models = {model.directory: model for model in quality.dae_models()}
  article = quality.pipeline_arguments(models['article'], quick=False)
  assert '--pipeline-root' in article and 'training.architecture=article' in article
  assert quality.pipeline_arguments(models[None], quick=False) == ['--profile', 'full']
  quick = quality.pipeline_arguments(models[None], quick=True)
  assert quick[:2] == ['--profile', 'smoke'] and 'thresholds.min_psnr_db=0' in quick


def test_speed_table_states_every_ratio_with_its_spread():
  from bench import speed  # pylint: disable=g-import-not-at-top
  assert speed.spread([3.0, 1.0, 2.0]) == {'median': 2.0, 'min': 1.0, 'max': 3.0,
                                           'values': [3.0, 1.0, 2.0]}
  one = speed.spread([5.0])
  result = {
      'date': 'd', 'commit': 'c', 'examples': 100,
      'machine': {'cpu': 'cpu', 'cores': 2, 'memory_gib': 1, 'python': '3.10'},
      'end_to_end': {
          'max_train_steps': 20, 'pipeline_overhead_s': speed.spread([70.0, 80.0]),
          'plain_overhead_s': speed.spread([30.0, 40.0]),
          'pipeline_cold': {'seconds': speed.spread([100.0, 110.0]), 'peak_rss_mib': 1},
          'plain_script': {'seconds': speed.spread([50.0, 60.0]), 'peak_rss_mib': 1,
                           'phases': {'train': 20.0}},
          'pipeline_over_plain': speed.spread([2.0, 1.8], digits=2),
          'pipeline_rerun_after_push': {'seconds': 9.0},
          'pipeline_cached': {'seconds': 8.0},
          'pipeline_components_seconds': {'TfdsExampleGen': 10.0}},
      'training': {}, 'inference': {'batch1_p50_ms': 1, 'batch1_p99_ms': 2,
                                    'batch256_images_per_s': 3},
      'input_pipeline': {'steps': 4, 'trainer_input_images_per_s': one,
                         'in_memory_images_per_s': one,
                         'trainer_input_over_in_memory': speed.spread([0.9, 1.1], 3)},
      'noise': {name: one for name in ('beam_direct_in_memory', 'beam_multi_processing_2',
                                        'numpy_in_memory')},
  }
  result['noise'].update({'beam_direct_in_memory_over_numpy': speed.spread([0.5, 0.6], 3),
                          'beam_multi_processing_2_over_numpy': speed.spread([0.2], 3)})
  table = speed.render_table(result)
  assert '75.0 s (70.0-80.0 over 2)' in table  # The pipeline overhead.
  assert '1.90x (1.80-2.00 over 2)' in table  # End to end, with its range.
  assert '0.55x (0.50-0.60 over 2)' in table and '0.20x (one measurement)' in table
  assert 'Training capped at 20 steps' in table
  assert 're-run after the first push' in table
  # A capped cold run that was not blessed pushed nothing: its re-run is one
  # more cached run, and the table must not call it a re-run after a push.
  result['end_to_end']['pipeline_rerun_after_push']['cold_run_pushed'] = False
  table = speed.render_table(result)
  assert 'first push' not in table and 'pushed nothing' in table


def test_machine_names_the_cpu_features_that_set_training_speed():
  assert common.cpu_features(['fpu', 'avx2', 'avx512_bf16', 'avx512f']) == [
      'AVX-512', 'bfloat16']
  assert common.cpu_features(['fpu', 'avx2']) == []
  assert common.describe_cpu({'cpu': 'AMD EPYC', 'cpu_features': []}) == (
      'AMD EPYC (no AVX-512)')
  assert common.describe_cpu({'cpu': 'AMD EPYC'}) == 'AMD EPYC'  # Unrecorded.
  here = common.machine()
  assert isinstance(here['cpu_features'], list)
  line = common.provenance_line({
      'date': '2026-01-02 03:04 UTC', 'commit': 'abc1234567',
      'machine': dict(here, cpu_features=['AVX-512'], memory_gib=8, cores=2)})
  assert '(2 cores, 8 GiB, AVX-512)' in line
  # The date and commit stay in the results file, off the rendered page.
  assert '2026' not in line and 'abc1234567' not in line


def test_recipes_read_the_idx_files_as_written(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path))
  images, labels = recipes.read_idx(tiny.directory, 'train')
  assert images.shape == (120, 784) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, np.arange(120) % 10)
  assert images.max() > 0
  test_images, _ = recipes.read_idx(tiny.directory, 'test')
  assert test_images.shape == (40, 784)


def _recipe_training(recipe):
  return (recipe.architecture, recipe.loss, recipe.learning_rate,
          recipe.epochs, recipe.batch_size, recipe.seed, recipe.fresh_noise)


def test_recipe_defaults_are_the_sweeps_baseline_and_every_recipe_builds():
  training = pipeline_config.TrainingSpec()
  # The baseline: the pipeline's defaults but for the two the sweep changed.
  baseline = recipes.RECIPES_BY_NAME['baseline']
  assert _recipe_training(baseline) == _recipe_training(dataclasses.replace(
      training, loss=recipes.BASELINE_LOSS, batch_size=recipes.BASELINE_BATCH_SIZE))
  assert (recipes.BASELINE_LOSS, recipes.BASELINE_BATCH_SIZE) != (
      training.loss, training.batch_size)
  # The pipeline's default is the sweep's recipe `mse-batch32`.
  assert _recipe_training(recipes.RECIPES_BY_NAME['mse-batch32']) == (
      _recipe_training(training))
  assert recipes.RECIPES_BY_NAME['mse-batch32'].unet == {}
  assert len(recipes.RECIPES_BY_NAME) == len(recipes.RECIPES)
  for recipe in recipes.RECIPES:
    if recipe.architecture == 'unet':
      assert recipes.build(recipe, total_steps=10).count_params() > 0


def test_multiply_adds_count_every_convolution_at_its_resolution():
  default = recipes.multiply_adds_per_image(model_lib.build_unet(loss='mse', image_shape=MNIST_SHAPE))
  # By hand: 3x3 convolutions at 28x28 (1->32, 32->32, decoder 64->32,
  # 32->32), 14x14 (32->64, 64->64, 128->64, 64->64), 7x7 (64->64 twice),
  # 2x2 stride-2 transposed ones from 7x7 (64->64) and 14x14 (64->32), and
  # the 1x1 head (32->1).
  by_hand = (28 * 28 * 9 * (1 * 32 + 32 * 32 + 64 * 32 + 32 * 32)
             + 14 * 14 * 9 * (32 * 64 + 64 * 64 + 128 * 64 + 64 * 64)
             + 7 * 7 * 9 * (64 * 64 * 2)
             + 7 * 7 * 4 * 64 * 64 + 14 * 14 * 4 * 64 * 32
             + 28 * 28 * 32)
  assert default == by_hand
  large = recipes.multiply_adds_per_image(
      model_lib.build_unet(model_lib.UNET_SPECS['unet_large'], loss='mse',
                           image_shape=MNIST_SHAPE))
  assert large / default == pytest.approx(6.6, abs=0.05)  # As model.py says.


def test_recipes_start_costliest_first(tmp_path, capsys):
  names = ['mse-batch32-epochs2', 'baseline', 'large-fresh-60', 'mse-batch32',
           'large-widths96-fresh-30', 'epochs16']
  costliest_first = [
      'large-widths96-fresh-30', 'large-fresh-60', 'epochs16', 'mse-batch32',
      'baseline', 'mse-batch32-epochs2']
  assert recipes.by_cost(names) == costliest_first
  # `--train` goes in that order: past its deadline, it starts none and says
  # so for each, in the order it would have started them.
  assert recipes.train_all(names, str(tmp_path), parallel=1, order_path=None,
                           deadline_seconds=0) == 0
  assert capsys.readouterr().out.splitlines() == [
      f'{name}: not started (deadline)' for name in costliest_first]


def test_fresh_noise_recipe_batches_redraw_the_fixed_copy_every_epoch(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path))
  images, labels = recipes.read_idx(tiny.directory, 'train')
  clean, fixed = common.noisy_copy(images, labels, recipes.HEADLINE_NOISE)
  batches = recipes.FreshNoiseBatches(images, labels, recipes.HEADLINE_NOISE,
                                      batch_size=50, seed=1)
  assert len(batches) == 3  # 120 images: 50 + 50 + 20.

  def one_epoch():
    noisy, targets = zip(*(batches[index] for index in range(len(batches))))
    batches.on_epoch_end()
    return np.concatenate(noisy), np.concatenate(targets)

  epochs = [one_epoch() for _ in range(3)]
  flat_clean = clean.reshape(120, -1)
  for noisy, targets in epochs:
    # Every image once per epoch, matched to its own noisy version.
    order = [int(np.flatnonzero((flat_clean == row).all(axis=1))[0])
             for row in targets.reshape(120, -1)]
    assert sorted(order) == list(range(120))
    residual = noisy - targets
    assert 0.18 < residual.std() < 0.22
  first_order = [tuple(row) for row in epochs[0][1].reshape(120, -1)]
  assert first_order != [tuple(row) for row in epochs[1][1].reshape(120, -1)]
  # Epoch 0 is the fixed copy, in its shuffled order; later epochs are not.
  index_of = {row.tobytes(): index for index, row in enumerate(flat_clean)}
  position = [index_of[row.tobytes()] for row in epochs[0][1].reshape(120, -1)]
  np.testing.assert_array_equal(epochs[0][0], fixed[position])
  position = [index_of[row.tobytes()] for row in epochs[1][1].reshape(120, -1)]
  assert np.mean(epochs[1][0] != fixed[position]) > 0.99


def test_recipe_weights_survive_the_trip_between_backends(tmp_path):
  recipe = recipes.RECIPES_BY_NAME['batchnorm']
  trained = recipes.build(recipe, total_steps=4)
  images = np.random.default_rng(0).random((8, 28, 28, 1), np.float32)
  trained.fit(images, images, batch_size=4, epochs=1, verbose=0)  # Moves the norms.
  path = str(tmp_path / 'batchnorm.weights.npz')
  recipes.save_weights(trained, path)
  fresh = recipes.build(recipe, total_steps=4)
  assert not np.allclose(fresh.predict(images, verbose=0),
                         trained.predict(images, verbose=0))
  recipes.load_weights(fresh, path)
  np.testing.assert_array_equal(fresh.predict(images, verbose=0),
                                trained.predict(images, verbose=0))


def test_averaging_gains_where_models_err_apart_and_not_where_they_err_alike():
  rng = np.random.default_rng(0)
  clean = rng.random((40, 28, 28, 1)).astype(np.float32)
  error = 0.05 * rng.standard_normal(clean.shape).astype(np.float32)
  other = 0.05 * rng.standard_normal(clean.shape).astype(np.float32)
  report = recipes.average_outputs(clean, {
      'first': clean + error, 'twin': clean + error, 'apart': clean + other})
  singles = report['models']
  assert singles['first']['psnr'] == pytest.approx(
      metrics.metrics_of_arrays(clean, clean + error)['psnr'])
  alike, apart = report['pairs']['first+twin'], report['pairs']['first+apart']
  assert alike['residual_correlation'] == pytest.approx(1.0)
  assert alike['psnr'] == pytest.approx(singles['first']['psnr'], abs=1e-3)
  # Independent errors of equal size: the mean halves the MSE (+3 dB).
  assert abs(apart['residual_correlation']) < 0.02
  assert apart['psnr'] - singles['first']['psnr'] == pytest.approx(3.0, abs=0.1)
  # All three: errors 2e + o over 3, MSE (4 + 1) / 9 of one model's.
  assert report['all']['psnr'] - singles['first']['psnr'] == pytest.approx(
      10 * np.log10(9 / 5), abs=0.1)
  with pytest.raises(ValueError, match='two models'):
    recipes.average_outputs(clean, {'first': clean + error})


def test_averaging_names_a_weights_file_of_no_recipe_or_a_recipe_twice(tmp_path):
  with pytest.raises(ValueError, match="'nonesuch' is no recipe"):
    recipes.average_weights([str(tmp_path / 'nonesuch.weights.npz')])
  with pytest.raises(ValueError, match=r"\['seed7'\] given more than once"):
    recipes.average_weights([str(tmp_path / 'a' / 'seed7.weights.npz'),
                             str(tmp_path / 'baseline.weights.npz'),
                             str(tmp_path / 'b' / 'seed7.weights.npz')])
  same_file = str(tmp_path / 'seed7.weights.npz')
  with pytest.raises(ValueError, match=r"\['seed7'\] given more than once"):
    recipes.average_weights([same_file, same_file])


def _recipe_row(name, psnr, epochs_run, cut_short=True):
  recipe = recipes.RECIPES_BY_NAME[name]
  return {'change': recipe.change, 'recipe': {'epochs': recipe.epochs},
          'parameters': 1000, 'epochs_run': epochs_run, 'cut_short': cut_short,
          'train_backend': 'jax', 'train_device': 'NVIDIA H100 80GB HBM3',
          'train_fit_seconds': 10.0, 'psnr': psnr,
          'ssim': 0.97, 'cpu_step_seconds': 0.5, 'cpu_fit_minutes_estimate': 28.0,
          'scored': '2026-11-26 18:37 UTC', 'scored_at_commit': 'abc',
          'scored_on': {'cpu': 'AMD EPYC', 'cpu_features': ['AVX-512', 'bfloat16']}}


def test_recipes_table_compares_only_runs_cut_at_the_same_point():
  result = dict(date='2026-11-26 00:00 UTC', commit='abc',
                machine={'cpu': 'x', 'cores': 2, 'memory_gib': 1,
                         'python': '3.10'},
                recipes={'baseline': _recipe_row('baseline', 26.4, 4),
                         'seed7': _recipe_row('seed7', 26.3, 4),
                         'batchnorm': _recipe_row('batchnorm', 26.5, 2),
                         'epochs30': _recipe_row('epochs30', 26.45, 4)})
  lines = {line.split('|')[1].strip(): line
           for line in recipes.render_table(result).splitlines()
           if line.startswith('| `')}
  assert '| -0.10 |' in lines['`seed7`']
  assert '| 4 of 8 (cut short) |' in lines['`seed7`']
  # Two epochs of eight, or four of thirty: not comparable with four of eight.
  assert '| - |' in lines['`batchnorm`'] and '| - |' in lines['`epochs30`']
  table = recipes.render_table(result)
  assert table.index('`batchnorm`') < table.index('`epochs30`') < table.index('`seed7`')
  assert ('| H100 80GB HBM3; scored on AMD EPYC (AVX-512, bfloat16) |'
          in lines['`seed7`'])
  assert '2026' not in table and 'abc' not in table  # Both stay in the JSON.
  # Rows scored on another CPU say so: the CPU columns differ ~2.5x between
  # two "AMD EPYC"s, one without AVX-512.
  result['recipes']['seed7']['scored_on'] = {'cpu': 'AMD EPYC', 'cpu_features': []}
  seed7 = next(line for line in recipes.render_table(result).splitlines()
               if line.startswith('| `seed7`'))
  assert 'scored on AMD EPYC (no AVX-512) |' in seed7


def test_recipes_table_compares_a_cut_run_only_with_one_cut_too():
  baseline = _recipe_row('baseline', 26.6, 8, cut_short=False)
  result = dict(date='2026-11-26 00:00 UTC', commit='abc',
                machine={'cpu': 'x', 'cores': 2, 'memory_gib': 1, 'python': '3.10'},
                recipes={'baseline': baseline,
                         'batch64': _recipe_row('batch64', 26.8, 8, cut_short=True),
                         'batch32': _recipe_row('batch32', 26.7, 8, cut_short=False)})
  lines = {line.split('|')[1].strip(): line
           for line in recipes.render_table(result).splitlines()
           if line.startswith('| `')}
  # Cut in its eighth epoch: its cosine schedule never ended.
  assert '| 8 of 8 (cut short) |' in lines['`batch64`'] and '| - |' in lines['`batch64`']
  assert '| +0.10 |' in lines['`batch32`']


def test_scoring_a_sweep_keeps_the_recorded_rows_it_did_not_retrain():
  earlier = _recipe_row('large-30', 26.3, 30, cut_short=False)
  del earlier['scored'], earlier['scored_at_commit'], earlier['scored_on']
  older = _recipe_row('epochs30', 26.43, 4)  # Scored by a sweep before that.
  older['scored'], older['scored_at_commit'] = '2026-11-25 10:00 UTC', 'older'
  recorded = {'date': '2026-11-26 04:17 UTC', 'commit': 'old',
              'machine': {'cpu': 'AMD EPYC', 'cpu_features': []},
              'recipes': {'baseline': _recipe_row('baseline', 26.59, 8, False),
                          'large-30': earlier, 'epochs30': older}}
  fresh = {'baseline': _recipe_row('baseline', 26.60, 8, False)}
  fresh['baseline']['scored'] = '2026-11-26 18:37 UTC'
  merged = recipes.with_recorded_rows(fresh, recorded)
  assert merged['baseline'] is fresh['baseline']  # The new score wins.
  assert merged['large-30']['psnr'] == 26.3
  assert (merged['large-30']['scored'], merged['large-30']['scored_at_commit']) == (
      '2026-11-26 04:17 UTC', 'old')
  assert merged['large-30']['scored_on'] == recorded['machine']
  assert merged['epochs30']['scored_on'] == older['scored_on']  # Its own.
  assert (merged['epochs30']['scored'], merged['epochs30']['scored_at_commit']) == (
      '2026-11-25 10:00 UTC', 'older')
  assert recipes.with_recorded_rows(fresh, None) == fresh


def test_a_recipe_run_past_its_deadline_stops_and_says_so():
  images = np.random.default_rng(0).random((16, 28, 28, 1), np.float32)
  for deadline, batches, cut_short in ((0.0, 1, True), (float('inf'), 4, False)):
    model = recipes.build(recipes.RECIPES_BY_NAME['baseline'], total_steps=8)
    stop = recipes._deadline_callback(deadline)  # pylint: disable=protected-access
    seen = []
    counter = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs, seen=seen: seen.append(batch))
    model.fit(images, images, batch_size=4, epochs=2, verbose=0,
              callbacks=[stop, counter])
    assert (len(seen), stop.cut_short) == (batches if cut_short else 8, cut_short)
