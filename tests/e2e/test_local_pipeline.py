"""End-to-end LocalDagRunner runs of the whole pipeline on tiny IDX data.

Real TFX components, a real MLMD SQLite store, real Beam, the real TFDS
builder, real training, TFMA and SavedModels: only the data is small (made
here) and training is a few steps.
"""

import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_serving.apis import prediction_log_pb2

from components.common import push_records
from components.data_gate.component import DataAnomaliesError
from components.tfds_example_gen.sources import SourceError
from components.common import evaluation as evaluation_lib
from components.visual_report import report as report_lib
from pipeline import cli
from pipeline import local_runner
from pipeline import run_summary
from pipeline import samples
import pipeline_config
from tests import idx_files

pytestmark = pytest.mark.e2e

NODES = ['SchemaImporter', 'TfdsExampleGen', 'StatisticsGen', 'ExampleValidator',
         'DataValidationGate', 'NoiseTransform', 'Trainer',
         'ServedModel', 'Evaluator', 'ServingCheck', 'VisualReport', 'Pusher']
UPSTREAM_OF_EVALUATOR = NODES[:7]
SPLIT_SIZES = {'train': 80, 'eval': 30, 'test': 20}


def _config(tmp_path, source_dir, **overrides):
  values = {
      'pipeline_root': str(tmp_path / 'root'),
      'serving_dir': str(tmp_path / 'serving'),
      'data.source_dir': source_dir,
      'data.train_examples': SPLIT_SIZES['train'],
      'data.eval_examples': SPLIT_SIZES['eval'],
      'data.test_examples': SPLIT_SIZES['test'],
      # 32 epochs of 2 steps: enough for the tiny data to be denoised
      # better than left noisy.
      'training.epochs': 32,
      'training.max_train_steps': 64,
  }
  values.update(overrides)
  return pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), values)


def _states(records):
  return {record.node_id: record.state for record in records}


def _uri(records, node_id, key):
  return next(record.output_uris[key] for record in records
              if record.node_id == node_id)


def _latest_run(config):
  store = run_summary.open_store(config.resolved_metadata_path)
  return run_summary.run_executions(store, run_summary.run_ids(store)[-1])


def _versions(config):
  """The version directories (not the push records beside them)."""
  return sorted(name for name in os.listdir(config.serving_dir)
                if name.isdigit()) if os.path.isdir(config.serving_dir) else []


def _validation(records):
  return tfma.load_validation_result(_uri(records, 'Evaluator', 'evaluation'))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """The smoke pipeline on tiny data: a first run, then the same twice more."""
  tmp_path = tmp_path_factory.mktemp('e2e')
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  config = _config(tmp_path, tiny.directory)
  first = local_runner.run(config)
  served_after_first = _versions(config)
  second = local_runner.run(config)
  third = local_runner.run(config)
  return dict(tiny=tiny, config=config, first=first, second=second,
              third=third, served_after_first=served_after_first)


def test_first_run_executes_the_whole_dag(runs):
  assert _states(runs['first']) == {node: 'COMPLETE' for node in NODES}
  examples_uri = _uri(runs['first'], 'TfdsExampleGen', 'examples')
  noisy_uri = _uri(runs['first'], 'NoiseTransform', 'noisy_examples')
  for uri in (examples_uri, noisy_uri):
    assert {split: run_summary.count_records(uri, split)
            for split in SPLIT_SIZES} == SPLIT_SIZES
  assert runs['config'].resolved_metadata_path.startswith(runs['config'].pipeline_root)


