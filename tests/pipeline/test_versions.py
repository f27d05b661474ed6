"""Version history and rollback of a serving dir, on a disk and on gs://.

Records are written by the real Pusher executor on tiny artifacts (a
SavedModel-shaped directory, a TFMA evaluation in TFMA's own file format, a
blessing naming ServedModel's real copy of the baseline); `models` and
`rollback` run through the CLI; gs:// is tests/gcs_emulator.py's emulator.
"""

import dataclasses
import datetime
import json
import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow_model_analysis.proto import metrics_for_slice_pb2
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.common import dataset_info
from components.common import noise
from components.common import push_records
from components.common import serving_dir
from components.common import serving_lock
from components.pusher import executor as pusher_executor
from components.served_model import executor as served_model_executor
from pipeline import cli
from pipeline import report_page
from pipeline import version_chart
from pipeline import versions
from tests import gcs_emulator

BUCKET = 'history-bucket'
DATA_FINGERPRINT = 'da7a' * 16
CODE_FINGERPRINT = 'c0de' * 16
MNIST = dataset_info.DatasetInfo('mnist', (28, 28, 1), tuple('0123456789'))


@pytest.fixture(scope='module')
def gcs():
  """gs://BUCKET through the emulator, for this process (TF's filesystem)."""
  with gcs_emulator.running(BUCKET) as environment, gcs_emulator.applied(environment):
    yield f'gs://{BUCKET}'


@pytest.fixture(params=['local', pytest.param('gs', marks=pytest.mark.slow)])
def serving(request, tmp_path):
  """A serving dir: a directory, or a bucket prefix (the artifacts stay in
  tmp_path: TFMA's files are written with tf.io.TFRecordWriter, which the
  emulator does not take)."""
  if request.param == 'local':
    return str(tmp_path / 'serving')
  return f'{request.getfixturevalue("gcs")}/{tmp_path.name}/serving'


def _write(path, content: bytes):
  fileio.makedirs(path.rpartition('/')[0])
  with fileio.open(path, 'wb') as output:
    output.write(content)


def _model(uri, content: bytes):
  """A Model artifact whose Format-Serving holds a SavedModel's files."""
  model = standard_artifacts.Model()
  model.uri = uri
  _write(f'{uri}/Format-Serving/variables/variables.index', b'index-' + content)
  _write(f'{uri}/Format-Serving/saved_model.pb', content)
  return model


def _metric(name, value, model):
  return metrics_for_slice_pb2.MetricsForSlice.MetricKeyAndValue(
      key=metrics_for_slice_pb2.MetricKey(name=name, model_name=model),
      value=metrics_for_slice_pb2.MetricValue(double_value={'value': value}))


def _evaluation(uri, psnr, class_psnr, baseline_psnr=None):
  """A ModelEvaluation in TFMA's format (metrics*.tfrecord of MetricsForSlice,
  what tfma.load_metrics reads): overall and per-label slices."""
  models = {'candidate': (psnr, class_psnr)}
  if baseline_psnr is not None:
    models['baseline'] = (baseline_psnr, {label: baseline_psnr for label in class_psnr})
  overall = metrics_for_slice_pb2.MetricsForSlice()
  for model, (value, _) in models.items():
    overall.metric_keys_and_values.extend([
        _metric('psnr', value, model), _metric('ssim', value / 30, model),
        _metric('mse', 10 ** (-value / 10), model)])
  slices = [overall]
  for label in class_psnr:
    per_class = metrics_for_slice_pb2.MetricsForSlice()
    per_class.slice_key.single_slice_keys.add(column='label', int64_value=label)
    per_class.metric_keys_and_values.extend(
        _metric('psnr', by_class[label], model)
        for model, (_, by_class) in models.items())
    slices.append(per_class)
  fileio.makedirs(uri)
  with tf.io.TFRecordWriter(f'{uri}/metrics-00000-of-00001.tfrecord') as writer:
    for metrics in slices:
      writer.write(metrics.SerializeToString())
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = uri
  return evaluation


