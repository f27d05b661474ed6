"""Re-runs you can trust, tried for real: kill -9 inside every component, then
run again; edit project code, then run again.

Every run is a real `dae-pipeline run` process (LocalDagRunner, SQLite MLMD,
Beam, TFMA, SavedModels) on tiny IDX data made here. The runs that are killed
are forked from one process that imported TFX once (tests/e2e/zygote.py);
the runs of edited code start from scratch, to import the edited files.
"""

import json
import os
import shutil
import signal

import pytest

from components.common import serving_dir
from pipeline import recovery
from pipeline import run_summary
import pipeline_config
from tests import idx_files
from tests.e2e import zygote as zygote_lib

pytestmark = [pytest.mark.e2e, pytest.mark.slow]



def _run_args(tmp_path, source_dir):
  return ['run', '--profile', 'smoke',
          '--pipeline-root', str(tmp_path / 'root'),
          '--serving-dir', str(tmp_path / 'serving'),
          '--source-dir', source_dir,
          '--set', 'data.train_examples=80', '--set', 'data.eval_examples=30',
          '--set', 'data.test_examples=20',
          # A couple of steps: these tests are about runs, not quality; the
          # floors are off so that every run's model is blessed and pushed.
          '--set', 'training.epochs=2', '--set', 'training.max_train_steps=2',
          '--set', 'thresholds.min_psnr_db=0', '--set', 'thresholds.max_mse=1']


def _metadata_path(tmp_path):
  return str(tmp_path / 'root' / 'metadata.sqlite')


def _latest_run(tmp_path):
  store = run_summary.open_store(_metadata_path(tmp_path))
  return run_summary.run_executions(store, run_summary.run_ids(store)[-1])


def _latest_states(tmp_path):
  return {record.node_id: record.state for record in _latest_run(tmp_path)}


def _output_uri(tmp_path, node_id, key):
  return next(record.output_uris[key] for record in _latest_run(tmp_path)
              if record.node_id == node_id)


# Kill points, in the order the local runner reaches them. The Pusher is
# killed twice: with a full copy staged but not renamed into a version, and
# after the version is in place but before MLMD records the push.
KILLS = [('TfdsExampleGen',), ('StatisticsGen',), ('NoiseTransform',),
         ('Trainer',), ('Evaluator',), ('ServingCheck',), ('VisualReport',),
         ('Pusher', 'before-publish'), ('Pusher',)]


@pytest.fixture(scope='module')
def killed_runs(tmp_path_factory, zygote):
  """One root: a run killed inside each component in turn, each followed by
  the next run (which must redo the killed work), then a plain run."""
  tmp_path = tmp_path_factory.mktemp('crash')
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  args = _run_args(tmp_path, tiny.directory)
  kills = []
  for index, kill in enumerate(KILLS):
    code, output = zygote(args, tmp_path / f'kill{index}.log', crash_in=list(kill))
    assert code == -signal.SIGKILL, output[-3000:]
    assert 'crash_run: SIGKILL' in output
    kills.append(dict(kill=kill, after=_latest_states(tmp_path)))
  code, output = zygote(args, tmp_path / 'final.log')
  assert code == 0, output[-3000:]
  return dict(tmp_path=tmp_path, kills=kills, output=output,
              final=_latest_states(tmp_path))


def _killed_executions(tmp_path):
  store = run_summary.open_store(_metadata_path(tmp_path))
  return [(execution, run_summary.execution_node_id(store, execution))
          for execution in store.get_executions()
          if recovery.INTERRUPTED_PROPERTY in execution.custom_properties]


def test_plain_run_after_the_kills_completes_and_serves_one_version(killed_runs):
  tmp_path = killed_runs['tmp_path']
  assert set(killed_runs['final'].values()) <= {'COMPLETE', 'CACHED'}, killed_runs['final']
  assert len(killed_runs['final']) == 12
  # Version directories (not the push records and push lock beside them).
  served = sorted(name for name in os.listdir(tmp_path / 'serving')
                  if name.isdigit())
  assert len(served) == 1 and served[0].isdigit(), served
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  assert 'serving_default' in tf.saved_model.load(
      str(tmp_path / 'serving' / served[0])).signatures


