"""Submits and schedules compiled pipelines on a Kubeflow Pipelines host.

Every call to the server runs under a deadline: the kfp 2.5 client has no
timeout, and a host that accepts a connection but never answers would hang it.
Calls that change something (create a run, an experiment, a recurring run;
upload; enable, disable, delete) run in the caller's thread with socket
timeouts set on the client's HTTP pool, so a call that timed out is over: it
cannot go on in a thread and create a run after the CLI reported failure.
Read-only calls (and the constructor, which calls the server) run under a
thread deadline. Errors come out as KfpError with one readable line.

Signing in (multi-user Kubeflow): `SignIn` gathers the namespace, a bearer
token (`--token-file`, else the projected ServiceAccount token that kfp reads
at `KF_PIPELINES_SA_TOKEN_PATH` in a pod), a session cookie (`--cookies-file`,
Dex/oauth2-proxy) and a CA certificate, and hands them to kfp.Client. Every
answer is checked before the generated client reads it: a 401/403, a redirect
(Dex/oauth2-proxy answer 302 to their login page) or an HTML page where JSON
was due ends the call with one line naming the credential that is missing or
refused (SignInRefused). A credential's value never enters a message: it is
scrubbed from the kfp/urllib3 error text before it becomes a KfpError.

`schedule` is idempotent per experiment and recurring-run name: it refuses
when that recurring run exists, or replaces it with `replace=True` (the old
one is disabled, the new one created, then the old one deleted; if creating
fails, the old one is enabled again).
"""

import dataclasses
import functools
import json
import os
import re
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
import urllib.parse

DEFAULT_TIMEOUT_S = 60.0

_CRON_FIELD = re.compile(r'^[0-9A-Za-z*?/,#LW-]+$')


class KfpError(RuntimeError):
  """A Kubeflow call failed; the message says which and why."""


class SignInRefused(KfpError):
  """The API refused the credentials given, or asked for a sign-in."""


HIDDEN = '<hidden>'


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


def with_deadline(call: Callable[[], Any], seconds: float, what: str,
                  secrets: Sequence[str] = ()) -> Any:
  """Runs `call` in a daemon thread; raises KfpError if it is not back in time.

  Args:
    call: What to run.
    seconds: The deadline.
    what: Names the call in the error.
    secrets: Credential values to keep out of the error's text.
  """
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
    raise_one_line(KfpError, what, outcome['error'], secrets)
  return outcome.get('value')


def one_line_error(error_class, what: str, error: BaseException,
                   secrets: Sequence[str] = ()):
  """`error_class('<what>: <Type>: <first line>')`, to raise from `error`,
  with each of `secrets` replaced by <hidden>."""
  return error_class(scrub(f'{what}: {type(error).__name__}: {first_line(error)}',
                           secrets))


def raise_one_line(error_class, what: str, error: BaseException,
                   secrets: Sequence[str] = ()):
  """Raises `error` as one line. A SignInRefused is already one line; an
  error whose text held a credential is not chained (its traceback would
  show the credential)."""
  if isinstance(error, SignInRefused):
    raise error
  converted = one_line_error(error_class, what, error, secrets)
  if scrub(str(error), secrets) != str(error):
    raise converted from None
  raise converted from error


def scrub(text: str, secrets: Sequence[str]) -> str:
  """`text` with every credential value in `secrets` replaced by <hidden>
  (longest first, so a cookie header goes before its values)."""
  for secret in sorted(filter(None, secrets), key=len, reverse=True):
    text = text.replace(secret, HIDDEN)
  return text


def first_line(error: BaseException) -> str:
  """The error's first line; for the generated client's ApiException (whose
  text starts with `(status)` alone), its status, reason and the server's
  message."""
  text = str(error).strip() or repr(error)
  if isinstance(getattr(error, 'status', None), int) and hasattr(error, 'body'):
    text = f'({error.status}) {getattr(error, "reason", "") or ""}'.strip()
    message = _server_message(getattr(error, 'body', None))
    if message:
      text += f': {message}'
  return text.splitlines()[0][:300]