def _served_model(root, serving, name):
  """ServedModel's executor: the baseline the Evaluator compared with."""
  model = standard_artifacts.Model()
  model.uri = f'{root}/{name}/served'
  served_model_executor.Executor().Do(
      {}, {served_model_executor.MODEL_KEY: [model]},
      {served_model_executor.SERVING_DIR_KEY: serving})
  return model


def _examples(uri, info, spec):
  """NoiseTransform's output as the Evaluator read it: the dataset's
  description and the noise settings recorded on it."""
  examples = standard_artifacts.Examples()
  examples.uri = uri
  dataset_info.record(examples, info)
  noise.record_spec(examples, spec)
  return examples


def _push(root, serving, content, name, psnr, run_id='run-1', context=True,
          pushed_uri=None, evaluation=True, artifact=False, info=MNIST,
          noise_spec=noise.NoiseSpec()):
  """One real Pusher execution of a blessed model, as a local run makes it:
  the blessing names ServedModel's copy of what is served as its baseline,
  which the Pusher takes as baseline_model; the examples the Evaluator ran
  on are `info`'s with `noise_spec`'s noise."""
  baseline = _served_model(root, serving, name)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = f'{root}/{name}/blessing'
  blessing.set_int_custom_property('blessed', 1)
  has_baseline = serving_dir.holds_model(baseline)
  if has_baseline:
    blessing.set_string_custom_property('baseline_model', baseline.uri)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = pushed_uri or f'{root}/{name}/pushed'
  inputs = {'model': [_model(f'{root}/{name}/model', content)],
            'model_blessing': [blessing], 'baseline_model': [baseline],
            'examples': [_examples(f'{root}/{name}/examples', info, noise_spec)]}
  if evaluation:
    inputs['evaluation'] = [_evaluation(
        f'{root}/{name}/evaluation', psnr,
        {0: psnr + 1, 1: psnr - 2, 2: psnr}, psnr - 0.5 if has_baseline else None)]
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving))
  executor = pusher_executor.Executor(
      base_executor.BaseExecutor.Context(pipeline_run_id=run_id) if context else None)
  executor.Do(inputs, {'pushed_model': [pushed]}, {
      'push_destination': proto_utils.proto_to_json(destination),
      push_records.DATASET_FINGERPRINT_KEY: DATA_FINGERPRINT,
      push_records.MODEL_CODE_FINGERPRINT_KEY: CODE_FINGERPRINT})
  return pushed if artifact else pushed.get_string_custom_property('pushed_version')


def _hand_push(serving, version, content):
  """A version copied in by hand: no record."""
  _write(f'{serving}/{version}/variables/variables.index', b'index-' + content)
  _write(f'{serving}/{version}/saved_model.pb', content)


def _cli(capsys, *argv):
  capsys.readouterr()  # What the pushes before it logged.
  status = cli.main(list(argv))
  captured = capsys.readouterr()
  return status, captured.out, captured.err


def _table(listing):
  """The header and rows of a `models` listing: its lines up to the blank
  one before the legend."""
  lines = listing.splitlines()
  assert '' in lines, listing
  return lines[:lines.index('')]


def _rows(listing):
  """{version: (served mark, rest of the row)} of a `models` listing, its
  columns found under the header's names (they are as wide as their cells)."""
  header, *lines = _table(listing)
  start, end = header.index('VERSION'), header.index('PUSHED AT')
  rows = {}
  for line in lines:
    mark, version = line[:1].strip(), line[start:end].strip()
    rows[version] = (mark, line[end:])
  return rows


# Records written by the Pusher.