@pytest.mark.parametrize('kill', KILLS, ids=['-'.join(kill) for kill in KILLS])
def test_each_killed_execution_is_closed_and_leaves_no_partial_output(killed_runs, kill):
  tmp_path = killed_runs['tmp_path']
  index = KILLS.index(kill)
  node_id = kill[0]
  # The kill hit the node while it ran: its execution never completed, and
  # the next run closed it (CANCELED, marked interrupted) and removed its
  # outputs, which the listing of the root no longer holds.
  assert killed_runs['kills'][index]['after'][node_id] == 'RUNNING'
  closed = [execution for execution, node in _killed_executions(tmp_path)
            if node == node_id]
  assert len(closed) == [k[0] for k in KILLS].count(node_id)
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  for execution in closed:
    assert execution.last_known_state == metadata_store_pb2.Execution.CANCELED
    leftovers = [os.path.join(root, name)
                 for root, names, _ in os.walk(tmp_path / 'root' / node_id)
                 for name in names if name == str(execution.id)]
    assert leftovers == []
  assert not [name for name in os.listdir(tmp_path / 'serving')
              if name.startswith('.staging-')]


def test_the_run_after_each_kill_redid_the_killed_node(killed_runs):
  # Run k+1 was killed later than run k: by then it had completed run k's
  # killed node (for the first Pusher kill, the next run is killed in the
  # Pusher again); the plain run redid the last one.
  for index, kill in enumerate(KILLS[:-1]):
    states = killed_runs['kills'][index + 1]['after']
    if KILLS[index + 1][0] != kill[0]:
      assert states[kill[0]] == 'COMPLETE', (kill, states)
  assert killed_runs['final'][KILLS[-1][0]] == 'COMPLETE'


def _copy_project(destination):
  root = pipeline_config.repository_root()
  for name in ('components', 'pipeline', 'schemas', 'tests'):
    shutil.copytree(os.path.join(root, name), destination / name,
                    ignore=shutil.ignore_patterns('__pycache__'))
  shutil.copy(os.path.join(root, 'pipeline_config.py'), destination)


def _edit(path, old, new):
  text = path.read_text()
  assert old in text, f'{old!r} not in {path}'
  path.write_text(text.replace(old, new, 1))


def test_edits_rerun_exactly_the_components_whose_code_changed(tmp_path):
  code = tmp_path / 'code'
  _copy_project(code)
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  args = _run_args(tmp_path, tiny.directory)
  # The copy shadows the installed project: it is first on sys.path, and each
  # run imports it afresh.
  env = dict(os.environ, PYTHONPATH=str(code))
  with zygote_lib.client(str(code), env) as run:
    code_first, output = run(args, tmp_path / 'first.log')
    assert code_first == 0, output[-3000:]
    first = _latest_states(tmp_path)
    assert first['Trainer'] == 'COMPLETE'

    # A different model: the Trainer and what consumes its model re-run.
    served_before_model = serving_dir.versions(str(tmp_path / 'serving'))
    _edit(code / 'components' / 'trainer' / 'model.py',
          'UNET = UNetSpec()', 'UNET = UNetSpec(widths=(16, 32, 32))')
    code_model, output = run(args, tmp_path / 'model.log')
    assert code_model == 0, output[-3000:]
    after_model = _latest_states(tmp_path)
    assert after_model['Trainer'] == 'COMPLETE'
    assert after_model['Evaluator'] == 'COMPLETE'
    for upstream in ('TfdsExampleGen', 'StatisticsGen', 'NoiseTransform',
                     'DataValidationGate', 'SchemaImporter'):
      assert after_model[upstream] == 'CACHED', after_model
    # The edited code is what trained: a 16-filter U-Net is smaller.
    trainer_run = _output_uri(tmp_path, 'Trainer', 'model_run')
    with open(os.path.join(trainer_run, 'training_settings.json')) as settings:
      assert json.load(settings)['parameters'] < 100_000

    # The report's code only: the report re-runs, the model is kept.
    served_before_report = serving_dir.versions(str(tmp_path / 'serving'))
    _edit(code / 'components' / 'visual_report' / 'report.py',
          '"""', '"""Edited by a test. ')
    code_report, output = run(args, tmp_path / 'report.log')
    assert code_report == 0, output[-3000:]
    after_report = _latest_states(tmp_path)
    assert after_report['VisualReport'] == 'COMPLETE'
    assert after_report['Trainer'] == 'CACHED'
    # The baseline is what is served when the run starts: the Evaluator
    # re-runs exactly when that changed (the model run may have pushed).
    baseline_changed = served_before_report != served_before_model
    expected = 'COMPLETE' if baseline_changed else 'CACHED'
    assert after_report['ServedModel'] == after_report['Evaluator'] == expected
