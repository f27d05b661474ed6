"""`dae-pipeline run-compiled FILE`: runs a compiled KFP v2 package here, the
way the open-source KFP v2 backend runs it, as a pre-flight check.

What it does as the OSS backend does (kubeflow/pipelines, backend 2.x):

* Refuses what the backend's workflow compiler refuses
  (`backend/src/v2/compiler/argocompiler/dag.go`): `resolver` executors
  ("resolver executors not implemented"), `customJob` executors ("Google
  Cloud only"), a `triggerPolicy.condition` on an importer task.
* Runs every task in its own process, in dependency order (independent
  tasks at once, up to `parallelism`), through the
  task's own container `command` and `args` (the project's entrypoint,
  `pipeline.kubeflow.entrypoint`), `{{$}}` replaced by the ExecutorInput JSON.
  The command's `python` is this interpreter (the image's is its own).
  The working directory is the project root, as /pipeline is the image's.
* Builds each ExecutorInput as the driver does (`backend/src/v2/driver`):
  output URIs `<root>/<pipeline>/<run>/<task>/<salt>/<output>`
  (`provisionOutputs`, `metadata.GenerateOutputURI`); input artifacts as
  `OutputArtifact.ToRuntimeArtifact` makes them from MLMD: a numeric name,
  the URI, properties and custom properties merged into `metadata`, and the
  type as the stored instance schema.
* Evaluates a task's `triggerPolicy.condition` as CEL over its ExecutorInput
  (`backend/src/v2/expression`, `Expr.Condition`: proto field names,
  non-bool results are errors); false skips the task, and a task whose
  upstream task was skipped is skipped too.
* Hands each task's outputs, with the metadata of its executor output file,
  to the tasks downstream.

What it does not do: KFP's cache (every task runs; this is a pre-flight), pods,
resource requests, retries, nested DAGs, parameter outputs. Images are not
pulled: the tasks run on this checkout's code and environment.

Where it pushes: the serving dir is baked into the package (ServedModel's
`serving_dir` and the Pusher's `push_destination` parameters), and a
pre-flight must not put a model in front of the model server. By default
both are rewritten to a scratch serving dir under the run's folder,
`<work dir>/<run>/serving`, seeded with a copy of the newest complete version
(and its push record) of the package's serving dir when that can be read
from here: the ServedModel then hands the Evaluator the model the cluster
would compare against, so the baseline gate and the Pusher's
compare-and-push run as they will there (an empty scratch dir would always
compare against nothing). When the package's serving dir cannot be read, it
starts empty and a line says so. A serving dir can be named instead, or the
package's own kept (`push_for_real`).
"""

from concurrent import futures
import dataclasses
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import pipeline_config

EXECUTOR_INPUT_PLACEHOLDER = '{{$}}'
OUTPUT_METADATA_FILENAME = 'output_metadata.json'
DEFAULT_PARALLELISM = 2
# How a condition names an input artifact of its task.
CONDITION_INPUT = re.compile(r"inputs\.artifacts\['([^']+)'\]")
# The task parameters that name the serving dir: ServedModel's
# (components/served_model) and the Pusher's (TFX's PushDestination as JSON).
SERVING_DIR_PARAMETER = 'serving_dir'
PUSH_DESTINATION_PARAMETER = 'push_destination'
# The scratch serving dir's folder in the run's folder.
SCRATCH_SERVING_DIRNAME = 'serving'
TF_LOG_LEVEL_VARIABLE = 'TF_CPP_MIN_LOG_LEVEL'
REFUSED_EXECUTORS = {
    'resolver': 'resolver executors not implemented',
    'customJob': 'customJob executors run on Google Cloud only',
}


class PackageRefused(ValueError):
  """The package holds something the OSS KFP v2 backend refuses or this runner
  cannot run; the message names each task."""


class TaskFailed(RuntimeError):
  """A task's process failed; the message names the task and its log."""


