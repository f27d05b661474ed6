"""End-to-end LocalDagRunner runs of the pipeline on tiny IDX data.

Real TFX components, a real MLMD SQLite store, real Beam and the real TFDS
builder: only the data is small (made here).
"""

import dataclasses
import os

import pytest

from components.data_gate.component import DataAnomaliesError
from components.tfds_example_gen.mnist_source import MnistSourceError
from pipeline import local_runner
from pipeline import run_summary
import pipeline_config
from tests import idx_files

pytestmark = pytest.mark.e2e

NODES = ['ImportSchemaGen', 'TfdsExampleGen', 'StatisticsGen',
         'ExampleValidator', 'DataValidationGate']
SPLIT_SIZES = {'train': 80, 'eval': 30, 'test': 20}


def _config(tmp_path, source_dir, **changes):
  config = pipeline_config.with_overrides(
      pipeline_config.load_profile('smoke'), {
          'pipeline_root': str(tmp_path / 'root'),
          'serving_dir': str(tmp_path / 'serving'),
          'data.source_dir': source_dir,
          'data.train_examples': SPLIT_SIZES['train'],
          'data.eval_examples': SPLIT_SIZES['eval'],
          'data.test_examples': SPLIT_SIZES['test'],
      })
  return dataclasses.replace(config, **changes)


def _states(records):
  return {record.node_id: record.state for record in records}


def _latest_run(config):
  store = run_summary.open_store(config.resolved_metadata_path)
  return run_summary.run_executions(store, run_summary.run_ids(store)[-1])


@pytest.fixture(scope='module')
def first_runs(tmp_path_factory):
  """Runs the smoke pipeline twice on the same tiny data."""
  tmp_path = tmp_path_factory.mktemp('e2e')
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  config = _config(tmp_path, tiny.directory)
  return tiny, config, local_runner.run(config), local_runner.run(config)


def test_first_run_executes_every_component_and_splits_as_configured(first_runs):
  _, config, first, _ = first_runs
  assert sorted(record.node_id for record in first) == sorted(NODES)
  assert set(_states(first).values()) == {'COMPLETE'}
  examples_uri = _states_uri(first, 'TfdsExampleGen', 'examples')
  assert {split: run_summary.count_records(examples_uri, split)
          for split in SPLIT_SIZES} == SPLIT_SIZES
  assert os.path.isfile(config.resolved_metadata_path)
  assert config.resolved_metadata_path.startswith(config.pipeline_root)


def _states_uri(records, node_id, key):
  return next(record.output_uris[key] for record in records
              if record.node_id == node_id)


def test_second_run_is_served_from_cache(first_runs):
  _, _, first, second = first_runs
  assert _states(second) == {node: 'CACHED' for node in NODES}
  assert (_states_uri(second, 'TfdsExampleGen', 'examples') ==
          _states_uri(first, 'TfdsExampleGen', 'examples'))


def test_corrupt_source_file_fails_the_run_naming_it(first_runs):
  tiny, config, first, _ = first_runs
  with open(tiny.path('test_data'), 'r+b') as source:
    source.seek(200)
    source.write(b'\x00' * 64)  # Damages the deflate stream or its CRC.
  with pytest.raises(MnistSourceError, match='t10k-images-idx3-ubyte.gz'):
    local_runner.run(config)
  states = _states(_latest_run(config))
  # The changed bytes defeated the cache, ExampleGen failed, nothing ran after.
  assert states['TfdsExampleGen'] == 'FAILED'
  assert 'StatisticsGen' not in states and 'DataValidationGate' not in states
  store = run_summary.open_store(config.resolved_metadata_path)
  assert len(store.get_artifacts_by_type('Examples')) == 1  # Only run one's.
  assert os.listdir(os.path.dirname(_states_uri(first, 'TfdsExampleGen',
                                                'examples'))) == [
      os.path.basename(_states_uri(first, 'TfdsExampleGen', 'examples'))]


def test_edited_schema_is_enforced_and_anomalies_stop_the_run(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  schema_path = tmp_path / 'schema.pbtxt'
  with open(pipeline_config.default_schema_path()) as schema:
    schema_text = schema.read()
  schema_path.write_text(schema_text)
  config = _config(tmp_path, tiny.directory, schema_path=str(schema_path))
  assert set(_states(local_runner.run(config)).values()) == {'COMPLETE'}
  # Edited in place: labels 5..9 of the tiny data now break the label domain.
  # The cache must not keep serving the old schema from the same path.
  schema_path.write_text(schema_text.replace('max: 9', 'max: 4'))
  with pytest.raises(DataAnomaliesError, match="feature 'label'"):
    local_runner.run(config)
  states = _states(_latest_run(config))
  assert states['ImportSchemaGen'] == 'COMPLETE'
  assert states['TfdsExampleGen'] == 'CACHED'
  assert states['DataValidationGate'] == 'FAILED'
