"""Runs the pipeline locally: LocalDagRunner, SQLite MLMD, caching on.

A run holds its pipeline root's lock from start to end (`run_lock`), closes
what a killed run left behind before it starts (`recovery`), and never serves
the nodes of `pipeline.never_cached_nodes` from cache. It looks at the
serving dir before it starts, so ServedModel (hence the Evaluator and the
report) come from cache while the same model is served.
"""

import contextlib
import dataclasses
import logging as python_logging
import os
import signal
import sys
import threading
import _thread
from typing import Iterator, List, Optional

from absl import logging

from components.common import names
from pipeline import run_lock
from pipeline import run_summary
import pipeline_config


class RunInterrupted(KeyboardInterrupt):
  """The run was stopped by a signal: Ctrl-C's SIGINT, or SIGTERM (a pod or
  a service manager stopping it). A KeyboardInterrupt, so that no library's
  `except Exception` swallows it on the way out.

  The code that catches it calls `acknowledge()`: until then it is raised
  again (see stopped_by_signals).
  """

  def __init__(self, signal_number: int, acknowledged: threading.Event):
    self.signal_number = signal_number
    self.signal_name = signal.Signals(signal_number).name
    self._acknowledged = acknowledged
    super().__init__(self.signal_name)

  def acknowledge(self) -> None:
    """Stops raising it again: the run's own code has it."""
    self._acknowledged.set()