@dataclasses.dataclass
class TaskResult:
  """What became of one task.

  Attributes:
    name: The task's name in the DAG.
    state: COMPLETE, SKIPPED or FAILED.
    seconds: Wall seconds of its process (0 when skipped).
    outputs: Output key -> RuntimeArtifacts (JSON form) it produced.
    reason: Why it was skipped or failed ('' when complete).
    log: The file holding its process's output.
  """
  name: str
  state: str
  seconds: float = 0.0
  outputs: Dict[str, List[Dict[str, Any]]] = dataclasses.field(default_factory=dict)
  reason: str = ''
  log: str = ''


def load_package(path: str):
  """Reads a package: a PipelineJob (.json) or a bare PipelineSpec (.json/.yaml).

  Returns:
    (pipeline spec, runtime config), both dicts (the latter {} for a bare spec).
  """
  with open(path, encoding='utf-8') as package:
    if path.endswith(('.yaml', '.yml')):
      import yaml  # pylint: disable=g-import-not-at-top
      document = yaml.safe_load(package)
    else:
      document = json.load(package)
  if 'pipelineSpec' in document:
    return document['pipelineSpec'], document.get('runtimeConfig') or {}
  if 'deploymentSpec' in document and 'root' in document:
    return document, {}
  raise PackageRefused(f'{path}: neither a PipelineJob nor a PipelineSpec')


def _executor_of(spec: Mapping[str, Any], task: Mapping[str, Any]):
  component = spec['components'][task['componentRef']['name']]
  label = component.get('executorLabel')
  executor = spec['deploymentSpec']['executors'].get(label) if label else None
  return component, executor


def oss_refusals(spec: Mapping[str, Any]) -> List[str]:
  """What the OSS backend (or this runner) refuses in a spec, one line a task."""
  refusals = []
  for name, task in sorted(spec['root']['dag']['tasks'].items()):
    _, executor = _executor_of(spec, task)
    if executor is None:
      refusals.append(f'task {name!r}: component {task["componentRef"]["name"]!r} '
                      'has no executor (nested DAGs are not run here)')
      continue
    kind = next(iter(executor))
    container = executor.get('container', {})
    for part in list(container.get('command', [])) + list(container.get('args', [])):
      if '{{$' in part and part != EXECUTOR_INPUT_PLACEHOLDER:
        refusals.append(f'task {name!r}: placeholder {part!r} is not run here '
                        '(only {{$}}, the whole ExecutorInput)')
    if kind in REFUSED_EXECUTORS:
      refusals.append(f'task {name!r}: {REFUSED_EXECUTORS[kind]} on open-source '
                      'KFP v2 (backend/src/v2/compiler/argocompiler/dag.go)')
    elif kind == 'importer' and task.get('triggerPolicy', {}).get('condition'):
      refusals.append(f'task {name!r}: a condition on an importer task is '
                      'refused by open-source KFP v2')
    elif kind not in ('container', 'importer'):
      refusals.append(f'task {name!r}: unknown executor kind {kind!r}')
    condition = task.get('triggerPolicy', {}).get('condition', '')
    absent = sorted(set(CONDITION_INPUT.findall(condition))
                    - set(task.get('inputs', {}).get('artifacts', {})))
    if absent:
      refusals.append(f'task {name!r}: its condition reads the input artifact(s) '
                      f'{absent}, which the task does not have (the driver '
                      'would fail evaluating it)')
    for key, value in task.get('inputs', {}).get('parameters', {}).items():
      if not ({'runtimeValue', 'componentInputParameter'} & set(value)):
        refusals.append(f'task {name!r}: parameter {key!r} of a kind this '
                        f'runner does not resolve: {sorted(value)}')
  return refusals


def _producers(task: Mapping[str, Any]) -> List[str]:
  artifacts = task.get('inputs', {}).get('artifacts', {}).values()
  return sorted(set(task.get('dependentTasks', [])) | {
      value['taskOutputArtifact']['producerTask'] for value in artifacts
      if 'taskOutputArtifact' in value})