def test_a_push_records_metrics_worst_class_baseline_run_and_fingerprints(tmp_path, serving):
  root = str(tmp_path)
  first = _push(root, serving, b'first', 'a', psnr=20.0, run_id='run-a')
  second = _push(root, serving, b'second', 'b', psnr=22.0, run_id='run-b')
  record = push_records.read(serving, second)
  assert record.version == second
  pushed_at = datetime.datetime.fromisoformat(record.pushed_at)
  assert pushed_at.utcoffset() == datetime.timedelta(0)
  assert abs((datetime.datetime.now(datetime.timezone.utc) - pushed_at).total_seconds()) < 300
  assert record.metrics['psnr'] == pytest.approx(22.0)
  assert record.metrics['ssim'] == pytest.approx(22.0 / 30)
  assert record.metrics['mse'] == pytest.approx(10 ** -2.2)
  assert (record.worst_class, record.worst_class_psnr) == (1, pytest.approx(20.0))
  assert record.baseline_version == first
  assert record.psnr_gain_db == pytest.approx(0.5)
  assert (record.run_id, record.orchestrator) == ('run-b', push_records.LOCAL)
  assert (record.dataset_fingerprint, record.code_fingerprint) == (
      DATA_FINGERPRINT, CODE_FINGERPRINT)
  assert (record.dataset, record.image_shape, record.noise) == (
      'mnist', [28, 28, 1], 'gaussian stddev=0.2')
  assert record.rollback_of is None
  first_record = push_records.read(serving, first)
  assert (first_record.baseline_version, first_record.psnr_gain_db) == (None, None)
  # The baseline is the version served when it ran, not any older one.
  third = _push(root, serving, b'third', 'c', psnr=23.0, run_id='run-c')
  assert push_records.read(serving, third).baseline_version == second


def test_a_record_round_trips_what_it_was_measured_on(tmp_path):
  serving = str(tmp_path / 'serving')
  record = push_records.for_push(
      None, None, 'run-1', push_records.LOCAL, dataset='cifar10',
      image_shape=(32, 32, 3), noise='salt_and_pepper amount=0.1')
  push_records.write(serving, dataclasses.replace(record, version='5'))
  read = push_records.read(serving, '5')
  assert (read.dataset, read.image_shape, read.noise) == (
      'cifar10', [32, 32, 3], 'salt_and_pepper amount=0.1')


def test_an_older_record_without_them_still_reads_and_a_bad_one_is_skipped(tmp_path):
  serving = str(tmp_path / 'serving')
  fileio.makedirs(push_records.records_directory(serving))
  records = {'5': {'version': '5', 'pushed_at': '2026-01-01T00:00:00+00:00',
                   'metrics': {'psnr': 21.0}, 'run_id': 'old-run',
                   'a_newer_field': 1},
             '6': {'version': '6', 'pushed_at': '2026-01-01T00:00:00+00:00',
                   'image_shape': '281'}}
  for version, values in records.items():
    _write(push_records.record_path(serving, version), json.dumps(values).encode())
  old = push_records.read(serving, '5')
  assert (old.run_id, old.metrics) == ('old-run', {'psnr': 21.0})
  assert (old.dataset, old.image_shape, old.noise) == ('', [], '')
  assert push_records.read(serving, '6') is None  # Logged, not a crash.
  assert list(push_records.read_all(serving)) == ['5']


def test_on_kubeflow_the_run_is_named_by_the_output_uri(tmp_path):
  serving = str(tmp_path / 'serving')
  # KFP's layout: <root>/<pipeline>/<run>/<task>/<salt>/<key>; no run id in
  # the executor's context there.
  version = _push(str(tmp_path), serving, b'model', 'a', psnr=20.0, context=False,
                  pushed_uri=str(tmp_path / 'root/dae/run-77/Pusher/5f3a/pushed_model'))
  record = push_records.read(serving, version)
  assert (record.run_id, record.orchestrator) == ('run-77', push_records.KUBEFLOW)


def test_the_record_is_there_before_saved_model_pb_lands(tmp_path, monkeypatch):
  serving = f'ram://{tmp_path.name}/serving'  # An object store: copied in place.
  seen = []
  real_copy = serving_dir.fileio.copy

  def watching_copy(source, destination, overwrite=False):
    if destination.startswith(serving) and destination.endswith('saved_model.pb'):
      version = destination.split('/')[-2]
      seen.append(fileio.exists(push_records.record_path(serving, version)))
    return real_copy(source, destination, overwrite=overwrite)

  monkeypatch.setattr(serving_dir.fileio, 'copy', watching_copy)
  _push(str(tmp_path), serving, b'model', 'a', psnr=20.0)
  assert seen == [True]


