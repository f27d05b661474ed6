"""Submits and schedules compiled pipelines on a Kubeflow Pipelines host.

Every call to the server runs under a deadline: the kfp 2.5 client has no
timeout, and a host that accepts a connection but never answers would hang it.
Calls that change something (create a run, an experiment, a recurring run;
upload; enable, disable, delete) run in the caller's thread with socket
timeouts set on the client's HTTP pool, so a call that timed out is over: it
cannot go on in a thread and create a run after the CLI reported failure.
Read-only calls (and the constructor, which calls the server) run under a
thread deadline. Errors come out as KfpError with one readable line.

`schedule` is idempotent per experiment and recurring-run name: it refuses
when that recurring run exists, or replaces it with `replace=True` (the old
one is disabled, the new one created, then the old one deleted; if creating
fails, the old one is enabled again).
"""

import json
import re
import threading
from typing import Any, Callable, Dict, List, Optional

DEFAULT_TIMEOUT_S = 60.0

_CRON_FIELD = re.compile(r'^[0-9A-Za-z*?/,#LW-]+$')


class KfpError(RuntimeError):
  """A Kubeflow call failed; the message says which and why."""


def kfp_cron(expression: str) -> str:
  """A KFP (6-field, seconds first) cron expression from a 5- or 6-field one.

  Raises:
    KfpError: the expression has the wrong number of fields or bad characters.
  """
  fields = expression.split()
  if len(fields) == 5:
    fields = ['0'] + fields
  if len(fields) != 6 or not all(_CRON_FIELD.match(field) for field in fields):
    raise KfpError(
        f'bad cron expression {expression!r}: expected 5 fields (minute hour '
        'day-of-month month day-of-week, e.g. "0 3 * * *") or 6 with seconds first')
  return ' '.join(fields)


def with_deadline(call: Callable[[], Any], seconds: float, what: str) -> Any:
  """Runs `call` in a daemon thread; raises KfpError if it is not back in time."""
  outcome: Dict[str, Any] = {}

  def target():
    try:
      outcome['value'] = call()
    except BaseException as error:  # pylint: disable=broad-except
      outcome['error'] = error

  thread = threading.Thread(target=target, daemon=True, name=f'kfp: {what}')
  thread.start()
  thread.join(seconds)
  if thread.is_alive():
    raise KfpError(f'{what}: no answer within {seconds:g} s')
  if 'error' in outcome:
    error = outcome['error']
    raise one_line_error(KfpError, what, error) from error
  return outcome.get('value')


def one_line_error(error_class, what: str, error: BaseException):
  """`error_class('<what>: <Type>: <first line>')`, to raise from `error`."""
  return error_class(f'{what}: {type(error).__name__}: {first_line(error)}')


def first_line(error: BaseException) -> str:
  text = str(error).strip() or repr(error)
  return text.splitlines()[0][:300]


def bound_socket_timeouts(client, seconds: float) -> None:
  """Gives every HTTP request of a kfp 2.5 Client connect and read timeouts.

  The generated kfp_server_api REST client passes `timeout=None` (blocking)
  unless a call sets `_request_timeout`, which kfp.Client never does
  (kfp_server_api/rest.py, RESTClientObject.request), so its pool manager's
  `request` is wrapped to supply one.
  """
  import urllib3  # pylint: disable=g-import-not-at-top
  rest = client._run_api.api_client.rest_client  # pylint: disable=protected-access
  request = rest.pool_manager.request

  def request_with_timeout(*args, timeout=None, **kwargs):
    return request(*args, timeout=timeout or urllib3.Timeout(
        connect=seconds, read=seconds), **kwargs)

  rest.pool_manager.request = request_with_timeout


def _default_client_factory(host: str):
  import kfp  # pylint: disable=g-import-not-at-top
  return kfp.Client(host=host)