def dependency_order(tasks: Mapping[str, Mapping[str, Any]]) -> List[str]:
  """Task names, each after every task it depends on (ties by name)."""
  remaining = {name: set(_producers(task)) for name, task in tasks.items()}
  unknown = {dep for deps in remaining.values() for dep in deps} - set(tasks)
  if unknown:
    raise PackageRefused(f'tasks depend on tasks that are not there: {sorted(unknown)}')
  order = []
  while remaining:
    ready = sorted(name for name, deps in remaining.items() if not deps)
    if not ready:
      raise PackageRefused(f'the tasks {sorted(remaining)} depend on each other')
    for name in ready:
      order.append(name)
      del remaining[name]
    for deps in remaining.values():
      deps.difference_update(ready)
  return order


def root_parameters(spec: Mapping[str, Any], runtime_config: Mapping[str, Any],
                    overrides: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
  """The run's parameter values: defaults, the job's values, then overrides."""
  definitions = spec['root'].get('inputDefinitions', {}).get('parameters', {})
  values = {name: definition['defaultValue']
            for name, definition in definitions.items() if 'defaultValue' in definition}
  values.update(runtime_config.get('parameterValues') or {})
  unknown = set(overrides or {}) - set(definitions)
  if unknown:
    raise PackageRefused(f'no pipeline parameter {sorted(unknown)}; the package '
                         f'has {sorted(definitions)}')
  values.update(overrides or {})
  missing = set(definitions) - set(values)
  if missing:
    raise PackageRefused(f'no value for the pipeline parameter(s) {sorted(missing)}')
  return values


def _serving_dir_of(name: str, parameter: str, value: Mapping[str, Any]) -> str:
  """The serving dir a task parameter names (a constant, as compiled)."""
  constant = value.get('runtimeValue', {}).get('constant')
  if not isinstance(constant, str):
    raise PackageRefused(f'task {name!r}: parameter {parameter!r} is not a '
                         'constant string; cannot tell or change where it pushes')
  if parameter == SERVING_DIR_PARAMETER:
    return constant
  try:
    return json.loads(constant)['filesystem']['base_directory']
  except (ValueError, KeyError, TypeError):
    raise PackageRefused(f'task {name!r}: parameter {parameter!r} names no '
                         'filesystem base_directory') from None


def _serving_dir_parameters(spec: Mapping[str, Any]) -> List[Tuple[str, str]]:
  """(task, parameter) of each task parameter that names the serving dir."""
  return [(name, parameter)
          for name, task in sorted(spec['root']['dag']['tasks'].items())
          for parameter in task.get('inputs', {}).get('parameters', {})
          if parameter in (SERVING_DIR_PARAMETER, PUSH_DESTINATION_PARAMETER)]


def package_serving_dir(spec: Mapping[str, Any]) -> Optional[str]:
  """The serving dir baked into a spec (None: no task names one).

  Raises:
    PackageRefused: its tasks name different serving dirs, or one that is
      not a constant.
  """
  tasks = spec['root']['dag']['tasks']
  found = {f'{name}.{parameter}': _serving_dir_of(
      name, parameter, tasks[name]['inputs']['parameters'][parameter])
           for name, parameter in _serving_dir_parameters(spec)}
  if len(set(found.values())) > 1:
    raise PackageRefused(f'the tasks name different serving dirs: {found}')
  return next(iter(found.values()), None)


def with_serving_dir(spec: Mapping[str, Any], serving_dir: str) -> Dict[str, Any]:
  """A copy of a spec whose ServedModel and Pusher use `serving_dir`."""
  spec = json.loads(json.dumps(spec))
  tasks = spec['root']['dag']['tasks']
  for name, parameter in _serving_dir_parameters(spec):
    value = tasks[name]['inputs']['parameters'][parameter]['runtimeValue']
    if parameter == SERVING_DIR_PARAMETER:
      value['constant'] = serving_dir
    else:
      destination = json.loads(value['constant'])
      destination['filesystem']['base_directory'] = serving_dir
      value['constant'] = json.dumps(destination, indent=2)
  return spec


def _import_tensorflow_quietly() -> None:
  """Imports TensorFlow (the serving dir's file I/O, buckets too) without its
  import-time lines on the terminal, as the local run's console does.

  Its C++ log level is read once, at import: it is set for the import only,
  so the tasks' processes, which inherit this environment, log as on a
  cluster.
  """
  from pipeline import console  # pylint: disable=g-import-not-at-top
  saved = os.environ.get(TF_LOG_LEVEL_VARIABLE)
  os.environ.setdefault(TF_LOG_LEVEL_VARIABLE, '2')  # Errors and up.
  try:
    console.import_tensorflow()
  finally:
    if saved is None:
      os.environ.pop(TF_LOG_LEVEL_VARIABLE, None)
    else:
      os.environ[TF_LOG_LEVEL_VARIABLE] = saved


def seed_scratch_serving_dir(source: str, scratch: str) -> Optional[str]:
  """Copies the newest complete version of `source` (and its push record)
  into `scratch`; returns that version, None when nothing is served."""
  _import_tensorflow_quietly()
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  from components.common import push_records  # pylint: disable=g-import-not-at-top
  from components.common import serving_dir as serving_dir_lib  # pylint: disable=g-import-not-at-top
  fileio.makedirs(scratch)
  version = serving_dir_lib.newest_complete_version(source)
  if version is None:
    return None
  # saved_model.pb last, as a push does: the copy is complete once it is there.
  serving_dir_lib.copy_tree(serving_dir_lib.version_path(source, version),
                            serving_dir_lib.version_path(scratch, version),
                            last=serving_dir_lib.SAVED_MODEL_FILENAME)
  record = push_records.record_path(source, version)
  if fileio.exists(record):
    fileio.makedirs(push_records.records_directory(scratch))
    fileio.copy(record, push_records.record_path(scratch, version), overwrite=True)
  return version


def _scratch_serving_dir(package_dir: str, scratch: str) -> str:
  """Seeds the scratch serving dir; the start line saying where it pushes."""
  try:
    version = seed_scratch_serving_dir(package_dir, scratch)
  except Exception as error:  # pylint: disable=broad-except
    # Any read failure (no credentials for the bucket, ...) only costs the
    # baseline: the line says so and the pre-flight goes on.
    reason = ' '.join(f'{type(error).__name__}: {error}'.split())
    return (f'run-compiled: pushes to the scratch serving dir {scratch}, empty: '
            f'could not read the package\'s {package_dir} ({reason})')
  seeded = (f'seeded with version {version} of the package\'s {package_dir}'
            if version else f'empty, as the package\'s {package_dir} serves nothing')
  return (f'run-compiled: pushes to the scratch serving dir {scratch} ({seeded}; '
          '--push-for-real pushes to the package\'s)')


def _where_it_pushes(spec: Mapping[str, Any], run_dir: str,
                     serving_dir: Optional[str], push_for_real: bool):
  """The spec pointed at the serving dir the run pushes to, and the line
  saying which; seeds a scratch one (see the module doc)."""
  package_dir = package_serving_dir(spec)
  if package_dir is None:
    if serving_dir:
      raise PackageRefused('a serving dir was given, but no task of the '
                           f'package has a {SERVING_DIR_PARAMETER!r} or '
                           f'{PUSH_DESTINATION_PARAMETER!r} parameter')
    return spec, 'run-compiled: pushes nowhere (no task names a serving dir)'
  if push_for_real:
    return spec, (f'run-compiled: pushes to the package\'s serving dir '
                  f'{package_dir} (--push-for-real)')
  if serving_dir:
    if '://' not in serving_dir:  # Relative to where run-compiled is run.
      serving_dir = os.path.abspath(serving_dir)
    return with_serving_dir(spec, serving_dir), (
        f'run-compiled: pushes to {serving_dir} (--serving-dir; the '
        f'package\'s is {package_dir})')
  scratch = os.path.join(run_dir, SCRATCH_SERVING_DIRNAME)
  return with_serving_dir(spec, scratch), _scratch_serving_dir(package_dir, scratch)


def new_run_id() -> str:
  """A fresh run name: its time and a few random characters."""
  return f'run-{time.strftime("%Y%m%d-%H%M%S")}-{secrets.token_hex(3)}'


def condition_holds(condition: str, executor_input: Mapping[str, Any]) -> bool:
  """Evaluates a triggerPolicy condition (CEL) over an ExecutorInput (JSON form)."""
  import celpy  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  message = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
  fields = json_format.MessageToDict(message, preserving_proto_field_name=True)
  environment = celpy.Environment()
  program = environment.program(environment.compile(condition), functions={
      'parseJson': lambda text: celpy.json_to_cel(json.loads(text))})
  result = program.evaluate({name: celpy.json_to_cel(value)
                             for name, value in fields.items()})
  if not isinstance(result, celpy.celtypes.BoolType):
    raise PackageRefused(f'condition {condition!r} gave {result!r}, not a bool')
  return bool(result)


class _Run:
  """One run of a package; see run_package."""

  def __init__(self, spec, pipeline_root: str, parameters: Mapping[str, Any],
               run_id: str, work_dir: str, log: Callable[[str], None]):
    self.spec = spec
    self.run_root = f'{pipeline_root.rstrip("/")}/{spec["pipelineInfo"]["name"]}/{run_id}'
    self.parameters = parameters
    self.work_dir = run_folder(work_dir, run_id)
    self.log = log
    self.results: Dict[str, TaskResult] = {}
    self._ids = itertools.count(1)

  def _input_artifact(self, producer: str, key: str) -> Dict[str, Any]:
    """An upstream output as the OSS driver hands it on (from MLMD)."""
    produced = self.results[producer].outputs[key][0]
    producer_component, _ = _executor_of(self.spec, self.spec['root']['dag']['tasks'][producer])
    declared = producer_component.get('outputDefinitions', {}).get(
        'artifacts', {}).get(key, {}).get('artifactType', {})
    return {'name': str(next(self._ids)), 'uri': produced['uri'],
            'metadata': dict(produced.get('metadata') or {}),
            'type': {'instanceSchema': declared.get('instanceSchema', '')}}

  def executor_input(self, name: str, task, component) -> Dict[str, Any]:
    """The ExecutorInput (JSON form) of a task."""
    inputs = task.get('inputs', {})
    parameter_values = {}
    for key, value in inputs.get('parameters', {}).items():
      if 'runtimeValue' in value:
        parameter_values[key] = value['runtimeValue']['constant']
      else:
        parameter_values[key] = self.parameters[value['componentInputParameter']]
    artifacts = {}
    for key, value in inputs.get('artifacts', {}).items():
      source = value['taskOutputArtifact']
      artifacts[key] = {'artifacts': [self._input_artifact(
          source['producerTask'], source['outputArtifactKey'])]}
    task_root = f'{self.run_root}/{name}/{secrets.token_hex(4)}'
    outputs = {
        key: {'artifacts': [{'name': key, 'uri': f'{task_root}/{key}',
                             'type': definition['artifactType'],
                             'metadata': {}}]}
        for key, definition in component.get('outputDefinitions', {}).get(
            'artifacts', {}).items()}
    output_file = os.path.join(self.work_dir, name, OUTPUT_METADATA_FILENAME)
    return {'inputs': {'parameterValues': parameter_values, 'artifacts': artifacts},
            'outputs': {'artifacts': outputs, 'outputFile': output_file}}

  def run_task(self, name: str, task, component, executor) -> TaskResult:
    executor_input = self.executor_input(name, task, component)
    condition = task.get('triggerPolicy', {}).get('condition')
    if condition and not condition_holds(condition, executor_input):
      return TaskResult(name, 'SKIPPED', reason=f'condition false: {condition}')
    if 'importer' in executor:
      importer = executor['importer']
      uri = importer['artifactUri'].get('constant') or self.parameters[
          importer['artifactUri']['runtimeParameter']]
      return TaskResult(name, 'COMPLETE', outputs={'artifact': [
          {'uri': uri, 'metadata': importer.get('metadata', {})}]})
    container = executor['container']
    payload = json.dumps(executor_input)
    command = [payload if part == EXECUTOR_INPUT_PLACEHOLDER else part
               for part in list(container.get('command', [])) + list(container.get('args', []))]
    if command and command[0] in ('python', 'python3'):
      command[0] = sys.executable
    task_dir = os.path.join(self.work_dir, name)
    os.makedirs(task_dir, exist_ok=True)
    output_file = executor_input['outputs']['outputFile']
    if os.path.exists(output_file):  # TFX would read it as a driver's output.
      os.remove(output_file)
    log_path = os.path.join(task_dir, 'log.txt')
    started = time.monotonic()
    with open(log_path, 'wb') as log_file:
      process = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT,
                               cwd=_project_root(), check=False)
    seconds = time.monotonic() - started
    if process.returncode != 0:
      return TaskResult(name, 'FAILED', seconds,
                        reason=f'exit status {process.returncode}', log=log_path)
    return TaskResult(name, 'COMPLETE', seconds, log=log_path,
                      outputs=self._outputs(executor_input))

  @staticmethod
  def _outputs(executor_input) -> Dict[str, List[Dict[str, Any]]]:
    """The provisioned outputs, updated from the executor output file, as
    the launcher records them."""
    outputs = {key: [dict(artifact) for artifact in value['artifacts']]
               for key, value in executor_input['outputs']['artifacts'].items()}
    output_file = executor_input['outputs']['outputFile']
    if os.path.exists(output_file):
      with open(output_file, encoding='utf-8') as metadata_file:
        written = json.load(metadata_file).get('artifacts', {})
      for key, value in written.items():
        if key in outputs and value.get('artifacts'):
          outputs[key][0]['metadata'] = value['artifacts'][0].get('metadata', {})
          outputs[key][0]['uri'] = value['artifacts'][0].get('uri') or outputs[key][0]['uri']
    return outputs