def _server_message(body) -> Optional[str]:
  """The `error` (or `message`) of a KFP API error body (grpc-gateway's JSON)."""
  if isinstance(body, bytes):
    body = body.decode('utf-8', 'replace')
  try:
    decoded = json.loads(body or '')
  except ValueError:
    return (body or '').strip() or None
  if isinstance(decoded, dict):
    return str(decoded.get('error') or decoded.get('message') or '') or None
  return None


# kfp 2.5's names for the projected ServiceAccount token in a pod
# (kfp/client/__init__.py; read by set_volume_credentials).
SA_TOKEN_ENV = 'KF_PIPELINES_SA_TOKEN_PATH'
SA_TOKEN_DEFAULT_PATH = '/var/run/secrets/kubeflow/pipelines/token'

# The scheduledworkflow controller clamps max_concurrency to 1..10
# (scheduled_workflow.go, maxMaxConcurrency).
KFP_MAX_CONCURRENCY = 10


@dataclasses.dataclass(frozen=True)
class SchedulePolicy:
  """How a schedule's runs may overlap and catch up.

  Attributes:
    max_concurrency: Runs of the schedule active at once, at most; a time
      that comes while that many run is started later (KFP) or skipped
      (Vertex AI).
    catchup: Whether a schedule that fell behind (paused, or its runs
      outlasted their interval) starts one run per missed time (KFP's
      backfill) instead of one for the latest.
  """
  max_concurrency: int = 1
  catchup: bool = False

  def check(self, most: Optional[int], where: str) -> None:
    """Raises KfpError when `where` cannot run max_concurrency at once."""
    if self.max_concurrency < 1 or (most and self.max_concurrency > most):
      span = f'1 to {most}' if most else 'at least 1'
      raise KfpError(f'--max-concurrency {self.max_concurrency}: {where} takes '
                     f'{span}')


_NETSCAPE_MAGIC = ('# Netscape HTTP Cookie File', '# HTTP Cookie File')


def _read_credential_file(path: str, flag: str) -> str:
  """The stripped text of a credential file (never shown anywhere).

  Raises:
    KfpError: it cannot be read, or it is empty.
  """
  try:
    with open(path, encoding='utf-8') as credential_file:
      text = credential_file.read().strip()
  except OSError as error:
    raise KfpError(f'{flag} {path}: cannot read it ({error.strerror or error})') from None
  if not text:
    raise KfpError(f'{flag} {path}: the file is empty')
  return text


def cookie_header(text: str) -> str:
  """The Cookie header value of a --cookies-file: either that value itself
  (`authservice_session=...`, several joined by `; ` or one per line) or a
  Netscape cookies.txt as browser extensions export it (its name/value
  columns are taken, whatever the domain)."""
  lines = [line.strip() for line in text.splitlines()]
  if lines and lines[0].startswith(_NETSCAPE_MAGIC):
    pairs = []
    for line in lines:
      if line.startswith('#HttpOnly_'):  # cookies.txt marks HttpOnly this way.
        line = line[len('#HttpOnly_'):]
      fields = line.split('\t')
      if not line.startswith('#') and len(fields) == 7:
        pairs.append(f'{fields[5]}={fields[6]}')
    return '; '.join(pairs)
  return '; '.join(line.rstrip(';') for line in lines
                   if line and not line.startswith('#'))