def test_a_failed_push_leaves_neither_version_nor_record(tmp_path, monkeypatch):
  serving = str(tmp_path / 'serving')

  def broken_copy(source, destination, **kwargs):
    raise OSError('disk full')

  monkeypatch.setattr(serving_dir, 'copy_tree', broken_copy)
  with pytest.raises(OSError, match='disk full'):
    _push(str(tmp_path), serving, b'model', 'a', psnr=20.0)
  assert serving_dir.versions(serving) == []
  assert push_records.read_all(serving) == {}


def test_a_push_without_an_evaluation_has_a_record_without_metrics(tmp_path):
  serving = str(tmp_path / 'serving')
  version = _push(str(tmp_path), serving, b'model', 'a', psnr=20.0, evaluation=False)
  record = push_records.read(serving, version)
  assert record.metrics == {} and record.worst_class is None
  assert record.run_id == 'run-1'


# `dae-pipeline models`.

def test_models_lists_every_version_newest_first_and_marks_the_served_one(tmp_path, serving, capsys):
  root = str(tmp_path)
  first = _push(root, serving, b'first', 'a', psnr=20.0, run_id='run-a')
  second = _push(root, serving, b'second', 'b', psnr=22.0, run_id='run-b')
  by_hand = str(int(second) + 1)
  _hand_push(serving, by_hand, b'by hand')
  # A push killed mid-copy: its record, and a version without saved_model.pb.
  killed = str(int(second) + 2)
  _write(f'{serving}/{killed}/variables/variables.index', b'half')
  push_records.write(serving, push_records.PushRecord(killed, push_records.utc_now()))
  # A record of a version no longer there (an interrupted push removed).
  push_records.write(serving, push_records.PushRecord('17', push_records.utc_now()))
  status, out, _ = _cli(capsys, 'models', '--serving-dir', serving)
  assert status == 0
  rows = _rows(out)
  assert list(rows) == [killed, by_hand, second, first]
  assert [mark for mark, _ in rows.values()] == ['', '*', '', '']
  assert 'incomplete' in rows[killed][1]
  assert 'no push record' in rows[by_hand][1]
  assert '22.00' in rows[second][1] and '0.7333' in rows[second][1]
  assert 'mnist 28x28x1' in rows[second][1]
  assert '1 (20.00 dB)' in rows[second][1]
  assert f'{first} +0.50 dB' in rows[second][1]
  assert 'local:run-b' in rows[second][1]
  assert f'{DATA_FINGERPRINT[:7]}/{CODE_FINGERPRINT[:7]}' in rows[second][1]
  assert 'first push' in rows[first][1]


def _cells_under_headers(listing):
  """{version: {column: cell}} of a listing's rows with a cell in every
  column, each cell read from its header's start to the next one's, after
  checking that every cell begins exactly under its header."""
  header, *lines = _table(listing)
  starts = [header.index(name) for name in versions.COLUMNS[1:]]
  assert starts == sorted(starts), header
  table = {}
  for line in lines:
    for start in starts:
      assert line[start - 2:start] == '  ' and line[start] != ' ', (line, start)
    cells = [line[start:end].strip()
             for start, end in zip(starts, starts[1:] + [len(line)])]
    table[cells[0]] = dict(zip(versions.COLUMNS[1:], cells))
  return table