def test_first_run_blesses_and_pushes_a_servable_model(runs):
  assert _validation(runs['first']).validation_ok
  config = runs['config']
  assert len(runs['served_after_first']) == 1
  version_dir = os.path.join(config.serving_dir, runs['served_after_first'][0])
  store = run_summary.open_store(config.resolved_metadata_path)
  pushed = store.get_artifacts_by_uri(_uri(runs['first'], 'Pusher', 'pushed_model'))[0]
  assert pushed.custom_properties['pushed'].int_value == 1
  assert pushed.custom_properties['pushed_destination'].string_value == version_dir
  loaded = tf.saved_model.load(version_dir)
  noisy, clean = samples.read_test_images(config.resolved_metadata_path, 20)
  denoised = loaded.signatures['serving_default'](images=tf.constant(noisy))['output']
  assert np.mean((denoised - clean) ** 2) < np.mean((noisy - clean) ** 2)
  # The serving check blessed it and pushed its stamped copy: TF Serving's
  # warm-up requests, one per signature.
  infra = store.get_artifacts_by_uri(_uri(runs['first'], 'ServingCheck', 'blessing'))[0]
  assert infra.custom_properties['blessed'].int_value == 1
  assert infra.custom_properties['latency_p99_ms'].double_value > 0
  warmup = os.path.join(version_dir, 'assets.extra', 'tf_serving_warmup_requests')
  logs = [prediction_log_pb2.PredictionLog.FromString(record)
          for record in tf.data.TFRecordDataset(warmup).as_numpy_iterator()]
  assert {log.predict_log.request.model_spec.signature_name for log in logs} == set(
      loaded.signatures)


def test_the_push_is_recorded_beside_its_version_with_the_run_s_facts(runs):
  config = runs['config']
  [version] = runs['served_after_first']
  record = push_records.read(config.serving_dir, version)
  evaluation = evaluation_lib.read_evaluation(_uri(runs['first'], 'Evaluator', 'evaluation'))
  assert record.metrics == push_records.headline_metrics(evaluation, evaluation_lib.CANDIDATE)
  assert set(record.metrics) == set(push_records.HEADLINE_METRICS)
  by_class = evaluation['by_class'][evaluation_lib.CANDIDATE]['psnr']
  assert record.worst_class == min(by_class, key=by_class.get)
  assert record.baseline_version is None  # Nothing was served before.
  store = run_summary.open_store(config.resolved_metadata_path)
  assert (record.run_id, record.orchestrator) == (
      run_summary.run_ids(store)[0], push_records.LOCAL)
  assert len(record.dataset_fingerprint) == len(record.code_fingerprint) == 64


def test_rerun_is_served_from_cache_and_pushes_nothing_new(runs):
  states = _states(runs['second'])
  assert all(states[node] == 'CACHED' for node in UPSTREAM_OF_EVALUATOR), states
  # The first push made the model the baseline: the Evaluator re-checks it
  # against itself, and the Pusher finds it already served.
  assert _versions(runs['config']) == runs['served_after_first']
  if states['Pusher'] != 'CACHED':
    store = run_summary.open_store(runs['config'].resolved_metadata_path)
    pushed = store.get_artifacts_by_uri(_uri(runs['second'], 'Pusher', 'pushed_model'))[0]
    assert pushed.custom_properties['pushed'].int_value == 0


def test_a_run_finding_the_same_model_served_evaluates_nothing_again(runs):
  # The second run evaluated against the model the first pushed; the third
  # finds that same model served: its baseline, evaluation and report come
  # from cache, and the Pusher finds nothing to push.
  states = _states(runs['third'])
  assert all(states[node] == 'CACHED' for node in NODES if node != 'Pusher'), states
  assert _uri(runs['third'], 'Evaluator', 'evaluation') == _uri(
      runs['second'], 'Evaluator', 'evaluation')
  assert _states(runs['second'])['Evaluator'] == 'COMPLETE'
  assert _versions(runs['config']) == runs['served_after_first']


def test_every_run_writes_a_visual_report(runs):
  first, _ = report_lib.load_report(_uri(runs['first'], 'VisualReport', 'report'))
  second, images = report_lib.load_report(_uri(runs['second'], 'VisualReport', 'report'))
  assert set(images) == {report_lib.GRID_FILENAME, report_lib.PSNR_CHART_FILENAME}
  assert first['blessed'] is True and 'baseline' not in first['overall']
  # The page for the KFP and Vertex UIs: the file at the html_report's URI,
  # where TFX's local launcher made a directory before the executor ran.
  page_uri = _uri(runs['first'], 'VisualReport', report_lib.HTML_REPORT_KEY)
  with open(page_uri, encoding='utf-8') as page:
    assert 'Verdict: blessed' in page.read()
  # The second run is compared with the model the first one pushed: itself.
  assert second['overall']['baseline']['psnr'] == pytest.approx(
      second['overall']['candidate']['psnr'])
  test_classes = {str(digit) for digit in
                  runs['tiny'].test_labels[:SPLIT_SIZES['test']]}
  assert set(second['by_class']['candidate']['psnr']) == test_classes
  assert second['dataset']['class_names'] == [str(digit) for digit in range(10)]


