"""Submits and schedules compiled pipelines on a Kubeflow Pipelines host.

Every call to the server runs under a deadline: the kfp 2.5 client has no
timeout, and a host that accepts a connection but never answers would hang it.
Errors come out as KfpError with one readable line, not as tracebacks.
"""

import re
import threading
from typing import Any, Callable, Dict, Optional

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
    raise KfpError(f'{what}: {type(error).__name__}: {_first_line(error)}') from error
  return outcome.get('value')


def _first_line(error: BaseException) -> str:
  text = str(error).strip() or repr(error)
  return text.splitlines()[0][:300]


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
    # The kfp 2.5 constructor already calls the server.
    self._client = self._call(lambda: factory(host), 'connect')

  def _call(self, call, what):
    return with_deadline(call, self._timeout_s, f'{what} ({self._host})')

  def submit(self, package_path: str, experiment: str, run_name: str,
             arguments: Dict[str, Any]) -> str:
    """Starts one run of a compiled package; returns the run id."""
    result = self._call(lambda: self._client.create_run_from_pipeline_package(
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
      pipeline = self._call(lambda: self._client.upload_pipeline(
          package_path, pipeline_name=pipeline_name), 'upload pipeline')
      pipeline_id = pipeline.pipeline_id
    version = self._call(lambda: self._client.upload_pipeline_version(
        package_path, pipeline_version_name=version_name,
        pipeline_id=pipeline_id), 'upload pipeline version')
    return pipeline_id, version.pipeline_version_id

  def schedule(self, package_path: str, pipeline_name: str, version_name: str,
               experiment: str, job_name: str, cron: str,
               arguments: Dict[str, Any]) -> str:
    """Creates a recurring run of a new pipeline version; returns its id."""
    cron = kfp_cron(cron)  # Before any call: a bad cron changes nothing.
    pipeline_id, version_id = self.upload(package_path, pipeline_name, version_name)
    experiment_id = self._call(
        lambda: self._client.create_experiment(experiment),
        'create experiment').experiment_id
    recurring = self._call(lambda: self._client.create_recurring_run(
        experiment_id=experiment_id, job_name=job_name, cron_expression=cron,
        params=arguments, pipeline_id=pipeline_id, version_id=version_id,
        enabled=True), 'create recurring run')
    return recurring.recurring_run_id
