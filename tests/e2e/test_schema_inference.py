"""Infer, curate, import: a dataset without a curated schema runs on the one
TFX infers from its train split, `dae-pipeline schema` writes that schema to
the dataset's file, and the next run imports it. Real TFX components,
LocalDagRunner and MLMD on tiny IDX data made here; the runs end at the data
gate (what comes after does not depend on which schema was used).
"""

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from components.common import names
from pipeline import cli
from pipeline import local_runner
from pipeline import pipeline as pipeline_module
from pipeline import run_summary
import pipeline_config
from tests import idx_files

pytestmark = pytest.mark.e2e

# A dataset with no schema in the test's (empty) schemas directory: tiny IDX
# files of Fashion-MNIST's layout.
DATASET = 'fashion_mnist'
GATE = 'DataValidationGate'


def _states(records):
  return {record.node_id: record.state for record in records}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  """(pixels of an image, the settings of runs on tiny data)."""
  tmp_path = tmp_path_factory.mktemp('schema')
  tiny = idx_files.make_tiny_idx(str(tmp_path / 'idx'), DATASET)
  return tiny.train_images[0].size, {
      'pipeline_root': str(tmp_path / 'root'),
      'serving_dir': str(tmp_path / 'serving'),
      'schemas_dir': str(tmp_path / 'schemas'),  # Nothing curated there.
      'data.dataset': DATASET,
      'data.source_dir': tiny.directory,
      'data.train_examples': '80',
      'data.eval_examples': '30',
      'data.test_examples': '20',
  }


def _config(settings):
  return pipeline_config.with_overrides(pipeline_config.load_profile('smoke'),
                                        settings)


def test_infer_curate_import(data, capsys):
  pixels, settings = data
  config = _config(settings)
  assert pipeline_config.curated_schema_path(config) is None
  # 1. No curated schema: the run infers it from train and validates all
  #    three splits against it without an anomaly.
  inferred = _states(local_runner.run(config, to_node=GATE))
  assert inferred[names.SCHEMA_GEN_NODE] == 'COMPLETE'
  assert inferred[GATE] == 'COMPLETE' and 'SchemaImporter' not in inferred

  # 2. `dae-pipeline schema` writes it where the lookup finds it, from the
  #    cache of that run.
  argv = ['schema', '--profile', 'smoke']
  for name, value in settings.items():
    argv += ['--set', f'{name}={value}']
  assert cli.main(argv) == 0
  store = run_summary.open_store(config.resolved_metadata_path)
  assert _states(run_summary.run_executions(store, run_summary.run_ids(store)[-1])) == {
      node: 'CACHED' for node in ('TfdsExampleGen', 'StatisticsGen',
                                  names.SCHEMA_GEN_NODE)}
  output = pipeline_config.schema_location(config)
  said = capsys.readouterr().out.strip().splitlines()[-1]
  assert said == (f'wrote the schema inferred from the train split of {DATASET} '
                  f'to {output}; the next run imports it')
  with open(output, encoding='utf-8') as written:
    schema = text_format.Parse(written.read(), schema_pb2.Schema())
  shapes = {feature.name: [dim.size for dim in feature.shape.dim]
            for feature in schema.feature}
  assert shapes == {'image': [pixels], 'label': [1]}
  assert all(feature.type == schema_pb2.INT for feature in schema.feature)
  # It refuses to overwrite the curated file, in one line, before any work.
  assert cli.main(argv) == cli.EXIT_INVALID_CONFIG
  assert capsys.readouterr().err.strip() == (
      f'dae-pipeline: schema: {output} exists; --force overwrites it')

  # 3. The next run imports it (by content) and the data validates.
  config = _config(settings)
  assert pipeline_config.curated_schema_path(config) == output
  imported = _states(local_runner.run(config, to_node=GATE))
  assert imported['SchemaImporter'] == 'COMPLETE'
  assert names.SCHEMA_GEN_NODE not in imported
  assert imported['TfdsExampleGen'] == 'CACHED'
  assert imported[GATE] == 'COMPLETE'
