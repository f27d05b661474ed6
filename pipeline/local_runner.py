"""Runs the pipeline locally: LocalDagRunner, SQLite MLMD, caching on."""

import dataclasses
import os
from typing import List

from pipeline import run_summary
import pipeline_config


def absolute_paths(config: pipeline_config.PipelineConfig
                   ) -> pipeline_config.PipelineConfig:
  """Returns `config` with its local paths made absolute (cwd-independent)."""
  def absolute(path):
    return path if path is None or '://' in path else os.path.abspath(path)
  return dataclasses.replace(
      config,
      pipeline_root=absolute(config.pipeline_root),
      metadata_path=absolute(config.resolved_metadata_path),
      serving_dir=absolute(config.serving_dir),
      schema_path=absolute(config.schema_path),
      data=dataclasses.replace(
          config.data,
          source_dir=absolute(config.data.source_dir),
          tfds_data_dir=absolute(config.data.tfds_data_dir)))


def run(config: pipeline_config.PipelineConfig
        ) -> List[run_summary.ExecutionRecord]:
  """Checks the configuration's paths, then runs the whole DAG.

  Returns:
    The executions of this run, read back from MLMD.

  Raises:
    pipeline_config.ConfigError: a path is unusable (before anything runs).
    RuntimeError: a component failed; its error says which and why.
  """
  config = absolute_paths(config)
  pipeline_config.check_paths(config)
  os.makedirs(os.path.dirname(config.resolved_metadata_path), exist_ok=True)
  # Importing TFX takes 20-30 s: only once a run is certain.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      config.resolved_metadata_path)
  tfx.orchestration.LocalDagRunner().run(create_pipeline(config, metadata))
  store = run_summary.open_store(config.resolved_metadata_path)
  return run_summary.run_executions(store, run_summary.run_ids(store)[-1])