@dataclasses.dataclass(frozen=True)
class SignIn:
  """How to sign in to a (multi-user) Kubeflow Pipelines API.

  Attributes:
    namespace: The Kubeflow profile namespace of the runs (None: kfp's
      choice, a single-user deployment's).
    token_file: File holding a bearer token (e.g. `kubectl create token`).
      None: the projected ServiceAccount token at KF_PIPELINES_SA_TOKEN_PATH
      when that variable is set or the default path exists (a pod with the
      PodDefault), as kfp's ServiceAccountTokenVolumeCredentials reads it.
    cookies_file: File holding the Dex/oauth2-proxy session cookie.
    ca_cert: PEM file of the CA that signed the host's TLS certificate.
  """
  namespace: Optional[str] = None
  token_file: Optional[str] = None
  cookies_file: Optional[str] = None
  ca_cert: Optional[str] = None

  def service_account_token_path(self) -> Optional[str]:
    """The pod's projected token kfp would read, when it applies."""
    if self.token_file:
      return None
    path = os.environ.get(SA_TOKEN_ENV)
    if path:
      return path
    return SA_TOKEN_DEFAULT_PATH if os.path.exists(SA_TOKEN_DEFAULT_PATH) else None

  def credentials(self) -> str:
    """What is presented, in words (no values), for the messages."""
    given = []
    if self.token_file:
      given.append('the bearer token from --token-file')
    elif self.service_account_token_path():
      given.append(f'the ServiceAccount token at {self.service_account_token_path()} '
                   f'({SA_TOKEN_ENV})')
    if self.cookies_file:
      given.append('the session cookie from --cookies-file')
    return ' and '.join(given)

  def client_arguments(self) -> Tuple[Dict[str, Any], List[str]]:
    """kfp.Client's keyword arguments, and the credential values to scrub.

    Raises:
      KfpError: a file named cannot be read or is empty.
    """
    arguments: Dict[str, Any] = {}
    secrets: List[str] = []
    if self.namespace:
      arguments['namespace'] = self.namespace
    if self.ca_cert:
      if not os.path.isfile(self.ca_cert):
        raise KfpError(f'--ca-cert {self.ca_cert}: no such file')
      arguments['ssl_ca_cert'] = self.ca_cert
    if self.token_file:
      arguments['existing_token'] = _read_credential_file(self.token_file, '--token-file')
      secrets.append(arguments['existing_token'])
    elif self.service_account_token_path():
      path = self.service_account_token_path()
      secrets.append(_read_credential_file(path, SA_TOKEN_ENV))
      from kfp.client import set_volume_credentials  # pylint: disable=g-import-not-at-top
      # kfp re-reads the file before each request: the kubelet rotates it.
      arguments['credentials'] = (
          set_volume_credentials.ServiceAccountTokenVolumeCredentials(path))
    if self.cookies_file:
      header = cookie_header(_read_credential_file(self.cookies_file, '--cookies-file'))
      if not header:
        raise KfpError(f'--cookies-file {self.cookies_file}: no cookie in it')
      arguments['cookies'] = header
      secrets.append(header)
      secrets.extend(pair.partition('=')[2] for pair in header.split('; '))
    return arguments, secrets


_REDIRECTS = (301, 302, 303, 307, 308)


def refusal(host: str, sign_in: SignIn, status: int,
            headers: Dict[str, str]) -> Optional[str]:
  """The one line for an answer that refuses the sign-in or asks for one
  (None: an ordinary answer, for the generated client to read).

  Dex and oauth2-proxy answer an unauthenticated request with 302 to their
  login page (/dex/auth, /oauth2/start); followed, it is an HTML page with
  status 200. The KFP API itself answers 401/403 (Istio/KFP authz).
  """
  credentials = sign_in.credentials()
  content_type = (headers.get('Content-Type') or '').lower()
  if status in (401, 403):
    if not credentials:
      return (f'the KFP API at {host} needs a signed-in identity ({status}): '
              'pass --token-file (a bearer token) or --cookies-file (your '
              'authservice_session cookie)')
    reason = ('' if status == 401 else
              f': the identity has no access to namespace {sign_in.namespace!r}'
              if sign_in.namespace else ': the identity has no access here')
    return f'the KFP API at {host} refused {credentials} ({status}{reason})'
  login = None
  if status in _REDIRECTS:
    location = urllib.parse.urlsplit(headers.get('Location') or '').path
    login = f'a redirect to {location or "a login page"}'
  elif status == 200 and content_type.startswith('text/html'):
    login = 'a login page'
  if login is None:
    return None
  if sign_in.cookies_file:
    return (f'{host} answered with {login}: it did not accept the session cookie '
            'from --cookies-file (expired, or for another host); copy a fresh '
            'one from the browser')
  return (f'{host} answered with {login}: pass --cookies-file with your '
          'authservice_session cookie or --token-file')