class KubeflowClient:
  """The few kfp.Client calls the CLI needs, each under a deadline.

  Args:
    host: KFP API endpoint, e.g. http://localhost:8080.
    timeout_s: Deadline of each call to the server.
    client_factory: Makes the kfp.Client (tests pass a recording one).
  """

  def __init__(self, host: str, timeout_s: float = DEFAULT_TIMEOUT_S,
               client_factory: Optional[Callable[[str], Any]] = None):
    if not host or '://' not in host:
      raise KfpError(f'bad host {host!r}: expected a URL such as http://localhost:8080')
    self._host = host
    self._timeout_s = timeout_s
    factory = client_factory or _default_client_factory
    # The kfp 2.5 constructor already calls the server (read-only).
    self._client = self._call(lambda: factory(host), 'connect')
    if client_factory is None:
      bound_socket_timeouts(self._client, timeout_s)

  def _call(self, call, what):
    """A read-only call, under a thread deadline."""
    return with_deadline(call, self._timeout_s, f'{what} ({self._host})')

  def _change(self, call, what):
    """A call that changes something, in this thread (socket timeouts)."""
    try:
      return call()
    except Exception as error:  # pylint: disable=broad-except
      raise one_line_error(KfpError, f'{what} ({self._host})', error) from error

  def submit(self, package_path: str, experiment: str, run_name: str,
             arguments: Dict[str, Any]) -> str:
    """Starts one run of a compiled package; returns the run id."""
    result = self._change(lambda: self._client.create_run_from_pipeline_package(
        package_path, arguments=arguments, run_name=run_name,
        experiment_name=experiment), 'create run')
    return result.run_id

  def upload(self, package_path: str, pipeline_name: str, version_name: str):
    """Uploads the package as a new pipeline, or a new version of it.

    Returns:
      (pipeline id, version id).
    """
    pipeline_id = self._call(lambda: self._client.get_pipeline_id(pipeline_name),
                             'find pipeline')
    if pipeline_id is None:
      pipeline = self._change(lambda: self._client.upload_pipeline(
          package_path, pipeline_name=pipeline_name), 'upload pipeline')
      pipeline_id = pipeline.pipeline_id
    version = self._change(lambda: self._client.upload_pipeline_version(
        package_path, pipeline_version_name=version_name,
        pipeline_id=pipeline_id), 'upload pipeline version')
    return pipeline_id, version.pipeline_version_id

  def recurring_runs_named(self, experiment_id: str, name: str) -> List[Any]:
    """The experiment's recurring runs with this display name."""
    name_filter = json.dumps({'predicates': [
        {'operation': 'EQUALS', 'key': 'display_name', 'stringValue': name}]})
    response = self._call(lambda: self._client.list_recurring_runs(
        experiment_id=experiment_id, filter=name_filter, page_size=100),
                          'list recurring runs')
    return [run for run in (response.recurring_runs or [])
            if run.display_name == name]

  def schedule(self, package_path: str, pipeline_name: str, version_name: str,
               experiment: str, job_name: str, cron: str,
               arguments: Dict[str, Any], replace: bool = False) -> str:
    """Creates the recurring run `job_name` of a new pipeline version in an
    experiment (replacing one of that name only with `replace`); returns its id.

    Raises:
      KfpError: a bad cron (before any call), a recurring run of that name
        exists and `replace` is false (nothing changed), or a call failed.
    """
    cron = kfp_cron(cron)  # Before any call: a bad cron changes nothing.
    experiment_id = self._change(
        lambda: self._client.create_experiment(experiment),
        'create experiment').experiment_id
    existing = self.recurring_runs_named(experiment_id, job_name)
    if existing and not replace:
      raise KfpError(
          f'recurring run {job_name!r} already exists in experiment '
          f'{experiment!r} ({", ".join(run.recurring_run_id for run in existing)}); '
          'pass --replace to replace it')
    pipeline_id, version_id = self.upload(package_path, pipeline_name, version_name)
    for old in existing:
      self._change(lambda old=old: self._client.disable_recurring_run(
          old.recurring_run_id), 'disable recurring run')
    try:
      recurring = self._change(lambda: self._client.create_recurring_run(
          experiment_id=experiment_id, job_name=job_name, cron_expression=cron,
          params=arguments, pipeline_id=pipeline_id, version_id=version_id,
          enabled=True), 'create recurring run')
    except KfpError:
      for old in existing:
        self._change(lambda old=old: self._client.enable_recurring_run(
            old.recurring_run_id), 'enable the replaced recurring run again')
      raise
    for old in existing:
      self._change(lambda old=old: self._client.delete_recurring_run(
          old.recurring_run_id), 'delete the replaced recurring run')
    return recurring.recurring_run_id