def test_tensorboard_logs_hold_denoised_digits_per_epoch(runs, capsys):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  from components.trainer import callbacks  # pylint: disable=g-import-not-at-top
  assert cli.main(['tensorboard', '--profile', 'smoke', '--pipeline-root',
                   runs['config'].pipeline_root, '--print-logdir']) == 0
  log_dir = capsys.readouterr().out.strip()
  assert log_dir == _uri(runs['first'], 'Trainer', 'model_run')
  images = event_accumulator.EventAccumulator(
      os.path.join(log_dir, callbacks.IMAGES_SUBDIR),
      size_guidance={event_accumulator.TENSORS: 0})
  images.Reload()
  events = images.Tensors(callbacks.IMAGES_TAG)
  # One step per epoch, each with the run_fn's images (width, height, PNGs).
  assert [event.step for event in events] == list(range(1, 33))
  assert len(tf.make_ndarray(events[-1].tensor_proto)) == 2 + 8


def test_examples_record_their_split_sizes_and_the_table_its_seconds(runs):
  from components.common import progress  # pylint: disable=g-import-not-at-top
  store = run_summary.open_store(runs['config'].resolved_metadata_path)
  for node, key in (('TfdsExampleGen', 'examples'),
                    ('NoiseTransform', 'noisy_examples')):
    artifact = store.get_artifacts_by_uri(_uri(runs['first'], node, key))[0]
    assert progress.split_sizes(_as_tfx_artifact(artifact)) == SPLIT_SIZES
  seconds = {record.node_id: record.seconds for record in runs['first']}
  assert seconds['Trainer'] > 1.0 and all(value >= 0 for value in seconds.values())
  table = run_summary.format_run(runs['first'], 123.0)
  rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
  assert rows['Trainer'] == ['COMPLETE', f'{seconds["Trainer"]:.1f}']
  assert table.splitlines()[-1].split()[:3] == ['whole', 'run', '123.0']


def _as_tfx_artifact(mlmd_artifact):
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  artifact = standard_artifacts.Examples()
  artifact.set_mlmd_artifact(mlmd_artifact)
  return artifact


def test_report_command_writes_an_offline_html_page(runs, tmp_path):
  output = tmp_path / 'report.html'
  assert cli.main(['report', '--profile', 'smoke', '--pipeline-root',
                   runs['config'].pipeline_root, '--output', str(output)]) == 0
  page = output.read_text()
  assert page.count('data:image/png;base64,') == 2
  # The newest run is a re-run: blessed, compared with itself, already served.
  assert 'Verdict: blessed' in page and 'already served as version' in page
  assert 'baseline: the same model (nothing new was trained)' in page
  assert 'noisy input (reference)' in page and 'dB, higher is better' in page


def test_degraded_candidate_is_evaluated_not_blessed_not_pushed(runs):
  config = pipeline_config.with_overrides(runs['config'],
                                          {'training.max_train_steps': 0})
  records = local_runner.run(config)
  states = _states(records)
  assert states['Trainer'] == 'COMPLETE' and states['Evaluator'] == 'COMPLETE'
  assert 'Pusher' not in states or states['Pusher'] != 'COMPLETE'
  validation = _validation(records)
  assert not validation.validation_ok
  failed = {failure.metric_key.name for slice_failures in validation.metric_validations_per_slice
            for failure in slice_failures.failures}
  assert 'psnr' in failed
  assert _versions(config) == runs['served_after_first']
  report, _ = report_lib.load_report(_uri(records, 'VisualReport', 'report'))
  assert report['blessed'] is False