# How often an interrupt not yet acknowledged is raised again.
_REINTERRUPT_S = 1.0


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
  """Turns SIGINT and SIGTERM into RunInterrupted for the `with` block.

  An exception raised while a finalizer runs (a `__del__`, as TensorFlow's
  resource deleters run all the time during training) is printed and
  ignored by Python, and the run would go on: so a thread raises it again
  in the main thread every `_REINTERRUPT_S` until the run's code catches it
  and calls `acknowledge()`.

  From the signal on, every log line and every ignored-exception report is
  dropped: what the libraries say while the exception unwinds them (Keras's
  and TFX's tracebacks of an interrupted step) tells the user nothing, and
  the caller prints the one line that does. Outside the main thread
  (signals cannot be handled there) the block runs unchanged.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  acknowledged = threading.Event()
  first_signal = []
  insisting = []
  own_interrupts = [0]  # Raised again by `insist`, not yet handled.

  def insist():
    while not acknowledged.wait(_REINTERRUPT_S):
      own_interrupts[0] += 1
      _thread.interrupt_main(signal.SIGINT)  # Runs `interrupt` in the main thread.

  def interrupt(signal_number, frame):
    del frame
    own = own_interrupts[0] > 0
    if own:
      own_interrupts[0] -= 1
    if acknowledged.is_set():
      if own:
        return
      # A second signal while the run closes down: stop at once (the lock
      # goes with the process; the next run closes what is left open).
      os._exit(128 + signal_number)  # pylint: disable=protected-access
    if not first_signal:
      first_signal.append(signal_number)
      python_logging.disable(python_logging.CRITICAL)
      sys.unraisablehook = lambda unraisable: None
      insisting.append(threading.Thread(target=insist, daemon=True))
      insisting[0].start()
    raise RunInterrupted(first_signal[0], acknowledged)

  previous = {number: signal.signal(number, interrupt)
              for number in (signal.SIGINT, signal.SIGTERM)}
  unraisable_hook = sys.unraisablehook
  try:
    yield
  finally:
    acknowledged.set()
    for thread in insisting:  # Its last interrupt must reach `interrupt`.
      thread.join()
    for number, handler in previous.items():
      signal.signal(number, handler)
    sys.unraisablehook = unraisable_hook
    python_logging.disable(python_logging.NOTSET)


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
      schemas_dir=absolute(config.schemas_dir),
      data=dataclasses.replace(
          config.data,
          source_dir=absolute(config.data.source_dir),
          tfds_data_dir=absolute(config.data.tfds_data_dir),
          image_dir=absolute(config.data.image_dir)))


def compile_for_local(dag, never_cached, to_node: Optional[str] = None):
  """The pipeline IR that LocalDagRunner runs, the nodes `never_cached`
  uncached. With `to_node`, only it and its ancestors run: the others are
  skipped, reusing nothing, as TFX's partial runs skip the nodes past their
  `to_nodes` (TFX's own partial run would also copy the outputs of every other
  node from the previous run into this one)."""
  from tfx.dsl.compiler import compiler  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable import partial_run_utils  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import node_proto_view  # pylint: disable=g-import-not-at-top
  from tfx.proto.orchestration import pipeline_pb2  # pylint: disable=g-import-not-at-top
  ir = compiler.Compiler().compile(dag)
  node_map = partial_run_utils.make_ordered_node_map(
      node_proto_view.get_view_for_all_in(ir))
  if to_node is not None and to_node not in node_map:
    raise ValueError(f'no node {to_node!r} in the pipeline: {list(node_map)}')
  to_run = (set(node_map) if to_node is None else
            partial_run_utils.compute_nodes_to_run(node_map, node_map.keys(),
                                                   [to_node], []))
  for node in ir.nodes:
    options = node.pipeline_node.execution_options
    if node.pipeline_node.node_info.id in never_cached:
      options.caching_options.enable_cache = False
    if node.pipeline_node.node_info.id not in to_run:
      options.skip.reuse_artifacts_mode = (
          pipeline_pb2.NodeExecutionOptions.Skip.NEVER)
  return ir


def run(config: pipeline_config.PipelineConfig,
        wait_s: Optional[float] = None,
        to_node: Optional[str] = None,
        infer_schema: bool = False) -> List[run_summary.ExecutionRecord]:
  """Checks the configuration's paths, then runs the whole DAG (or the part
  of it that `to_node` needs).

  Args:
    config: The configuration.
    wait_s: Seconds to wait while another run holds the pipeline root (None:
      fail at once; math.inf: as long as it takes).
    to_node: Run only this node and its ancestors (the same nodes as a
      whole run's, so they share its cache). None: all.
    infer_schema: Infer the schema even when a curated one exists (see
      pipeline.create_pipeline).

  Returns:
    The executions of this run, read back from MLMD.

  Raises:
    pipeline_config.ConfigError: a path is unusable, or the served model
      takes images of another shape than the data's (before anything runs).
    run_lock.PipelineRootBusy: another run holds the root (before anything).
    RuntimeError: a component failed; its error says which and why.
    RunInterrupted: SIGINT or SIGTERM arrived while a signal handler of
      `stopped_by_signals` was installed; the running execution is closed.
  """
  config = absolute_paths(config)
  pipeline_config.check_paths(config)
  os.makedirs(os.path.dirname(config.resolved_metadata_path), exist_ok=True)
  with run_lock.hold(config, wait_s):
    # Importing TFX takes seconds: only once a run is certain.
    from tfx.orchestration import metadata as tfx_metadata  # pylint: disable=g-import-not-at-top
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # pylint: disable=g-import-not-at-top
    from components.common import serving_dir  # pylint: disable=g-import-not-at-top
    from pipeline import recovery  # pylint: disable=g-import-not-at-top
    from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top
    for closed in recovery.close_interrupted(config.resolved_metadata_path,
                                             config.pipeline_name,
                                             config.pipeline_root):
      logging.warning('Execution %d of %s was interrupted by a killed run: '
                      'marked CANCELED, removed %s', closed.execution_id,
                      closed.node_id, closed.removed or 'no outputs')
    from pipeline import preflight  # pylint: disable=g-import-not-at-top
    serving_dir.remove_interrupted_pushes(config.serving_dir)
    if to_node is None:  # A part of the DAG pushes nothing.
      preflight.check(config)
    metadata = tfx_metadata.sqlite_metadata_connection_config(
        config.resolved_metadata_path)
    served = serving_dir.served_fingerprint(config.serving_dir)
    dag = pipeline_module.create_pipeline(config, metadata,
                                          served_fingerprint=served,
                                          infer_schema=infer_schema)
    try:
      LocalDagRunner().run_with_ir(compile_for_local(
          dag, pipeline_module.never_cached_nodes(served), to_node))
    except RunInterrupted as interrupted:
      interrupted.acknowledge()
      # Still under the lock: close what was running now rather than on the
      # next run, so MLMD shows at once that the run did not finish.
      recovery.close_interrupted(
          config.resolved_metadata_path, config.pipeline_name,
          config.pipeline_root,
          reason=f'the run was stopped by {interrupted.signal_name} before this '
          'execution finished')
      raise
    store = run_summary.open_store(config.resolved_metadata_path)
    return run_summary.run_executions(store, run_summary.run_ids(store)[-1])


def inferred_schema_text(config: pipeline_config.PipelineConfig,
                         wait_s: Optional[float] = None) -> str:
  """The schema TFX infers from the train split of the configured data, as
  text: ExampleGen -> StatisticsGen -> SchemaGen of the pipeline, run here
  (see `run`: its cache is that of whole runs in the same pipeline root).

  Raises:
    The errors of `run`.
  """
  from tfx.components.schema_gen import executor as schema_gen_executor  # pylint: disable=g-import-not-at-top
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  records = run(config, wait_s, to_node=names.SCHEMA_GEN_NODE,
                infer_schema=True)
  [uri] = [record.output_uris['schema'] for record in records
           if record.node_id == names.SCHEMA_GEN_NODE]
  # The artifact may be on a bucket, as the pipeline root.
  with fileio.open(os.path.join(uri, schema_gen_executor.DEFAULT_FILE_NAME),
                   'r') as schema_file:
    return schema_file.read()
