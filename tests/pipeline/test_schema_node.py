"""Which schema the pipeline validates against: the dataset's curated one,
imported by content, or one TFX's SchemaGen infers from the train split."""

import json

from tfx.components import SchemaGen

from components.common import names
from components.schema_importer.component import SchemaImporter
from pipeline import code_fingerprint
from pipeline import pipeline as pipeline_module
import pipeline_config


def _nodes(config, **kwargs):
  dag = pipeline_module.create_pipeline(config, **kwargs)
  return {node.id: node for node in dag.components}


def _schema_producer(nodes):
  """The node whose output ExampleValidator validates against."""
  return nodes['ExampleValidator'].inputs['schema'].get_data_dependent_node_ids()


def test_mnist_imports_its_curated_schema():
  nodes = _nodes(pipeline_config.load_profile('smoke'))
  assert 'SchemaGen' not in nodes
  importer = nodes['SchemaImporter']
  assert isinstance(importer, SchemaImporter)
  assert importer.exec_properties['schema_source'] == 'schemas/mnist.pbtxt'
  with open(pipeline_config.curated_schema_path(pipeline_config.load_profile('smoke')),
            encoding='utf-8') as curated:
    assert importer.exec_properties['schema_text'] == curated.read()
  assert _schema_producer(nodes) == {'SchemaImporter'}
  assert importer.exec_properties[code_fingerprint.CODE_FINGERPRINT_KEY] == (
      code_fingerprint.fingerprint([SchemaImporter.__module__]))


def _without_curated_schema(tmp_path):
  # The lookup points at an empty directory: no dataset has a curated schema.
  return pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'data.dataset': 'fashion_mnist', 'schemas_dir': str(tmp_path)})


def test_a_dataset_without_a_curated_schema_infers_it_from_the_train_split(tmp_path):
  nodes = _nodes(_without_curated_schema(tmp_path))
  assert 'SchemaImporter' not in nodes
  schema_gen = nodes[names.SCHEMA_GEN_NODE]
  assert isinstance(schema_gen, SchemaGen)
  assert schema_gen.inputs['statistics'].get_data_dependent_node_ids() == {'StatisticsGen'}
  assert schema_gen.exec_properties['infer_feature_shape']
  assert sorted(json.loads(schema_gen.exec_properties['exclude_splits'])) == [
      'eval', 'test']
  assert _schema_producer(nodes) == {names.SCHEMA_GEN_NODE}
  # TFX's code alone: no project code to key its cache on.
  assert code_fingerprint.CODE_FINGERPRINT_KEY not in schema_gen.exec_properties


def test_schema_path_and_infer_schema_override_the_lookup(tmp_path):
  curated = pipeline_config.curated_schema_path(pipeline_config.load_profile('smoke'))
  config = _without_curated_schema(tmp_path)
  given = pipeline_config.with_overrides(config, {'schema_path': curated})
  assert 'SchemaImporter' in _nodes(given)
  assert 'SchemaImporter' not in _nodes(pipeline_config.load_profile('smoke'),
                                        infer_schema=True)