def test_models_keeps_every_column_aligned_whatever_their_widths(tmp_path, capsys):
  serving = str(tmp_path / 'serving')
  root = str(tmp_path)
  _push(root, serving, b'first', 'a', psnr=20.0, run_id='run-a')
  _push(root, serving, b'second', 'b', psnr=22.0,
        run_id='a-run-id-far-longer-than-any-column-was-sized-for-0123456789',
        info=dataset_info.DatasetInfo('a-dataset-with-a-long-name', (300, 200, 3)),
        noise_spec=noise.NoiseSpec(kind='random_gaussian', min_stddev=0.05,
                                   max_stddev=0.45, clip=True))
  # An older record, of a version pushed before records said what they were
  # measured on: its cells say '?', not nothing.
  old = str(int(serving_dir.newest_complete_version(serving)) + 1)
  _hand_push(serving, old, b'old')
  push_records.write(serving, push_records.PushRecord(
      old, '2026-01-01T00:00:00+00:00', metrics={'psnr': 19.0}))
  _, out, _ = _cli(capsys, 'models', '--serving-dir', serving)
  table = _cells_under_headers(out)
  assert len(table) == 3
  assert table[old]['DATASET'] == table[old]['NOISE'] == '?'
  newest = sorted(table, key=int)[1]
  assert table[newest]['NOISE'] == 'random_gaussian min_stddev=0.05 max_stddev=0.45, clipped'
  assert table[newest]['DATASET'] == 'a-dataset-with-a-long-name 300x200x3'
  assert table[newest]['RUN'] == (
      'local:a-run-id-far-longer-than-any-column-was-sized-for-0123456789')


def test_models_compares_only_versions_measured_on_the_same_data_and_noise(tmp_path, capsys):
  # The issue: a version at 22.53 dB "beat" one showing 23.77 by +0.69 dB,
  # each figure on its own noise, which nothing showed.
  serving, root = str(tmp_path / 'serving'), str(tmp_path)
  salt = noise.NoiseSpec(kind='salt_and_pepper', amount=0.1)
  gaussian = noise.NoiseSpec(kind='gaussian', stddev=0.5)
  first = _push(root, serving, b'first', 'a', psnr=23.77, noise_spec=gaussian)
  second = _push(root, serving, b'second', 'b', psnr=22.53, noise_spec=salt)
  third = _push(root, serving, b'third', 'c', psnr=22.00, noise_spec=salt)
  fourth = _push(root, serving, b'fourth', 'd', psnr=24.50, noise_spec=salt,
                 info=dataset_info.DatasetInfo('fashion_mnist', (28, 28, 1)))
  assert _cli(capsys, 'rollback', third, '--serving-dir', serving)[0] == 0
  _, out, _ = _cli(capsys, 'models', '--serving-dir', serving)
  table = _cells_under_headers(out)
  rollback = serving_dir.newest_complete_version(serving)
  assert (table[second]['NOISE'], table[first]['NOISE']) == (
      'salt_and_pepper amount=0.1', 'gaussian stddev=0.5')
  # BEAT says where the Evaluator measured the gain: on its own test data.
  assert table[second]['BEAT'] == f'{first} +0.50 dB'
  # Served: the rollback to `third` (salt and pepper on mnist). Only the
  # versions measured there compare with it.
  assert table[rollback]['VS SERVED'] == '-'
  assert table[third]['VS SERVED'] == '+0.00 dB'
  assert table[second]['VS SERVED'] == '+0.53 dB'
  assert table[first]['VS SERVED'] == 'not comparable'  # Other noise.
  assert table[fourth]['VS SERVED'] == 'not comparable'  # Other dataset.
  assert table[fourth]['DATASET'] == 'fashion_mnist 28x28x1'


def test_models_of_an_empty_serving_dir_says_so(tmp_path, capsys):
  status, out, _ = _cli(capsys, 'models', '--serving-dir', str(tmp_path / 'none'))
  assert status == 0 and out.strip() == f'no versions in {tmp_path / "none"}'


