"""A fault-injecting HTTP proxy for tests: sits between the storage clients
and the GCS emulator (tests/gcs_emulator.py, `running(..., front=...)`) on
127.0.0.1 and makes object storage misbehave the way GCS does now and then.

For a seeded random share of requests it:

* answers ``503 Service Unavailable`` or ``429 Too Many Requests`` (with
  ``Retry-After``) without forwarding the request: nothing happened upstream,
  as when GCS sheds load;
* resets the connection in the middle of an upload: reads part of the body,
  then closes the socket without answering (nothing is forwarded);
* delays the answer (bounded, ``delay_seconds``) after forwarding.

Requests whose path matches a `spared` pattern are forwarded untouched: they
are the calls a client does not retry (see tests/kfp/test_storage_faults.py).
Every fault is counted per kind (`counts`), so a test can show it was not
vacuous. `enabled` switches the faults off and on (e.g. for a re-run).
"""

import collections
import contextlib
import http.client
import http.server
import random
import re
import socket
import sys
import threading
import time
from typing import Dict, Iterable, Iterator, Mapping, Optional, Tuple

from tests import gcs_emulator

# Share of requests answered with each fault (uploads: of uploads only).
DEFAULT_RATES = {'503': 0.05, '429': 0.03, 'reset': 0.08, 'delay': 0.02}
DEFAULT_DELAY_SECONDS = (0.5, 2.0)
RETRY_AFTER_SECONDS = 1
ERROR_REASONS = {'503': (503, 'Service Unavailable', 'backendError'),
                 '429': (429, 'Too Many Requests', 'rateLimitExceeded')}
UPLOAD_METHODS = ('POST', 'PUT')
HOP_BY_HOP = frozenset({'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding',
                        'content-length', 'te', 'trailer', 'upgrade', 'expect'})


class FaultPolicy:
  """Which fault (or none) each request gets: seeded, bounded, counted.

  Args:
    seed: Seeds the draws (made in arrival order).
    rates: Fault kind -> share of requests (``reset``: of uploads with a body).
    spared: Regexes over ``METHOD path``; matching requests are never faulted.
    limit: At most this many faults of each kind (None: no bound).
  """

  def __init__(self, seed: int = 0, rates: Optional[Mapping[str, float]] = None,
               spared: Iterable[str] = (), limit: Optional[int] = None):
    self.rates = dict(DEFAULT_RATES if rates is None else rates)
    self.spared = [re.compile(pattern) for pattern in spared]
    self.limit = limit
    self.enabled = True
    self.counts = collections.Counter()
    self.requests = 0
    self._random = random.Random(seed)
    self._lock = threading.Lock()

  def draw(self, method: str, path: str, has_body: bool) -> Tuple[str, float]:
    """The fault for one request ('' for none) and a uniform draw for its size."""
    with self._lock:
      self.requests += 1
      roll, size = self._random.random(), self._random.random()
      if not self.enabled or any(pattern.search(f'{method} {path}')
                                 for pattern in self.spared):
        return '', size
      kinds = ['503', '429', 'delay']
      if method in UPLOAD_METHODS and has_body:
        kinds.insert(0, 'reset')
      for kind in kinds:
        rate = self.rates.get(kind, 0.0)
        if roll < rate:
          if self.limit is not None and self.counts[kind] >= self.limit:
            return '', size
          self.counts[kind] += 1
          return kind, size
        roll -= rate
      return '', size

  def summary(self) -> str:
    """One line: the faults by kind, out of how many requests."""
    kinds = ', '.join(f'{kind}: {self.counts[kind]}' for kind in sorted(self.rates))
    return f'{sum(self.counts.values())} faults in {self.requests} requests ({kinds})'


