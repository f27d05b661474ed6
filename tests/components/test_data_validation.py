"""The curated schema and the data gate, on real TFDV statistics of small data.

Examples are written as the ExampleGen writes them; TFX's own StatisticsGen
and ExampleValidator executors compute statistics and anomalies; the gate
must pass clean data and stop on each injected anomaly, naming it.
"""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.components.example_validator import executor as validator_executor
from tfx.components.statistics_gen import executor as statistics_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.data_gate import component as data_gate
from components.schema_importer import component as schema_importer
import pipeline_config

SPLITS = ('train', 'eval', 'test')
# MNIST's curated schema (the tiny examples here are MNIST's shape).
MNIST_SCHEMA = pipeline_config.curated_schema_path(pipeline_config.PipelineConfig())


def _example(image, label):
  features = {}
  if image is not None:
    features['image'] = tf.train.Feature(int64_list=tf.train.Int64List(value=image))
  if label is not None:
    features['label'] = tf.train.Feature(int64_list=tf.train.Int64List(value=label))
  return tf.train.Example(features=tf.train.Features(feature=features))


def _clean_examples(count=20):
  rng = np.random.default_rng(1)
  return [_example(rng.integers(0, 256, 784).tolist(), [index % 10])
          for index in range(count)]


def _write_examples(root, splits):
  examples = standard_artifacts.Examples()
  examples.uri = str(root / 'examples')
  examples.split_names = artifact_utils.encode_split_names(list(splits))
  for split, records in splits.items():
    split_dir = os.path.join(examples.uri, f'Split-{split}')
    os.makedirs(split_dir)
    with tf.io.TFRecordWriter(os.path.join(split_dir, 'data.gz'),
                              options='GZIP') as writer:
      for record in records:
        writer.write(record.SerializeToString())
  return examples


def _validate(root, splits):
  """Runs StatisticsGen and ExampleValidator executors; returns anomalies."""
  examples = _write_examples(root, splits)
  statistics = standard_artifacts.ExampleStatistics()
  statistics.uri = str(root / 'statistics')
  statistics_executor.Executor().Do(
      {'examples': [examples]}, {'statistics': [statistics]},
      {'exclude_splits': '[]'})
  schema = standard_artifacts.Schema()
  schema.uri = str(root / 'schema')  # The executor reads the one file there.
  os.makedirs(schema.uri)
  shutil.copy(MNIST_SCHEMA, schema.uri)
  anomalies = standard_artifacts.ExampleAnomalies()
  anomalies.uri = str(root / 'anomalies')
  validator_executor.Executor().Do(
      {'statistics': [statistics], 'schema': [schema]},
      {'anomalies': [anomalies]}, {'exclude_splits': '[]'})
  return anomalies


def test_clean_data_passes_the_gate(tmp_path):
  anomalies = _validate(tmp_path, {split: _clean_examples() for split in SPLITS})
  assert data_gate.find_problems(anomalies, list(SPLITS)) == []
  data_gate.DataValidationGate.test_call(anomalies=anomalies)  # Does not raise.


def _inject(case):
  examples = _clean_examples()
  if case == 'pixel above 255':
    examples[3].features.feature['image'].int64_list.value[10] = 300
  elif case == 'negative pixel':
    examples[3].features.feature['image'].int64_list.value[10] = -1
  elif case == 'label 12':
    examples[5].features.feature['label'].int64_list.value[0] = 12
  elif case == 'short image':
    del examples[7].features.feature['image'].int64_list.value[-1]
  elif case == 'missing label':
    del examples[2].features.feature['label']
  else:
    raise AssertionError(case)
  return examples