def guard_requests(client, host: str, sign_in: SignIn, seconds: float) -> None:
  """Checks every HTTP answer of a kfp 2.5 Client and bounds its requests.

  The generated kfp_server_api REST client passes `timeout=None` (blocking)
  unless a call sets `_request_timeout`, which kfp.Client never does
  (kfp_server_api/rest.py, RESTClientObject.request), so its pool manager's
  `request` is wrapped to supply connect and read timeouts. The wrapper also
  stops urllib3 from following redirects (a login redirect is to be named,
  not followed) and raises SignInRefused for an answer `refusal` names.
  Idempotent.
  """
  import urllib3  # pylint: disable=g-import-not-at-top
  rest = client._run_api.api_client.rest_client  # pylint: disable=protected-access
  if getattr(rest, 'guarded_by_dae_pipeline', False):
    return
  request = rest.pool_manager.request

  def checked_request(*args, timeout=None, **kwargs):
    kwargs.setdefault('redirect', False)
    response = request(*args, timeout=timeout or urllib3.Timeout(
        connect=seconds, read=seconds), **kwargs)
    line = refusal(host, sign_in, response.status, response.headers)
    if line:
      raise SignInRefused(line)
    return response

  rest.pool_manager.request = checked_request
  rest.guarded_by_dae_pipeline = True


@functools.lru_cache(maxsize=None)
def _guarded_client_class():
  """kfp.Client whose constructor's own health call is already guarded (the
  constructor calls the API when no namespace is set; unguarded, a 401 there
  is retried five times, 5 s apart, and ends as an unreadable TimeoutError)."""
  import kfp  # pylint: disable=g-import-not-at-top

  class GuardedClient(kfp.Client):
    """kfp.Client with its requests checked from the first one on.

    Args:
      guard: Installs the checks on a client (guard_requests, bound).
      **arguments: kfp.Client's.
    """

    def __init__(self, guard: Callable[[Any], None], **arguments):
      self.guard = guard
      super().__init__(**arguments)

    def get_kfp_healthz(self, sleep_duration: int = 5):
      self.guard(self)
      return super().get_kfp_healthz(sleep_duration)

  return GuardedClient


