"""A loopback Kubeflow Pipelines API server for tests (no KFP server runs here).

It answers the v2beta1 REST API that kfp 2.5's generated client
(kfp_server_api) calls, in that client's own schema: every answer is a
kfp_server_api model serialized with `ApiClient.sanitize_for_serialization`,
which writes the JSON field names the generated client reads back
(attribute_map: e.g. `recurringRuns` in a recurring-run list). It records each
request (method, path, query, headers, body) and can stand in front of itself
the way a multi-user Kubeflow does:

- `token`: only `Authorization: Bearer <token>` is let through, else 401
  (KFP's API server behind Istio's authorization);
- `cookie`: only a Cookie header holding `name=value` is let through, else
  a 302 to /dex/auth, whose page is an HTML login form (Dex/oauth2-proxy);
- `tls_dir`: HTTPS with a certificate for localhost from a throw-away CA
  (tests.gcs_emulator's), whose PEM is `ca_cert`.

A run's states are scripted: each GET of a run moves it one step on.
"""

import dataclasses
import http.server
import itertools
import json
import os
import ssl
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple
import urllib.parse

import kfp_server_api

from tests import gcs_emulator

API = '/apis/v2beta1'
LOGIN_PATH = '/dex/auth'
LOGIN_PAGE = (b'<!DOCTYPE html><html><head><title>Log in to Your Account</title>'
              b'</head><body><form method="post" action="/dex/auth/local">'
              b'<input name="login"><input name="password" type="password">'
              b'</form></body></html>')

# One step of a run: its state and its tasks' (name, state, pod, error).
Task = Tuple[str, str, Optional[str], Optional[str]]
Step = Tuple[str, Sequence[Task]]


@dataclasses.dataclass
class Recorded:
  """One request as the server received it."""
  method: str
  path: str
  query: Dict[str, List[str]]
  headers: Dict[str, str]  # Names in lower case.
  body: bytes

  def json(self) -> Any:
    return json.loads(self.body or b'{}')


def _serialized(model) -> Any:
  return kfp_server_api.ApiClient().sanitize_for_serialization(model)


def run_model(run_id: str, experiment_id: str, step: Step) -> kfp_server_api.V2beta1Run:
  """A V2beta1Run at one step of its script."""
  state, tasks = step
  details = [kfp_server_api.V2beta1PipelineTaskDetail(
      run_id=run_id, task_id=f'{run_id}-{index}', display_name=name, state=task_state,
      child_tasks=[kfp_server_api.PipelineTaskDetailChildTask(pod_name=pod)] if pod else None,
      error=kfp_server_api.GoogleRpcStatus(code=2, message=error) if error else None)
             for index, (name, task_state, pod, error) in enumerate(tasks)]
  return kfp_server_api.V2beta1Run(
      run_id=run_id, experiment_id=experiment_id, display_name=run_id, state=state,
      run_details=kfp_server_api.V2beta1RunDetails(task_details=details))


