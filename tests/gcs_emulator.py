"""gs:// for tests: gcp-storage-emulator on 127.0.0.1, reachable by every client.

* google-cloud-storage (the KFP entrypoint's marker clean-up) and Beam's gcsio
  honour STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT.
* TensorFlow's built-in GCS filesystem (tf.io.gfile, TFX's fileio, tf.data,
  SavedModel) has its endpoints hard-coded (https://storage.googleapis.com,
  https://www.googleapis.com), but honours `https_proxy` and `CURL_CA_BUNDLE`.
  So a small local HTTPS proxy answers CONNECT, terminates TLS with a
  certificate from a throw-away CA, and forwards each request to the emulator
  over plain HTTP: it answers `Expect: 100-continue`, de-chunks bodies (TF
  sends chunked bodies with a Content-Length), and rewrites the emulator's
  `http://127.0.0.1:PORT` Location headers (resumable uploads) to the host
  TF asked for. `GCS_STAT_CACHE_MAX_AGE=0` keeps TF from caching stats.
* Credentials: TF and google-auth (Beam's gcsio, which otherwise retries for
  ~25 s per process when it finds none) look for a GCE metadata server at
  GCE_METADATA_HOST; a fake one here hands out a dummy token, which the
  emulator ignores. An empty CLOUDSDK_CONFIG hides any gcloud login.
* The emulator is patched at start-up: it fails an upload with an empty body
  (`len(None)`), which TF's CreateDir sends; and it ignores the JSON API's
  generation preconditions (`ifGenerationMatch`, `ifGenerationNotMatch`;
  https://cloud.google.com/storage/docs/request-preconditions), which the
  push lease relies on (components/common/serving_lock.py): uploads and deletes
  here check them, atomically with the write, and answer 412 Precondition
  Failed on a mismatch, as Cloud Storage does. And it tells a resumable
  upload that has received nothing that it has one byte (see
  `_patch_emulator_for_resumed_uploads`).

Everything starts on 127.0.0.1 and stops with the context manager; nothing
leaves the machine. `environment()` gives the variables for subprocesses.
"""

import contextlib
import datetime
import http
import http.client
import http.server
import json
import os
import socket
import socketserver
import ssl
import tempfile
import threading
from typing import Callable, Dict, Iterator, Optional

GCS_HOSTS = ('storage.googleapis.com', 'www.googleapis.com', 'oauth2.googleapis.com')


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def _patch_emulator_for_empty_uploads() -> None:
  from gcp_storage_emulator import server  # pylint: disable=g-import-not-at-top
  if getattr(server, '_empty_body_patched', False):
    return
  read = server._read_data  # pylint: disable=protected-access

  def read_empty_uploads_as_bytes(request_handler, query):
    data = read(request_handler, query)
    return b'' if data is None and 'uploadType' in query else data

  server._read_data = read_empty_uploads_as_bytes  # pylint: disable=protected-access
  server._empty_body_patched = True  # pylint: disable=protected-access


def _precondition_holds(query, generation) -> bool:
  """Whether `ifGenerationMatch` / `ifGenerationNotMatch` of a request's
  query hold for an object of `generation` (None: no live object); 0 stands
  for "no live object", as in Cloud Storage."""
  match = query.get('ifGenerationMatch')
  if match and int(match[0]) != int(generation or 0):
    return False
  not_match = query.get('ifGenerationNotMatch')
  return not (not_match and int(not_match[0]) == int(generation or 0))


