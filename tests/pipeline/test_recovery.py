"""close_interrupted on a hand-made MLMD store: which executions it closes,
what it deletes, and what it leaves alone."""

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import recovery
from pipeline import run_summary

PIPELINE = 'mnist-dae-smoke'
State = metadata_store_pb2.Execution


def _store(path):
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(path)
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  return metadata_store.MetadataStore(config)


def _execution(store, pipeline_id, node_type_id, execution_type_id, node_id,
               state):
  """An execution of `node_id` in `state`, attributed to the pipeline and
  to its node's context (as TFX records them)."""
  [node] = store.put_contexts([metadata_store_pb2.Context(
      type_id=node_type_id, name=f'{PIPELINE}.{node_id}')])
  [execution_id] = store.put_executions([metadata_store_pb2.Execution(
      type_id=execution_type_id, last_known_state=state)])
  store.put_attributions_and_associations(
      [], [metadata_store_pb2.Association(context_id=context, execution_id=execution_id)
           for context in (pipeline_id, node)])
  return execution_id


def test_unfinished_executions_are_canceled_and_their_outputs_removed(tmp_path):
  metadata_path = tmp_path / 'metadata.sqlite'
  root = tmp_path / 'root'
  store = _store(metadata_path)
  pipeline_type = store.put_context_type(metadata_store_pb2.ContextType(
      name=recovery.PIPELINE_CONTEXT))
  node_type = store.put_context_type(metadata_store_pb2.ContextType(
      name=run_summary.NODE_CONTEXT))
  execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(
      name='Component'))
  [pipeline_id] = store.put_contexts([metadata_store_pb2.Context(
      type_id=pipeline_type, name=PIPELINE)])
  ids = {node_id: _execution(store, pipeline_id, node_type, execution_type,
                             node_id, state)
         for node_id, state in (('Trainer', State.RUNNING),
                                ('Evaluator', State.NEW),
                                ('NoiseTransform', State.COMPLETE))}
  outputs = {node_id: root / node_id / 'model' / str(execution_id)
             for node_id, execution_id in ids.items()}
  for directory in outputs.values():
    directory.mkdir(parents=True)
    (directory / 'partial').write_text('x')
  # An output that is the file at its URI (the VisualReport's HTML page).
  page = root / 'Trainer' / 'html_report' / str(ids['Trainer'])
  page.parent.mkdir(parents=True)
  page.write_text('<html></html>')

  closed = recovery.close_interrupted(str(metadata_path), PIPELINE, str(root),
                                      reason='stopped by SIGTERM')

  assert sorted(item.node_id for item in closed) == ['Evaluator', 'Trainer']
  by_id = {execution.id: execution for execution in _store(metadata_path).get_executions()}
  for node_id in ('Trainer', 'Evaluator'):
    execution = by_id[ids[node_id]]
    assert execution.last_known_state == State.CANCELED
    assert execution.custom_properties[
        recovery.INTERRUPTED_PROPERTY].string_value == 'stopped by SIGTERM'
    assert not outputs[node_id].exists()
  assert not page.exists()
  # A finished execution and its outputs are left alone.
  assert by_id[ids['NoiseTransform']].last_known_state == State.COMPLETE
  assert (outputs['NoiseTransform'] / 'partial').exists()
  # Closing again finds nothing; another pipeline's name finds nothing.
  assert recovery.close_interrupted(str(metadata_path), PIPELINE, str(root)) == []
  assert recovery.close_interrupted(str(metadata_path), 'other', str(root)) == []