def test_candidate_above_the_floors_but_worse_than_the_served_model_is_not_pushed(runs):
  # Floors out of the way: only the comparison with the served model (the
  # baseline) can refuse the untrained candidate.
  config = pipeline_config.with_overrides(runs['config'], {
      'training.max_train_steps': 0, 'thresholds.min_psnr_db': 0.0,
      'thresholds.max_mse': 1.0})
  records = local_runner.run(config)
  validation = _validation(records)
  assert not validation.validation_ok
  failures = [failure for slice_failures in validation.metric_validations_per_slice
              for failure in slice_failures.failures]
  assert failures and {failure.metric_key.name for failure in failures} == {'psnr'}
  assert all(failure.metric_threshold.HasField('change_threshold')
             for failure in failures)
  assert _states(records).get('Pusher') != 'COMPLETE'
  assert _versions(config) == runs['served_after_first']


def test_a_lost_serving_dir_gets_the_blessed_model_again_and_only_then(runs, tmp_path):
  config = runs['config']
  moved = tmp_path / 'serving-moved-away'
  os.rename(config.serving_dir, moved)
  try:
    records = local_runner.run(config)
    assert _states(records)['Trainer'] == 'CACHED'
    assert _states(records)['Pusher'] == 'COMPLETE'  # Never served from cache.
    again = _versions(config)
    assert len(again) == 1
    assert (open(os.path.join(config.serving_dir, again[0], 'saved_model.pb'), 'rb').read()
            == (moved / runs['served_after_first'][0] / 'saved_model.pb').read_bytes())
    records = local_runner.run(config)  # Served now: nothing more to push.
    assert _versions(config) == again
  finally:
    shutil.rmtree(config.serving_dir)  # Its versions and their records.
    os.rename(moved, config.serving_dir)


def test_after_a_bad_push_and_a_rollback_the_next_run_is_compared_with_the_rolled_back_model(
    runs, tmp_path, capsys):
  config = pipeline_config.with_overrides(
      runs['config'], {'serving_dir': str(tmp_path / 'serving')})
  [good] = runs['served_after_first']
  shutil.copytree(os.path.join(runs['config'].serving_dir, good),
                  os.path.join(config.serving_dir, good))
  # A bad push by hand: another model (the same one with a file more).
  bad = str(int(good) + 1)
  shutil.copytree(os.path.join(config.serving_dir, good),
                  os.path.join(config.serving_dir, bad))
  with open(os.path.join(config.serving_dir, bad, 'bad.txt'), 'w') as extra:
    extra.write('a change')
  capsys.readouterr()
  assert cli.main(['rollback', '--serving-dir', config.serving_dir]) == 0
  rollback = _versions(config)[-1]
  assert capsys.readouterr().out.strip() == (
      f'rolled back {config.serving_dir} to version {good}: served now as version '
      f'{rollback}')
  records = local_runner.run(config)
  states = _states(records)
  assert states['Trainer'] == 'CACHED'
  assert states['ServedModel'] == states['Evaluator'] == 'COMPLETE'
  store = run_summary.open_store(config.resolved_metadata_path)
  [served] = store.get_artifacts_by_uri(_uri(records, 'ServedModel', 'model'))
  assert served.custom_properties['served_version'].string_value == rollback
  # The candidate is the rolled-back model itself: already served, not pushed.
  [pushed] = store.get_artifacts_by_uri(_uri(records, 'Pusher', 'pushed_model'))
  assert pushed.custom_properties['pushed'].int_value == 0
  assert pushed.custom_properties['already_served_version'].string_value == rollback
  assert _versions(config) == [good, bad, rollback]
  # Done when: models lists the three versions, the rollback served.
  assert cli.main(['models', '--serving-dir', config.serving_dir]) == 0
  rows = [line for line in capsys.readouterr().out.splitlines()
          if line[3:13].isdigit()]
  assert [(row[:1], row[3:13]) for row in rows] == [
      ('*', rollback), (' ', bad), (' ', good)], rows
  assert f'rollback of {good}' in rows[0]