def _patch_emulator_for_preconditions() -> None:
  from gcp_storage_emulator import server  # pylint: disable=g-import-not-at-top
  from gcp_storage_emulator.exceptions import NotFound  # pylint: disable=g-import-not-at-top
  from gcp_storage_emulator.handlers import objects  # pylint: disable=g-import-not-at-top
  if getattr(server, '_preconditions_patched', False):
    return
  # One write at a time, so that a check and its write are one step (the
  # emulator serves each request on a thread of its own).
  write_lock = threading.Lock()

  def guarded(handler, object_name):
    def handle(request, response, storage, *args, **kwargs):
      with write_lock:
        try:
          generation = storage.get_file_obj(
              request.params['bucket_name'], object_name(request))['generation']
        except NotFound:
          generation = None
        if not _precondition_holds(request.query, generation):
          response.status = http.HTTPStatus.PRECONDITION_FAILED
          response.json({'error': {
              'code': 412, 'message': 'conditionNotMet',
              'errors': [{'reason': 'conditionNotMet',
                          'message': 'Precondition Failed'}]}})
          return None
        return handler(request, response, storage, *args, **kwargs)
    return handle

  def upload_name(request):
    if 'name' in request.query:
      return request.query['name'][0]
    data = request.data
    if isinstance(data, dict):
      return (data.get('meta') or data).get('name')
    return None

  replaced = {objects.insert: guarded(objects.insert, upload_name),
              objects.delete: guarded(objects.delete,
                                      lambda request: request.params['object_id'])}
  for _, handlers in server.HANDLERS:
    for method, handler in list(handlers.items()):
      if handler in replaced:
        handlers[method] = replaced[handler]
  # The router's fallback for uploads posted without the /upload prefix.
  objects.insert = replaced[objects.insert]
  server._preconditions_patched = True  # pylint: disable=protected-access


def _patch_emulator_for_resumed_uploads() -> None:
  """A resumable upload's status, when no byte has arrived, has no Range
  header (GCS docs, "Perform resumable uploads", checking the status); the
  emulator answers `bytes=0-0` (one byte), so a client resuming after a
  dropped connection (TF's `RequestUploadSessionStatus`) skips a byte."""
  from gcp_storage_emulator.handlers import objects  # pylint: disable=g-import-not-at-top
  if getattr(objects, '_resume_patched', False):
    return
  incomplete = objects._resumable_incomplete  # pylint: disable=protected-access

  def incomplete_without_range_when_empty(response, storage, upload_id, fallback_end=0):
    incomplete(response, storage, upload_id, fallback_end)
    if not storage.get_resumable_byte_count(upload_id):
      response._headers.pop('Range', None)  # pylint: disable=protected-access

  objects._resumable_incomplete = incomplete_without_range_when_empty  # pylint: disable=protected-access
  objects._resume_patched = True  # pylint: disable=protected-access


