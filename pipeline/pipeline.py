"""The pipeline's DAG, built by one pure function from the configuration."""

from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.data_gate.component import DataValidationGate
from components.schema_importer.component import SchemaImporter
from components.tfds_example_gen.component import TfdsExampleGen
import pipeline_config

def create_pipeline(config: pipeline_config.PipelineConfig,
                    metadata_connection_config: Optional[
                        metadata_store_pb2.ConnectionConfig] = None
                    ) -> tfx.dsl.Pipeline:
  """Returns the TFX pipeline for a configuration; runs nothing.

  Args:
    config: The whole configuration (see pipeline_config).
    metadata_connection_config: MLMD connection for local runs; None for
      orchestrators that bring their own (Kubeflow).
  """
  data = config.data

  # Ingest MNIST through TFDS into train / eval / test tf.Examples.
  example_gen = TfdsExampleGen(
      source=data.source,
      source_dir=data.source_dir if data.source == pipeline_config.SOURCE_VENDORED else None,
      tfds_data_dir=data.tfds_data_dir,
      train_examples=data.train_examples,
      eval_examples=data.eval_examples,
      test_examples=data.test_examples)

  # Compute TFDV statistics of every split.
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'])

  # Import the curated schema (schemas/schema.pbtxt by default).
  schema_importer = SchemaImporter(
      schema_file=config.schema_path).with_id('ImportSchemaGen')

  # Compare every split's statistics with the schema.
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_importer.outputs['schema'])

  # Stop here, saying why, when the data has anomalies or lacks a split.
  data_gate = DataValidationGate(
      anomalies=example_validator.outputs['anomalies'],
      required_splits='train,eval,test')

  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=[
          example_gen, statistics_gen, schema_importer, example_validator,
          data_gate
      ],
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(config.beam_pipeline_args))