def test_versions_are_ordered_as_numbers_in_the_listing_and_rollbacks(tmp_path, capsys):
  # As strings '10' < '2' < '9': 9 would be served and listed newest, and a
  # rollback from 9 would go "back" to 10.
  serving = str(tmp_path / 'serving')
  for version, content in (('2', b'two'), ('9', b'nine'), ('10', b'ten')):
    _hand_push(serving, version, content)
  _, listing, _ = _cli(capsys, 'models', '--serving-dir', serving)
  rows = _rows(listing)
  assert list(rows) == ['10', '9', '2']
  assert [mark for mark, _ in rows.values()] == ['*', '', '']
  status, out, err = _cli(capsys, 'rollback', '--serving-dir', serving)
  assert status == 0, err
  assert out.startswith(f'rolled back {serving} to version 9:'), out
  # Served: a copy of 9; rolling back again goes to 2, the one before 9.
  status, out, err = _cli(capsys, 'rollback', '--serving-dir', serving)
  assert status == 0, err
  assert out.startswith(f'rolled back {serving} to version 2:'), out
  assert serving_dir.directory_digest(
      f'{serving}/{serving_dir.newest_complete_version(serving)}') == (
          serving_dir.directory_digest(f'{serving}/2'))


# `dae-pipeline rollback`.

def test_two_pushes_and_a_rollback_serve_the_first_model_as_a_third_version(tmp_path, serving, capsys):
  root = str(tmp_path)
  first = _push(root, serving, b'first', 'a', psnr=20.0, run_id='run-a')
  second = _push(root, serving, b'second', 'b', psnr=22.0, run_id='run-b')
  status, out, err = _cli(capsys, 'rollback', '--serving-dir', serving)
  assert status == 0, err
  third = serving_dir.newest_complete_version(serving)
  assert int(third) > int(second)
  assert out.strip() == (f'rolled back {serving} to version {first}: served now '
                         f'as version {third}')
  assert serving_dir.directory_digest(f'{serving}/{third}') == (
      serving_dir.directory_digest(f'{serving}/{first}'))
  record = push_records.read(serving, third)
  assert record.rollback_of == first
  original = push_records.read(serving, first)
  assert (record.metrics, record.worst_class, record.run_id) == (
      original.metrics, original.worst_class, original.run_id)
  # What its figures were measured on comes with them.
  assert (record.dataset, record.image_shape, record.noise) == (
      original.dataset, original.image_shape, original.noise) == (
          'mnist', [28, 28, 1], 'gaussian stddev=0.2')
  assert record.pushed_at >= original.pushed_at
  # Done when: three versions listed, the rollback marked served.
  _, listing, _ = _cli(capsys, 'models', '--serving-dir', serving)
  rows = _rows(listing)
  assert list(rows) == [third, second, first]
  assert [mark for mark, _ in rows.values()] == ['*', '', '']
  assert f'rollback of {first}' in rows[third][1]
  # The next run's baseline is the rolled-back model.
  baseline = _served_model(root, serving, 'next-run')
  assert baseline.get_string_custom_property('served_version') == third
  assert serving_dir.directory_digest(f'{baseline.uri}/Format-Serving') == (
      serving_dir.directory_digest(f'{serving}/{first}'))


def test_rollback_to_a_named_version_and_again_goes_further_back(tmp_path, capsys):
  serving = str(tmp_path / 'serving')
  pushed = [_push(str(tmp_path), serving, content, name, psnr=psnr)
            for content, name, psnr in ((b'one', 'a', 20.0), (b'two', 'b', 21.0),
                                        (b'three', 'c', 22.0))]
  assert _cli(capsys, 'rollback', pushed[1], '--serving-dir', serving)[0] == 0
  assert push_records.read(
      serving, serving_dir.newest_complete_version(serving)).rollback_of == pushed[1]
  # Served: a copy of pushed[1]; rolling back again serves what came before it.
  assert _cli(capsys, 'rollback', '--serving-dir', serving)[0] == 0
  assert push_records.read(
      serving, serving_dir.newest_complete_version(serving)).rollback_of == pushed[0]