class _Handler(http.server.BaseHTTPRequestHandler):
  """Forwards one request at a time to the upstream, or faults it."""

  protocol_version = 'HTTP/1.1'  # Keep-alive, as the clients expect.

  def _any(self):
    policy: FaultPolicy = self.server.policy
    length = int(self.headers.get('Content-Length') or 0)
    chunked = 'chunked' in self.headers.get('Transfer-Encoding', '').lower()
    fault, size = policy.draw(self.command, self.path, length > 0 or chunked)
    if fault == 'reset':
      self._reset(length, size)
      return
    body = gcs_emulator._read_body(self.rfile, list(self.headers.items()))  # pylint: disable=protected-access
    if fault in ERROR_REASONS:
      self._refuse(*ERROR_REASONS[fault])
      return
    status, reason, headers, payload = self._forward(body)
    if fault == 'delay':
      low, high = self.server.delay_seconds
      time.sleep(low + (high - low) * size)
    self.send_response(status, reason)
    for name, value in headers:
      if name.lower() not in HOP_BY_HOP:
        self.send_header(name, value)
    self.send_header('Content-Length', str(len(payload)))
    self.end_headers()
    if self.command != 'HEAD':
      self.wfile.write(payload)

  do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _any  # pylint: disable=invalid-name

  def _reset(self, length: int, size: float) -> None:
    """Reads part of the upload's body, then drops the connection unanswered."""
    with contextlib.suppress(OSError):
      self.rfile.read(int(length * (0.2 + 0.6 * size)) if length else 1)
      # SO_LINGER 0: the close sends a TCP reset, as a dropped connection does.
      self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b'\x01\x00\x00\x00\x00\x00\x00\x00')
      self.connection.shutdown(socket.SHUT_RDWR)
    self.close_connection = True

  def _refuse(self, status: int, reason: str, error_reason: str) -> None:
    payload = (f'{{"error": {{"code": {status}, "message": "{reason} (injected)", '
               f'"errors": [{{"reason": "{error_reason}"}}]}}}}').encode()
    self.send_response(status, reason)
    self.send_header('Retry-After', str(RETRY_AFTER_SECONDS))
    self.send_header('Content-Type', 'application/json')
    self.send_header('Content-Length', str(len(payload)))
    self.end_headers()
    self.wfile.write(payload)

  def _forward(self, body: bytes):
    headers = {name: value for name, value in self.headers.items()
               if name.lower() not in HOP_BY_HOP}
    headers['Content-Length'] = str(len(body))
    upstream = http.client.HTTPConnection('127.0.0.1', self.server.upstream_port,
                                          timeout=120)
    try:
      # skip_host: the client's Host goes on, so the emulator's resumable
      # upload URLs point back at this proxy.
      upstream.putrequest(self.command, self.path, skip_host=True,
                          skip_accept_encoding=True)
      for name, value in headers.items():
        upstream.putheader(name, value)
      upstream.endheaders(body)
      response = upstream.getresponse()
      return response.status, response.reason, response.getheaders(), response.read()
    finally:
      upstream.close()

  def log_message(self, *args):
    pass


class _Server(http.server.ThreadingHTTPServer):
  daemon_threads = True

  def handle_error(self, request, client_address):
    # A client dropping its idle keep-alive connection is no error.
    if not isinstance(sys.exc_info()[1], ConnectionError):
      super().handle_error(request, client_address)


@contextlib.contextmanager
def running(policy: FaultPolicy,
            delay_seconds: Tuple[float, float] = DEFAULT_DELAY_SECONDS
            ) -> Iterator['FrontDoor']:
  """A proxy applying `policy`; yields a `front` for gcs_emulator.running."""
  server = _Server(('127.0.0.1', 0), _Handler)
  server.policy = policy
  server.delay_seconds = delay_seconds
  server.upstream_port = None
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield FrontDoor(server)
  finally:
    server.shutdown()
    server.server_close()


class FrontDoor:
  """Called with the emulator's port, it points the proxy at it and returns
  the proxy's port (the one the clients are given)."""

  def __init__(self, server):
    self._server = server

  def __call__(self, upstream_port: int) -> int:
    self._server.upstream_port = upstream_port
    return self._server.server_address[1]


def counts_of(policy: FaultPolicy) -> Dict[str, int]:
  """The faults injected so far, by kind (every kind, zeros too)."""
  return {kind: policy.counts[kind] for kind in sorted(policy.rates)}