def run_folder(work_dir: str, run_id: str) -> str:
  """The folder of a run's task logs and scratch serving dir."""
  # Absolute: the tasks run in the project root, the caller maybe elsewhere.
  return os.path.join(os.path.abspath(work_dir), run_id)


def _project_root() -> str:
  return pipeline_config.repository_root()


def run_package(path: str, pipeline_root: Optional[str] = None,
                parameters: Optional[Mapping[str, Any]] = None,
                run_id: Optional[str] = None, work_dir: str = 'build/run-compiled',
                parallelism: int = DEFAULT_PARALLELISM,
                log: Callable[[str], None] = print,
                serving_dir: Optional[str] = None,
                push_for_real: bool = False) -> Dict[str, TaskResult]:
  """Runs a compiled package task by task; see the module doc.

  Args:
    path: The package (.json PipelineJob or .json/.yaml PipelineSpec).
    pipeline_root: Root of the run's artifacts; default the job's
      `runtimeConfig.gcsOutputDirectory`.
    parameters: Pipeline parameter values replacing the defaults.
    run_id: The run's name in the artifact paths; default a fresh one.
    work_dir: Local directory of each task's log and executor output file.
    parallelism: Tasks run at once at most (KFP runs every ready task at
      once; each task here is a process importing TensorFlow).
    log: Where progress lines go; the first says where the run pushes.
    serving_dir: Where the ServedModel and Pusher read and push instead of
      the package's serving dir; default a scratch one under the run's
      folder (see the module doc).
    push_for_real: Keep the package's own serving dir (a real push).

  Returns:
    Each task's result, in the order they finished.

  Raises:
    PackageRefused: before anything runs, naming every refused task (or
      the serving dir parameters it cannot read or rewrite).
    TaskFailed: a task failed (the results so far are on the exception).
  """
  spec, runtime_config = load_package(path)
  refusals = oss_refusals(spec)
  if refusals:
    raise PackageRefused('the open-source KFP v2 backend would not run this '
                         'package:\n  ' + '\n  '.join(refusals))
  pipeline_root = pipeline_root or runtime_config.get('gcsOutputDirectory')
  if not pipeline_root:
    raise PackageRefused('no pipeline root: the package sets none; pass one')
  if '://' not in pipeline_root:  # Relative to where run-compiled is run.
    pipeline_root = os.path.abspath(pipeline_root)
  values = root_parameters(spec, runtime_config, parameters)
  if serving_dir and push_for_real:
    raise ValueError('serving_dir and push_for_real exclude each other')
  run_id = run_id or new_run_id()
  spec, pushes_to = _where_it_pushes(spec, run_folder(work_dir, run_id),
                                     serving_dir, push_for_real)
  log(pushes_to)
  run = _Run(spec, pipeline_root, values, run_id, work_dir, log)
  tasks = spec['root']['dag']['tasks']
  pending = dependency_order(tasks)
  running = {}
  failed = None
  with futures.ThreadPoolExecutor(max_workers=parallelism) as pool:
    while pending or running:
      for name in list(pending):
        producers = _producers(tasks[name])
        if failed or len(running) >= parallelism or any(
            upstream not in run.results for upstream in producers):
          continue
        pending.remove(name)
        skipped = [upstream for upstream in producers
                   if run.results[upstream].state != 'COMPLETE']
        if skipped:
          run.results[name] = TaskResult(name, 'SKIPPED',
                                         reason=f'upstream skipped: {skipped}')
          log(f'run-compiled: {name} SKIPPED (upstream skipped: {skipped})')
          continue
        component, executor = _executor_of(spec, tasks[name])
        log(f'run-compiled: {name} started')
        running[name] = pool.submit(run.run_task, name, tasks[name], component, executor)
      if failed and not running:
        break
      if not running:
        continue  # Skips above may have made more tasks ready.
      done, _ = futures.wait(running.values(), return_when=futures.FIRST_COMPLETED)
      for name in [name for name, future in running.items() if future in done]:
        result = running.pop(name).result()
        run.results[name] = result
        log(f'run-compiled: {name} {result.state} {result.seconds:.1f} s'
            + (f' ({result.reason})' if result.reason else ''))
        if result.state == 'FAILED' and not failed:
          failed = result
  if failed:
    error = TaskFailed(f'task {failed.name!r} failed ({failed.reason}); its output '
                       f'is in {failed.log}')
    error.results = run.results
    raise error
  return run.results


def format_results(results: Mapping[str, TaskResult]) -> str:
  """A table of each task's state and seconds."""
  width = max([len(name) for name in results] + [4])
  lines = [f'{"task":<{width}}  {"state":<8}  seconds']
  for result in results.values():
    lines.append(f'{result.name:<{width}}  {result.state:<8}  {result.seconds:7.1f}'
                 + (f'  {result.reason}' if result.state == 'SKIPPED' else ''))
  return '\n'.join(lines)


def execution_records(results: Mapping[str, TaskResult]):
  """The results as run_summary.ExecutionRecords (what run_outcome reads):
  each task's first artifact per output key, its URI and its metadata, which
  holds the artifact's custom properties as the launcher records them."""
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  return [run_summary.ExecutionRecord(
      node_id=result.name, state=result.state, seconds=result.seconds,
      output_uris={key: artifacts[0]['uri']
                   for key, artifacts in result.outputs.items() if artifacts},
      output_properties={key: dict(artifacts[0].get('metadata') or {})
                         for key, artifacts in result.outputs.items() if artifacts})
          for result in results.values()]