def test_rollback_refuses_unknown_incomplete_and_served_versions(tmp_path, serving, capsys):
  root = str(tmp_path)
  status, _, err = _cli(capsys, 'rollback', '--serving-dir', serving)
  assert status == 2 and 'nothing is served' in err
  first = _push(root, serving, b'first', 'a', psnr=20.0)
  status, _, err = _cli(capsys, 'rollback', '--serving-dir', serving)
  assert status == 2 and f'no complete version older than {first}' in err
  second = _push(root, serving, b'second', 'b', psnr=22.0)
  half = str(int(first) - 1)  # Older than the served one, never completed.
  _write(f'{serving}/{half}/variables/variables.index', b'half')
  before = serving_dir.versions(serving)
  refusals = {'123': 'no version 123 (versions: ',
              half: f'version {half} is incomplete',
              second: f'version {second} is already the one served'}
  for version, reason in refusals.items():
    status, out, err = _cli(capsys, 'rollback', version, '--serving-dir', serving)
    assert (status, out) == (2, ''), err
    assert len(err.strip().splitlines()) == 1 and reason in err, err
  assert serving_dir.versions(serving) == before  # Nothing published.
  # After a rollback to `first`, `first` is what is served (as a copy).
  assert _cli(capsys, 'rollback', first, '--serving-dir', serving)[0] == 0
  status, _, err = _cli(capsys, 'rollback', first, '--serving-dir', serving)
  assert status == 2 and 'holds the model served now' in err


# The report page's chart.

def test_the_chart_marks_rollbacks_and_the_served_version(tmp_path):
  serving = str(tmp_path / 'serving')
  _push(str(tmp_path), serving, b'first', 'a', psnr=20.0)
  _push(str(tmp_path), serving, b'second', 'b', psnr=22.0)
  versions.rollback(serving)
  chart = version_chart.psnr_chart_svg(versions.list_versions(serving))
  assert chart.startswith('<svg') and chart.count('<circle') == 3
  assert chart.count('class="rollback"') == 1
  assert chart.count('stroke="#222"') == 1  # The served one, ringed.
  # The rollback is the newest, rightmost point, at the first push's PSNR.
  circles = [circle.split('"') for circle in chart.split('<circle')[1:]]
  assert 'class="rollback"' in '"'.join(circles[-1])
  page_chart = report_page._history(serving)  # pylint: disable=protected-access
  assert str(page_chart) == chart
  assert report_page._history(str(tmp_path / 'no-records')) is None  # pylint: disable=protected-access


def test_the_chart_joins_only_versions_measured_on_the_served_one_s_noise(tmp_path):
  serving = str(tmp_path / 'serving')
  salt = noise.NoiseSpec(kind='salt_and_pepper', amount=0.1)
  _push(str(tmp_path), serving, b'first', 'a', psnr=23.77)
  _push(str(tmp_path), serving, b'second', 'b', psnr=22.53, noise_spec=salt)
  _push(str(tmp_path), serving, b'third', 'c', psnr=22.80, noise_spec=salt)
  chart = version_chart.psnr_chart_svg(versions.list_versions(serving))
  line = chart.split('points="')[1].split('"')[0].split()
  circles = chart.split('<circle')[1:]
  centres = [f'{circle.split("cx=")[1].split(chr(34))[1]},'
             f'{circle.split("cy=")[1].split(chr(34))[1]}' for circle in circles]
  assert line == centres[1:]  # Not through the first, on Gaussian noise.
  assert 'fill="none"' in circles[0] and 'not comparable' in circles[0]
  assert 'on gaussian stddev=0.2' in circles[0]
  assert all('fill="none"' not in circle and 'not comparable' not in circle
             for circle in circles[1:])


def test_a_serving_dir_that_cannot_be_read_leaves_the_chart_out_not_the_page(
    tmp_path, monkeypatch):
  serving = str(tmp_path / 'serving')
  _push(str(tmp_path), serving, b'first', 'a', psnr=20.0)

  def unreadable(base_directory):
    raise PermissionError(f'{base_directory}: 403 Forbidden')

  monkeypatch.setattr(versions, 'list_versions', unreadable)
  assert report_page._history(serving) is None  # pylint: disable=protected-access