class KfpApiServer:
  """The server; use as a context manager.

  Args:
    token: The only bearer token let through (None: no token needed).
    cookie: (name, value) of the only session cookie let through.
    multi_user: What healthz says.
    tls_dir: Serve HTTPS with a throw-away CA written there.
    login_redirect: Without the cookie: a 302 to the login page (Dex,
      oauth2-proxy's default), else the login page itself with 200.
  """

  def __init__(self, token: Optional[str] = None,
               cookie: Optional[Tuple[str, str]] = None, multi_user: bool = True,
               tls_dir: Optional[str] = None, login_redirect: bool = True):
    self.token, self.cookie, self.multi_user = token, cookie, multi_user
    self.login_redirect = login_redirect
    self.requests: List[Recorded] = []
    self.experiments: List[kfp_server_api.V2beta1Experiment] = []
    self.pipelines: List[kfp_server_api.V2beta1Pipeline] = []
    self.recurring_runs: List[kfp_server_api.V2beta1RecurringRun] = []
    self.run_script: List[Step] = [('SUCCEEDED', [])]
    self.runs: Dict[str, Dict[str, Any]] = {}
    # Paths answered 500 with the request's headers in the body (a server
    # that echoes them: the client must keep them out of its error text).
    self.echo_failures: Tuple[str, ...] = ()
    self.on_get_run = None  # Called with the number of GETs of a run so far.
    self._ids = itertools.count(1)
    self._lock = threading.Lock()
    self.ca_cert = None
    self._http = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
    self._http.daemon_threads = True
    scheme, host = 'http', '127.0.0.1'
    if tls_dir:
      paths = gcs_emulator._write_certificates(tls_dir, hosts=('localhost',))  # pylint: disable=protected-access
      context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
      context.load_cert_chain(paths['cert.pem'], paths['key.pem'])
      self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
      self.ca_cert = paths['ca.pem']
      scheme, host = 'https', 'localhost'
    self.url = f'{scheme}://{host}:{self._http.server_address[1]}'
    self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

  def __enter__(self) -> 'KfpApiServer':
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._http.shutdown()
    self._http.server_close()

  def calls(self, method: str, path_prefix: str) -> List[Recorded]:
    """The recorded requests of a method whose path starts with the prefix."""
    return [request for request in self.requests
            if request.method == method and request.path.startswith(path_prefix)]

  def _new_id(self, kind: str) -> str:
    return f'{kind}-{next(self._ids)}'

  def _signed_in(self, headers) -> bool:
    if self.token and headers.get('authorization') == f'Bearer {self.token}':
      return True
    if self.cookie:
      name, value = self.cookie
      pairs = [pair.strip() for pair in (headers.get('cookie') or '').split(';')]
      if f'{name}={value}' in pairs:
        return True
    return not self.token and not self.cookie

  def answer(self, request: Recorded) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body) of one request."""
    if request.path.startswith(LOGIN_PATH):
      return 200, {'Content-Type': 'text/html; charset=utf-8'}, LOGIN_PAGE
    if not self._signed_in(request.headers):
      if self.cookie and not self.login_redirect:
        return 200, {'Content-Type': 'text/html; charset=utf-8'}, LOGIN_PAGE
      if self.cookie:  # Dex/oauth2-proxy in front: off to the login page.
        return 302, {'Location': f'{LOGIN_PATH}?client_id=kubeflow-oidc-authservice'
                     '&redirect_uri=%2Foidc'}, b''
      return 401, {'Content-Type': 'application/json'}, json.dumps(
          {'error': 'Unauthenticated', 'code': 16,
           'message': 'Request header error: there is no user identity header.'}).encode()
    if request.path in self.echo_failures:
      echoed = {name: request.headers.get(name) for name in ('authorization', 'cookie')}
      return 500, {'Content-Type': 'application/json'}, json.dumps(
          {'error': f'internal error, request headers were {echoed}', 'code': 13}).encode()
    with self._lock:
      model = self._route(request)
    if model is None:
      return 404, {'Content-Type': 'application/json'}, b'{"error": "not found", "code": 5}'
    return 200, {'Content-Type': 'application/json'}, json.dumps(_serialized(model)).encode()

  def _route(self, request: Recorded):
    """The model that answers a signed-in request (None: not found)."""
    method, path = request.method, request.path
    query = {name: values[0] for name, values in request.query.items()}
    if (method, path) == ('GET', f'{API}/healthz'):
      return kfp_server_api.V2beta1GetHealthzResponse(multi_user=self.multi_user)
    if path == f'{API}/experiments':
      if method == 'POST':
        body = request.json()
        experiment = kfp_server_api.V2beta1Experiment(
            experiment_id=self._new_id('experiment'), display_name=body['display_name'],
            namespace=body.get('namespace'))
        self.experiments.append(experiment)
        return experiment
      named = _named(self.experiments, query)
      return kfp_server_api.V2beta1ListExperimentsResponse(
          experiments=[experiment for experiment in named
                       if experiment.namespace == query.get('namespace', experiment.namespace)]
          or None)
    if (method, path) == ('GET', f'{API}/pipelines'):
      return kfp_server_api.V2beta1ListPipelinesResponse(
          pipelines=_named(self.pipelines, query) or None)
    if (method, path) == ('POST', f'{API}/pipelines/upload'):
      pipeline = kfp_server_api.V2beta1Pipeline(
          pipeline_id=self._new_id('pipeline'), display_name=query.get('name'))
      self.pipelines.append(pipeline)
      return pipeline
    if (method, path) == ('POST', f'{API}/pipelines/upload_version'):
      return kfp_server_api.V2beta1PipelineVersion(
          pipeline_id=query.get('pipelineid'), display_name=query.get('name'),
          pipeline_version_id=self._new_id('version'))
    if path == f'{API}/recurringruns':
      if method == 'POST':
        recurring = kfp_server_api.ApiClient().deserialize(
            _Body(request.body), 'V2beta1RecurringRun')
        recurring.recurring_run_id = self._new_id('recurring')
        self.recurring_runs.append(recurring)
        return recurring
      return kfp_server_api.V2beta1ListRecurringRunsResponse(
          recurring_runs=_named(self.recurring_runs, query) or None)
    if (method, path) == ('POST', f'{API}/runs'):
      run_id = self._new_id('run')
      self.runs[run_id] = {'experiment_id': request.json().get('experiment_id'),
                           'script': list(self.run_script), 'gets': 0}
      return run_model(run_id, self.runs[run_id]['experiment_id'], self.run_script[0])
    if method == 'GET' and path.startswith(f'{API}/runs/'):
      return self._run_step(path[len(f'{API}/runs/'):])
    return None

  def _run_step(self, run_id: str):
    run = self.runs.get(run_id)
    if run is None:
      return None
    run['gets'] += 1
    step = run['script'][min(run['gets'] - 1, len(run['script']) - 1)]
    if self.on_get_run:
      self.on_get_run(run['gets'])
    return run_model(run_id, run['experiment_id'], step)

  def _handler(self):
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      """Records the request, sends the server's answer."""

      def _serve(self):
        split = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get('Content-Length') or 0)
        request = Recorded(self.command, split.path, urllib.parse.parse_qs(split.query),
                           {name.lower(): value for name, value in self.headers.items()}, self.rfile.read(length))
        server.requests.append(request)
        status, headers, body = server.answer(request)
        self.send_response(status)
        for name, value in headers.items():
          self.send_header(name, value)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

      do_GET = do_POST = do_DELETE = _serve  # pylint: disable=invalid-name

      def log_message(self, *args):
        pass

    return Handler


class _Body:
  """What ApiClient.deserialize reads: a response with `.data`."""

  def __init__(self, data: bytes):
    self.data = data


def _named(models, query: Dict[str, str]):
  """The models whose display_name the request's filter names (all without)."""
  if 'filter' not in query:
    return list(models)
  wanted = json.loads(query['filter'])['predicates'][0]['stringValue']
  return [model for model in models if model.display_name == wanted]


def write_file(directory: str, name: str, text: str) -> str:
  """A file of `text` in `directory`; its path."""
  path = os.path.join(directory, name)
  with open(path, 'w', encoding='utf-8') as out:
    out.write(text)
  return path
