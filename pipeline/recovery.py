"""Clean-up after a run that was killed: run while holding the root's lock.

A run killed inside a component leaves that component's execution in MLMD as
NEW or RUNNING for ever, its partly written output folders under the
pipeline root (`<root>/<node>/<output key>/<execution id>/`, the layout of
`tfx/orchestration/portable/outputs_utils.py`, and its `.system/` working
folders), and, inside the Pusher, a
staging folder in the serving dir. TFX starts a new execution on the next run
(its launcher reuses an execution only within the same pipeline run) and
never looks back.

Since the caller holds the root's lock (`run_lock`), no live run owns such an
execution: each one is marked CANCELED, with the property `interrupted`
saying so (it never completed, and MLMD shows it), and its output folders are
deleted, so no half-written artifact is left to be mistaken for a result.
"""

import dataclasses
import os
from typing import List

from ml_metadata.proto import metadata_store_pb2

from pipeline import run_summary

PIPELINE_CONTEXT = run_summary.PIPELINE_CONTEXT
INTERRUPTED_PROPERTY = 'interrupted'
_UNFINISHED = (metadata_store_pb2.Execution.NEW,
               metadata_store_pb2.Execution.RUNNING)


@dataclasses.dataclass(frozen=True)
class Interrupted:
  """An execution of a killed run, found and closed."""
  execution_id: int
  node_id: str
  removed: List[str]


def _partial_outputs(pipeline_root: str, node_id: str, execution_id: int):
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  node_dir = os.path.join(pipeline_root, node_id)
  patterns = (os.path.join(node_dir, '*', str(execution_id)),
              os.path.join(node_dir, '.system', '*', str(execution_id)),
              # Named by a uuid, and removed by TFX when an execution ends:
              # under the lock, whatever is left belongs to a killed one.
              os.path.join(node_dir, '.system', 'stateful_working_dir', '*'))
  return sorted(path.rstrip('/') for pattern in patterns
                for path in fileio.glob(pattern))


KILLED_REASON = ('the run was killed before this execution finished; closed '
                 'by the next run on this root')


def close_interrupted(metadata_path: str, pipeline_name: str,
                      pipeline_root: str,
                      reason: str = KILLED_REASON) -> List[Interrupted]:
  """Marks the unfinished executions of `pipeline_name` CANCELED and deletes
  their output folders. Call only while holding the root's lock.

  Args:
    metadata_path: The MLMD SQLite file.
    pipeline_name: The pipeline whose executions are closed.
    pipeline_root: Where their output folders are.
    reason: What the `interrupted` property of each closed execution says.
  """
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(metadata_path):
    return []
  store = run_summary.open_store(metadata_path)
  context = store.get_context_by_type_and_name(PIPELINE_CONTEXT, pipeline_name)
  if context is None:
    return []
  closed = []
  for execution in store.get_executions_by_context(context.id):
    if execution.last_known_state not in _UNFINISHED:
      continue
    node_id = run_summary.execution_node_id(store, execution)
    removed = _partial_outputs(pipeline_root, node_id, execution.id)
    for path in removed:
      fileio.rmtree(path)
    execution.last_known_state = metadata_store_pb2.Execution.CANCELED
    execution.custom_properties[INTERRUPTED_PROPERTY].string_value = reason
    store.put_executions([execution])
    closed.append(Interrupted(execution.id, node_id, removed))
  return closed
