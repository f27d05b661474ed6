"""What a pipeline run did, read back from MLMD: executions and outputs."""

import dataclasses
import glob
import os
from typing import Any, Dict, List, Optional, Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

PIPELINE_CONTEXT = 'pipeline'
PIPELINE_RUN_CONTEXT = 'pipeline_run'
NODE_CONTEXT = 'node'


@dataclasses.dataclass(frozen=True)
class ExecutionRecord:
  """One node's execution in a pipeline run."""
  node_id: str
  state: str  # An MLMD Execution.State name: COMPLETE, CACHED, FAILED, ...
  output_uris: Dict[str, str]
  # Wall seconds from the execution's registration to its last update (for
  # a cached one: the cache lookup).
  seconds: float = 0.0
  # {output key: {custom property: value}} of the output artifacts.
  output_properties: Dict[str, Dict[str, Any]] = dataclasses.field(
      default_factory=dict)
  # {parameter: value} of the execution (TFX records a node's execution
  # properties, its parameters, on the execution).
  exec_properties: Dict[str, Any] = dataclasses.field(default_factory=dict)


def _property_value(value: metadata_store_pb2.Value) -> Any:
  """The Python value of an MLMD property (int, float or string)."""
  kind = value.WhichOneof('value')
  return getattr(value, kind) if kind in (
      'int_value', 'double_value', 'string_value') else None


def _exec_properties(execution: metadata_store_pb2.Execution) -> Dict[str, Any]:
  """{name: value} of an execution's parameters: TFX puts each in its
  properties or, when the execution type has no such property, its custom
  properties (tfx/orchestration/portable/mlmd/execution_lib.py,
  prepare_execution)."""
  return {name: _property_value(value) for properties in (
      execution.custom_properties, execution.properties)
          for name, value in properties.items()}


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
  """Opens an existing MLMD SQLite file (read-write, as MLMD requires)."""
  if not os.path.isfile(metadata_path):
    raise FileNotFoundError(f'no MLMD store at {metadata_path}')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE)
  return metadata_store.MetadataStore(config)


def run_ids(store: metadata_store.MetadataStore) -> List[str]:
  """The pipeline-run ids of the store, oldest first."""
  contexts = store.get_contexts_by_type(PIPELINE_RUN_CONTEXT)
  return [context.name for context in
          sorted(contexts, key=lambda context: context.id)]


def newest_run_start(metadata_path: str) -> Optional[int]:
  """When the newest pipeline run of a store began (ms since the epoch);
  None when there is no store or no run in it."""
  if not os.path.isfile(metadata_path):
    return None
  contexts = open_store(metadata_path).get_contexts_by_type(PIPELINE_RUN_CONTEXT)
  return max((context.create_time_since_epoch for context in contexts),
             default=None)


def run_pipeline_name(store: metadata_store.MetadataStore, run_id: str) -> str:
  """The name of the pipeline a run belongs to ('' when it recorded none)."""
  run_context = store.get_context_by_type_and_name(PIPELINE_RUN_CONTEXT, run_id)
  for execution in store.get_executions_by_context(run_context.id)[:1]:
    for context in store.get_contexts_by_execution(execution.id):
      if context.type == PIPELINE_CONTEXT:
        return context.name
  return ''


def execution_node_id(store: metadata_store.MetadataStore, execution) -> str:
  """The pipeline node an execution belongs to (its type when it has none)."""
  for context in store.get_contexts_by_execution(execution.id):
    if context.type == NODE_CONTEXT:
      return context.name.rsplit('.', 1)[-1]
  return execution.type


def run_executions(store: metadata_store.MetadataStore,
                   run_id: str) -> List[ExecutionRecord]:
  """The executions of one pipeline run, in the order they started."""
  run_context = store.get_context_by_type_and_name(PIPELINE_RUN_CONTEXT, run_id)
  executions = store.get_executions_by_context(run_context.id)
  records = []
  for execution in sorted(executions, key=lambda execution: execution.id):
    node_id = execution_node_id(store, execution)
    output_events = [
        event for event in store.get_events_by_execution_ids([execution.id])
        if event.type == metadata_store_pb2.Event.OUTPUT
    ]
    artifacts = {artifact.id: artifact for artifact in store.get_artifacts_by_id(
        [event.artifact_id for event in output_events])}
    keyed = {event.path.steps[0].key: artifacts[event.artifact_id]
             for event in output_events if event.path.steps}
    records.append(ExecutionRecord(
        node_id=node_id,
        state=metadata_store_pb2.Execution.State.Name(
            execution.last_known_state),
        output_uris={key: artifact.uri for key, artifact in keyed.items()},
        output_properties={
            key: {name: _property_value(value)
                  for name, value in artifact.custom_properties.items()}
            for key, artifact in keyed.items()},
        seconds=(execution.last_update_time_since_epoch -
                 execution.create_time_since_epoch) / 1000.0,
        exec_properties=_exec_properties(execution)))
  return records


def finished_record(records: List[ExecutionRecord], node_id: str,
                    key: str) -> Optional[ExecutionRecord]:
  """The execution of `node_id` among `records` that finished with output
  `key`; executions served from the cache count (their outputs are the
  reused ones)."""
  for record in records:
    if (record.node_id == node_id and record.state in ('COMPLETE', 'CACHED')
        and key in record.output_uris):
      return record
  return None


def latest_output(metadata_path: str, node_id: str, key: str) -> Tuple[str, str]:
  """(run id, uri) of output `key` of `node_id` in the newest run that has it.

  Raises:
    FileNotFoundError: no store, or no run recorded that output.
  """
  run_id, record = latest_output_record(metadata_path, node_id, key)
  return run_id, record.output_uris[key]


def latest_output_record(metadata_path: str, node_id: str,
                         key: str) -> Tuple[str, ExecutionRecord]:
  """(run id, execution) of `node_id` in the newest run that has output
  `key` (its URI and custom properties are the record's).

  Raises:
    FileNotFoundError: no store, or no run recorded that output.
  """
  store = open_store(metadata_path)
  for run_id in reversed(run_ids(store)):
    record = finished_record(run_executions(store, run_id), node_id, key)
    if record is not None:
      return run_id, record
  raise FileNotFoundError(f'no {node_id} output {key!r} recorded in '
                          f'{metadata_path}; run the pipeline first')


def count_records(examples_uri: str, split: str) -> int:
  """Number of records in one split of an Examples artifact (gzip TFRecords)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(os.path.join(examples_uri, f'Split-{split}', '*')))
  if not files:
    raise FileNotFoundError(f'no files for split {split!r} in {examples_uri}')
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP')
  return int(dataset.reduce(0, lambda count, _: count + 1))


def format_run(records: List[ExecutionRecord],
               wall_seconds: Optional[float] = None) -> str:
  """A short table of a run's executions (state, wall seconds), for the
  command line; `wall_seconds`, the whole run's, closes it when given."""
  width = max([len(record.node_id) for record in records] + [len('component')])
  lines = [f'{"component":<{width}}  {"state":<9}  {"seconds":>7}']
  lines += [f'{record.node_id:<{width}}  {record.state:<9}  {record.seconds:>7.1f}'
            for record in records]
  total = sum(record.seconds for record in records)
  lines.append(f'{"components":<{width}}  {"":<9}  {total:>7.1f}')
  if wall_seconds is not None:
    lines.append(f'{"whole run":<{width}}  {"":<9}  {wall_seconds:>7.1f}'
                 '  (with imports and orchestration)')
  return '\n'.join(lines)