class KubeflowClient:
  """The few kfp.Client calls the CLI needs, each under a deadline.

  Args:
    host: KFP API endpoint, e.g. http://localhost:8080.
    timeout_s: Deadline of each call to the server.
    client_factory: Makes the kfp.Client from the host and kfp.Client's
      keyword arguments (tests pass a recording one).
    sign_in: Namespace and credentials (None: none).

  Raises:
    KfpError: a bad host or credential file, the server is not reachable,
      or (SignInRefused) it refuses the sign-in; a multi-user API without a
      namespace.
  """

  def __init__(self, host: str, timeout_s: float = DEFAULT_TIMEOUT_S,
               client_factory: Optional[Callable[..., Any]] = None,
               sign_in: Optional[SignIn] = None):
    if not host or '://' not in host:
      raise KfpError(f'bad host {host!r}: expected a URL such as http://localhost:8080')
    self._host = host.rstrip('/')
    self._timeout_s = timeout_s
    self._sign_in = sign_in or SignIn()
    arguments, self._secrets = self._sign_in.client_arguments()
    factory = client_factory or self._guarded_client
    # The kfp 2.5 constructor may already call the server (read-only).
    self._client = self._call(lambda: factory(self._host, **arguments), 'connect')
    if client_factory is None:
      self._guard(self._client)
      self._check_namespace()

  @property
  def host(self) -> str:
    return self._host

  @property
  def namespace(self) -> Optional[str]:
    return self._sign_in.namespace

  def _guard(self, client) -> None:
    guard_requests(client, self._host, self._sign_in, self._timeout_s)

  def _guarded_client(self, host: str, **arguments):
    return _guarded_client_class()(self._guard, host=host, **arguments)

  def _check_namespace(self) -> None:
    """Signs in before any work (the health call goes through the guard) and
    refuses a multi-user API without a namespace: its runs belong to one."""
    healthz = self._call(self._client.get_kfp_healthz, 'sign in')
    if (getattr(healthz, 'multi_user', False) and not self.namespace
        and not self._client.get_user_namespace()):
      raise KfpError(f'the KFP API at {self._host} is multi-user: pass '
                     '--namespace with your Kubeflow profile namespace')

  def _call(self, call, what):
    """A read-only call, under a thread deadline."""
    return with_deadline(call, self._timeout_s, f'{what} ({self._host})',
                         self._secrets)

  def _change(self, call, what):
    """A call that changes something, in this thread (socket timeouts)."""
    try:
      return call()
    except Exception as error:  # pylint: disable=broad-except
      raise_one_line(KfpError, f'{what} ({self._host})', error, self._secrets)

  def run_url(self, run_id: str) -> str:
    """The run's page in the KFP UI (served beside the API)."""
    return f'{self._host}/#/runs/details/{run_id}'

  def submit(self, package_path: str, experiment: str, run_name: str,
             arguments: Dict[str, Any]) -> str:
    """Starts one run of a compiled package; returns the run id."""
    result = self._change(lambda: self._client.create_run_from_pipeline_package(
        package_path, arguments=arguments, run_name=run_name,
        experiment_name=experiment, namespace=self.namespace), 'create run')
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
               arguments: Dict[str, Any], replace: bool = False,
               policy: Optional[SchedulePolicy] = None) -> str:
    """Creates the recurring run `job_name` of a new pipeline version in an
    experiment (replacing one of that name only with `replace`); returns its id.

    The recurring run starts at most `policy.max_concurrency` runs at once
    and, unless `policy.catchup`, does not backfill: KFP's scheduledworkflow
    controller (backend/src/crd/controller/scheduledworkflow/util/
    scheduled_workflow.go, GetNextScheduledEpoch) starts nothing while
    max_concurrency runs are active and keeps the missed time as the next
    one; with no_catchup, cron_schedule.go's getNextScheduledEpochImp skips
    to the latest missed time, so a run that outlasts its interval, or a
    schedule paused for days, is followed by one run, not one per interval.

    Raises:
      KfpError: a bad cron (before any call), a recurring run of that name
        exists and `replace` is false (nothing changed), or a call failed.
    """
    cron = kfp_cron(cron)  # Before any call: a bad cron changes nothing.
    policy = policy or SchedulePolicy()
    policy.check(KFP_MAX_CONCURRENCY, 'Kubeflow Pipelines')
    experiment_id = self._change(
        lambda: self._client.create_experiment(experiment, namespace=self.namespace),
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
          enabled=True, max_concurrency=policy.max_concurrency,
          no_catchup=not policy.catchup), 'create recurring run')
    except KfpError:
      for old in existing:
        self._change(lambda old=old: self._client.enable_recurring_run(
            old.recurring_run_id), 'enable the replaced recurring run again')
      raise
    for old in existing:
      self._change(lambda old=old: self._client.delete_recurring_run(
          old.recurring_run_id), 'delete the replaced recurring run')
    return recurring.recurring_run_id

  def run_view(self, run_id: str):
    """One look at a run (`get_run`, under the deadline) as a RunView: its
    state and each task's (V2beta1Run.run_details.task_details; a task's pod
    is its pod_name or, in older servers, its child tasks')."""
    from pipeline.kubeflow import follow  # pylint: disable=g-import-not-at-top
    run = self._call(lambda: self._client.get_run(run_id), 'get run')
    details = getattr(run.run_details, 'task_details', None) or []
    tasks = []
    for task in details:
      pod = task.pod_name or next((child.pod_name for child in task.child_tasks or []
                                   if child.pod_name), None)
      tasks.append(follow.TaskView(
          name=task.display_name or task.task_id or '?',
          state=follow.state_name(task.state),
          ran_in=f'pod {pod}' if pod else None,
          error=getattr(task.error, 'message', None) or None))
    return follow.RunView(
        run_id=run_id, state=follow.state_name(run.state), tasks=tuple(tasks),
        logs=self.run_url(run_id), error=getattr(run.error, 'message', None) or None)