def test_models_and_rollback_import_neither_tfx_v1_nor_tfma(tmp_path):
  serving = str(tmp_path / 'serving')
  _hand_push(serving, '100', b'one')
  _hand_push(serving, '200', b'two')
  code = ('import sys; from pipeline import cli\n'
          f'codes = [cli.main(["models", "--serving-dir", {serving!r}]),\n'
          f'         cli.main(["rollback", "--serving-dir", {serving!r}])]\n'
          'heavy = [name for name in ("tfx.v1", "tensorflow_model_analysis") '
          'if name in sys.modules]\n'
          'sys.exit(f"{codes} {heavy}" if codes != [0, 0] or heavy else 0)')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert serving_dir.versions(serving)[-1] != '200'  # The rollback published.


def test_records_of_versions_long_gone_are_removed_by_the_next_push(tmp_path):
  serving = str(tmp_path / 'serving')
  old, young = '1000', str(int(serving_dir.time.time()) - 60)  # Young: maybe a push in progress.
  for version in (old, young):
    push_records.write(serving, push_records.PushRecord(version, push_records.utc_now()))
  version = _push(str(tmp_path), serving, b'model', 'a', psnr=20.0)
  assert sorted(push_records.read_all(serving)) == sorted([young, version])


def test_the_model_a_rollback_took_out_of_service_is_not_pushed_again(tmp_path, capsys):
  # A run after the rollback blesses the rolled-away model again (its Trainer
  # from cache): pushing it would undo the rollback without a word.
  root, serving = str(tmp_path), str(tmp_path / 'serving')
  first = _push(root, serving, b'first', 'a', psnr=20.0)
  second = _push(root, serving, b'second', 'b', psnr=22.0)
  assert _cli(capsys, 'rollback', '--serving-dir', serving)[0] == 0
  rollback = serving_dir.newest_complete_version(serving)
  assert push_records.read(serving, rollback).rolled_back_from == second
  again = _push(root, serving, b'second', 'again', psnr=22.0, artifact=True)
  assert again.get_int_custom_property('pushed') == 0
  assert again.get_string_custom_property(pusher_executor.NOT_PUSHED_REASON_KEY) == (
      f'this model is version {second}, which the rollback published as version '
      f'{rollback} took out of service; not pushed again (serve it on purpose '
      f'with: dae-pipeline rollback {second})')
  assert serving_dir.newest_complete_version(serving) == rollback
  # A new model is pushed as ever, and rolling forward on purpose works.
  assert _push(root, serving, b'third', 'c', psnr=23.0)
  assert _cli(capsys, 'rollback', second, '--serving-dir', serving)[0] == 0


def test_a_rollback_during_a_push_waits_then_says_who_pushes(tmp_path, capsys,
                                                             monkeypatch):
  serving = str(tmp_path / 'serving')
  _push(str(tmp_path), serving, b'first', 'a', psnr=20.0)
  _push(str(tmp_path), serving, b'second', 'b', psnr=22.0)
  monkeypatch.setattr(serving_lock, 'WAIT_S', 0.5)
  script = ('import sys, time; from components.common import serving_lock\n'
            'with serving_lock.hold(sys.argv[1]):\n print("held", flush=True); '
            'time.sleep(3600)')  # Killed below.
  holder = subprocess.Popen([sys.executable, '-c', script, serving],
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    status, _, err = _cli(capsys, 'rollback', '--serving-dir', serving)
  finally:
    holder.kill()
    holder.wait()
  assert status == cli.EXIT_BUSY
  assert err.splitlines()[-1].startswith(
      f'dae-pipeline: rollback: serving dir {serving} is being pushed to by pid '
      f'{holder.pid}'), err
  assert len(serving_dir.versions(serving)) == 2


def test_models_names_the_worst_class_by_its_dataset_s_name(tmp_path, capsys):
  serving = str(tmp_path / 'serving')
  pets = dataset_info.DatasetInfo('pets', (28, 28, 1), ('cats', 'dogs', 'fish'))
  version = _push(str(tmp_path), serving, b'first', 'a', psnr=20.0, info=pets)
  assert push_records.read(serving, version).worst_class_name == 'dogs'  # Label 1.
  _, out, _ = _cli(capsys, 'models', '--serving-dir', serving)
  assert _cells_under_headers(out)[version]['WORST CLASS'] == 'dogs (18.00 dB)'