def test_threshold_out_of_reach_keeps_the_serving_dir(runs):
  config = pipeline_config.with_overrides(runs['config'],
                                          {'thresholds.min_psnr_db': 99.0})
  records = local_runner.run(config)
  assert _states(records)['Trainer'] == 'CACHED'
  assert not _validation(records).validation_ok
  assert _versions(config) == runs['served_after_first']


def test_corrupt_source_file_fails_the_run_naming_it(runs):
  tiny, config = runs['tiny'], runs['config']
  with open(tiny.path('test_data'), 'r+b') as source:
    source.seek(200)
    source.write(b'\x00' * 64)  # Damages the deflate stream or its CRC.
  with pytest.raises(SourceError, match='t10k-images-idx3-ubyte.gz'):
    local_runner.run(config)
  states = _states(_latest_run(config))
  # The changed bytes defeated the cache, ExampleGen failed, nothing ran after.
  assert states['TfdsExampleGen'] == 'FAILED'
  assert set(states) & set(NODES[2:]) <= {'SchemaImporter', 'ServedModel'}
  store = run_summary.open_store(config.resolved_metadata_path)
  assert len(store.get_artifacts_by_type('Examples')) == 2  # Run one's two.
  assert _versions(config) == runs['served_after_first']


def test_edited_schema_is_enforced_and_anomalies_stop_the_run(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  schema_path = tmp_path / 'schema.pbtxt'
  with open(pipeline_config.curated_schema_path(pipeline_config.load_profile('smoke'))) as schema:
    schema_text = schema.read()
  schema_path.write_text(schema_text)
  config = dataclasses.replace(
      _config(tmp_path, tiny.directory, **{'training.max_train_steps': 1}),
      schema_path=str(schema_path))
  local_runner.run(config)
  # Edited in place: labels 5..9 of the tiny data now break the label domain.
  # The cache must not keep serving the old schema from the same path.
  schema_path.write_text(schema_text.replace('max: 9', 'max: 4'))
  with pytest.raises(DataAnomaliesError, match="feature 'label'"):
    local_runner.run(config)
  states = _states(_latest_run(config))
  assert states['SchemaImporter'] == 'COMPLETE'
  assert states['TfdsExampleGen'] == 'CACHED'
  assert states['DataValidationGate'] == 'FAILED'
  assert 'NoiseTransform' not in states and 'Trainer' not in states


def test_pushed_model_denoises_through_saved_model_cli(runs, tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from pipeline import cli  # pylint: disable=g-import-not-at-top
  config = runs['config']
  noisy_path = str(tmp_path / 'noisy.npy')
  assert cli.main(['sample', '--profile', 'smoke', '--pipeline-root',
                   config.pipeline_root, '--count', '3', '--output', noisy_path]) == 0
  noisy, clean = np.load(noisy_path), np.load(str(tmp_path / 'noisy.clean.npy'))
  assert noisy.shape == clean.shape == (3, 28, 28, 1)
  saved_model_cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  version_dir = os.path.join(config.serving_dir, runs['served_after_first'][0])
  shown = subprocess.run([saved_model_cli, 'show', '--all', '--dir', version_dir],
                         capture_output=True, text=True, check=True).stdout
  assert "signature_def['serving_default']" in shown
  assert "signature_def['serving_examples']" in shown
  # What a REST client sends image files to ({"b64": ...}): docs/serving.md.
  assert "signature_def['serving_image_bytes']" in shown
  subprocess.run([saved_model_cli, 'run', '--dir', version_dir, '--tag_set', 'serve',
                  '--signature_def', 'serving_default',
                  '--inputs', f'images={noisy_path}', '--outdir', str(tmp_path / 'out')],
                 capture_output=True, text=True, check=True)
  denoised = np.load(str(tmp_path / 'out' / 'output.npy'))
  assert denoised.shape == (3, 28, 28, 1)
  assert np.mean((denoised - clean) ** 2) < np.mean((noisy - clean) ** 2)