@pytest.mark.parametrize('case, feature', [
    ('pixel above 255', 'image'),
    ('negative pixel', 'image'),
    ('label 12', 'label'),
    ('short image', 'image'),
    ('missing label', 'label'),
])
def test_each_injected_anomaly_stops_the_gate(tmp_path, case, feature):
  splits = {split: _clean_examples() for split in SPLITS}
  splits['eval'] = _inject(case)
  anomalies = _validate(tmp_path, splits)
  problems = data_gate.find_problems(anomalies, list(SPLITS))
  assert problems and all(f"split 'eval', feature {feature!r}" in problem
                          for problem in problems), problems
  with pytest.raises(data_gate.DataAnomaliesError, match="split 'eval'"):
    data_gate.DataValidationGate.test_call(anomalies=anomalies)


def test_a_missing_split_stops_the_gate(tmp_path):
  anomalies = _validate(tmp_path, {'train': _clean_examples(),
                                   'test': _clean_examples()})
  with pytest.raises(data_gate.DataAnomaliesError, match="split 'eval' is missing"):
    data_gate.DataValidationGate.test_call(anomalies=anomalies)


def test_schema_importer_writes_the_checked_schema(tmp_path):
  schema = standard_artifacts.Schema()
  schema.uri = str(tmp_path / 'schema')
  os.makedirs(schema.uri)
  text = schema_importer.read_schema_text(MNIST_SCHEMA)
  schema_importer.SchemaImporter.test_call(schema=schema, schema_text=text,
                                           schema_source='schemas/mnist.pbtxt')
  written = tfdv.load_schema_text(os.path.join(schema.uri, 'schema.pbtxt'))
  assert {feature.name for feature in written.feature} == {'image', 'label'}


def test_schema_importer_rejects_text_that_is_no_schema(tmp_path):
  bad = tmp_path / 'bad.pbtxt'
  bad.write_text('feature { name: "image" colour: BLUE }')
  with pytest.raises(schema_importer.SchemaTextError, match=str(bad)):
    schema_importer.read_schema_text(str(bad))


def test_gate_reads_anomalies_through_tfs_filesystems():
  # ram:// stands in for a bucket: only TF's filesystem layer reaches it.
  from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=g-import-not-at-top
  anomalies = standard_artifacts.ExampleAnomalies()
  anomalies.uri = 'ram://gate/anomalies'
  anomalies.split_names = artifact_utils.encode_split_names(['train'])
  proto = anomalies_pb2.Anomalies()
  proto.anomaly_info['image'].short_description = 'too many values'
  path = os.path.join(artifact_utils.get_split_uri([anomalies], 'train'),
                      data_gate.ANOMALIES_FILENAME)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, 'wb') as out:
    out.write(proto.SerializeToString())
  loaded = data_gate.load_split_anomalies(anomalies, 'train')
  assert loaded.anomaly_info['image'].short_description == 'too many values'


def test_noise_transform_and_all_after_it_wait_for_the_data_gate():
  """NoiseTransform reads ExampleGen's examples, not anything of the gate's
  (the gate has no output): only the pipeline's explicit dependency keeps it,
  and all that trains on its examples, from running on data the gate
  stopped. In the IR the local runner runs, and in a partial run up to it."""
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top
  gate = 'DataValidationGate'
  dag = pipeline_module.create_pipeline(pipeline_config.load_profile('smoke'))
  ir = local_runner.compile_for_local(dag, never_cached=())
  upstream = {node.pipeline_node.node_info.id: set(node.pipeline_node.upstream_nodes)
              for node in ir.nodes}
  assert gate in upstream['NoiseTransform'], upstream['NoiseTransform']

  def ancestors(node_id):
    found, pending = set(), [node_id]
    while pending:
      for parent in upstream[pending.pop()] - found:
        found.add(parent)
        pending.append(parent)
    return found

  past_the_noise = {node for node in upstream if 'NoiseTransform' in ancestors(node)}
  assert {'Trainer', 'Evaluator', 'Pusher'} <= past_the_noise
  assert all(gate in ancestors(node) for node in past_the_noise)
  partial = local_runner.compile_for_local(dag, never_cached=(),
                                           to_node='NoiseTransform')
  skipped = {node.pipeline_node.node_info.id for node in partial.nodes
             if node.pipeline_node.execution_options.HasField('skip')}
  assert gate not in skipped and 'Trainer' in skipped