def _write_certificates(directory: str, hosts=GCS_HOSTS):
  """A throw-away CA and a certificate for `hosts` (default: the GCS hosts);
  returns their paths."""
  from cryptography import x509  # pylint: disable=g-import-not-at-top
  from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=g-import-not-at-top
  from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=g-import-not-at-top
  from cryptography.x509.oid import NameOID  # pylint: disable=g-import-not-at-top
  now = datetime.datetime.now(datetime.timezone.utc)
  valid = dict(not_valid_before=now - datetime.timedelta(days=1),
               not_valid_after=now + datetime.timedelta(days=2))
  ca_key = ec.generate_private_key(ec.SECP256R1())
  ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'test GCS proxy CA')])
  ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid['not_valid_before']).not_valid_after(valid['not_valid_after'])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256()))
  key = ec.generate_private_key(ec.SECP256R1())
  leaf = (x509.CertificateBuilder()
          .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
          .issuer_name(ca_name).public_key(key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(valid['not_valid_before']).not_valid_after(valid['not_valid_after'])
          .add_extension(x509.SubjectAlternativeName([x509.DNSName(host) for host in hosts]),
                         critical=False)
          # Python >= 3.13 verifies strictly (ssl.VERIFY_X509_STRICT): a leaf
          # must name its issuer's key, as every real CA's leaves do.
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
  paths = {name: os.path.join(directory, name) for name in ('ca.pem', 'cert.pem', 'key.pem')}
  with open(paths['ca.pem'], 'wb') as out:
    out.write(ca.public_bytes(serialization.Encoding.PEM))
  with open(paths['cert.pem'], 'wb') as out:
    out.write(leaf.public_bytes(serialization.Encoding.PEM))
  with open(paths['key.pem'], 'wb') as out:
    out.write(key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
  return paths


def _read_headers(stream):
  headers = []
  while True:
    line = stream.readline(65537)
    if line in (b'\r\n', b'\n', b''):
      return headers
    name, _, value = line.decode('latin-1').partition(':')
    headers.append((name.strip(), value.strip()))


def _read_body(stream, headers) -> bytes:
  lookup = {name.lower(): value for name, value in headers}
  if lookup.get('transfer-encoding', '').lower() == 'chunked':
    body = b''
    while True:
      size = int(stream.readline().split(b';')[0].strip() or b'0', 16)
      if size == 0:
        _read_headers(stream)  # Trailers, up to the blank line.
        return body
      body += stream.read(size)
      stream.readline()
  return stream.read(int(lookup.get('content-length', '0') or 0))


class _ProxyHandler(socketserver.StreamRequestHandler):
  """CONNECT, TLS as the GCS host, then plain HTTP requests to the emulator."""

  def handle(self):
    request_line = self.rfile.readline(65537).decode('latin-1').split()
    _read_headers(self.rfile)
    if len(request_line) < 2 or request_line[0] != 'CONNECT':
      self.wfile.write(b'HTTP/1.1 405 Only CONNECT\r\nContent-Length: 0\r\n\r\n')
      return
    host = request_line[1].split(':')[0]
    self.wfile.write(b'HTTP/1.1 200 Connection established\r\n\r\n')
    self.wfile.flush()
    try:
      tls = self.server.tls_context.wrap_socket(self.connection, server_side=True)
    except (ssl.SSLError, OSError):
      return
    stream = tls.makefile('rwb')
    try:
      while self._forward_one(stream, host):
        pass
    except (ssl.SSLError, OSError, ValueError):
      pass
    finally:
      with contextlib.suppress(OSError):
        stream.close()
        tls.close()

  def _forward_one(self, stream, host) -> bool:
    line = stream.readline(65537)
    if not line.strip():
      return False
    method, path, _ = line.decode('latin-1').split(' ', 2)
    headers = _read_headers(stream)
    if any(name.lower() == 'expect' and '100' in value for name, value in headers):
      stream.write(b'HTTP/1.1 100 Continue\r\n\r\n')
      stream.flush()
    body = _read_body(stream, headers)
    skip = {'transfer-encoding', 'expect', 'content-length', 'connection', 'host',
            'proxy-connection'}
    forwarded = {name: value for name, value in headers if name.lower() not in skip}
    forwarded['Content-Length'] = str(len(body))
    emulator = http.client.HTTPConnection('127.0.0.1', self.server.emulator_port, timeout=120)
    try:
      emulator.request(method, path, body=body, headers=forwarded)
      response = emulator.getresponse()
      payload = response.read()
      status, reason, answer_headers = response.status, response.reason, response.getheaders()
    finally:
      emulator.close()
    local = f'http://127.0.0.1:{self.server.emulator_port}'
    out = [f'HTTP/1.1 {status} {reason}']
    for name, value in answer_headers:
      if name.lower() in ('transfer-encoding', 'connection', 'content-length'):
        continue
      if name.lower() == 'location':
        value = value.replace(local, f'https://{host}')
      out.append(f'{name}: {value}')
    if method != 'HEAD':
      out.append(f'Content-Length: {len(payload)}')
    stream.write(('\r\n'.join(out) + '\r\n\r\n').encode('latin-1')
                 + (payload if method != 'HEAD' else b''))
    stream.flush()
    return True


class _MetadataHandler(http.server.BaseHTTPRequestHandler):
  """The few GCE metadata answers google-auth needs for default credentials."""

  ANSWERS = {
      '/': '',
      '/computeMetadata/v1/project/project-id': 'test-project',
      '/computeMetadata/v1/instance/service-accounts/default/':
          json.dumps({'email': 'test@test-project.iam.gserviceaccount.com',
                      'scopes': ['https://www.googleapis.com/auth/cloud-platform'],
                      'aliases': ['default']}),
      '/computeMetadata/v1/instance/service-accounts/default/token':
          json.dumps({'access_token': 'test-token', 'expires_in': 3600,
                      'token_type': 'Bearer'}),
      '/computeMetadata/v1/instance/service-accounts/default/email':
          'test@test-project.iam.gserviceaccount.com',
  }

  def do_GET(self):  # pylint: disable=invalid-name
    path = self.path.split('?')[0]
    body = self.ANSWERS.get(path)
    self.send_response(404 if body is None else 200)
    self.send_header('Metadata-Flavor', 'Google')
    content_type = 'application/json' if (body or '').startswith('{') else 'text/plain'
    self.send_header('Content-Type', content_type)
    data = (body or '').encode()
    self.send_header('Content-Length', str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def log_message(self, *args):
    pass


class _ProxyServer(socketserver.ThreadingTCPServer):
  daemon_threads = True
  allow_reuse_address = True


@contextlib.contextmanager
def running(bucket: str, front: Optional[Callable[[int], int]] = None
            ) -> Iterator[Dict[str, str]]:
  """The emulator (with `bucket`) and the proxy; yields their environment:
  set it in this process with `applied(...)`, or pass it to subprocesses.
  `front`, given the emulator's port, returns the port every client is to
  reach it at instead (tests/fault_proxy.py in between)."""
  from gcp_storage_emulator import server  # pylint: disable=g-import-not-at-top
  _patch_emulator_for_empty_uploads()
  _patch_emulator_for_preconditions()
  _patch_emulator_for_resumed_uploads()
  emulator_port = free_port()
  emulator = server.create_server('127.0.0.1', emulator_port, in_memory=True,
                                  default_bucket=bucket)
  emulator.start()
  emulator_port = front(emulator_port) if front else emulator_port
  with tempfile.TemporaryDirectory(prefix='gcs-proxy-') as directory:
    paths = _write_certificates(directory)
    proxy = _ProxyServer(('127.0.0.1', 0), _ProxyHandler)
    proxy.emulator_port = emulator_port
    proxy.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    proxy.tls_context.load_cert_chain(paths['cert.pem'], paths['key.pem'])
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    metadata = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _MetadataHandler)
    metadata.daemon_threads = True
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    metadata_host = f'127.0.0.1:{metadata.server_address[1]}'
    cloudsdk = os.path.join(directory, 'cloudsdk')
    os.makedirs(cloudsdk)
    endpoint = f'http://127.0.0.1:{emulator_port}'
    try:
      yield {
          'STORAGE_EMULATOR_HOST': endpoint,
          'GOOGLE_CLOUD_PROJECT': 'test-project',
          'https_proxy': f'http://127.0.0.1:{proxy.server_address[1]}',
          'HTTPS_PROXY': f'http://127.0.0.1:{proxy.server_address[1]}',
          'no_proxy': '127.0.0.1,localhost',
          'NO_PROXY': '127.0.0.1,localhost',
          'CURL_CA_BUNDLE': paths['ca.pem'],
          'CLOUDSDK_CONFIG': cloudsdk,
          'GCS_STAT_CACHE_MAX_AGE': '0',
          'GCE_METADATA_HOST': metadata_host,
          'GCE_METADATA_IP': metadata_host,
      }
    finally:
      metadata.shutdown()
      metadata.server_close()
      proxy.shutdown()
      proxy.server_close()
      emulator.stop()


def _forget_beam_credentials() -> None:
  """Drops the credentials Beam keeps for the whole process
  (apache_beam/internal/gcp/auth.py, `_Credentials`), so that each block
  takes its own emulator's."""
  from apache_beam.internal.gcp import auth  # pylint: disable=g-import-not-at-top
  with auth._Credentials._credentials_lock:  # pylint: disable=protected-access
    auth._Credentials._credentials_init = False  # pylint: disable=protected-access
    auth._Credentials._credentials = None  # pylint: disable=protected-access


@contextlib.contextmanager
def applied(environment: Dict[str, str]) -> Iterator[None]:
  """Sets `environment` in this process for the block.

  google-auth reads GCE_METADATA_HOST once, when it is first imported
  (google/auth/compute_engine/_metadata.py), and Beam keeps the credentials
  it got for the whole process: an earlier block's fake metadata server,
  stopped by now, would answer for this one. Both are pointed at this
  block's server, and back after it.
  """
  from google.auth.compute_engine import _metadata  # pylint: disable=g-import-not-at-top
  saved = {name: os.environ.get(name) for name in environment}
  saved_host = _metadata._GCE_METADATA_HOST  # pylint: disable=protected-access
  os.environ.update(environment)
  _metadata._GCE_METADATA_HOST = environment.get(  # pylint: disable=protected-access
      'GCE_METADATA_HOST', saved_host)
  _forget_beam_credentials()
  try:
    yield
  finally:
    _forget_beam_credentials()
    _metadata._GCE_METADATA_HOST = saved_host  # pylint: disable=protected-access
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value
