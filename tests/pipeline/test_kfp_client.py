"""submit/schedule against Kubeflow Pipelines.

No KFP server is reachable from here: the call sequences are checked with a
recording stand-in for kfp.Client, and the error paths with the real
kfp.Client against loopback sockets (a closed port, a silent listener).
"""

import socket
import threading
import time
import types

import pytest

from pipeline import cli
from pipeline import kfp_client
from pipeline.kfp_client import KfpError


class RecordingClient:
  """Records the kfp.Client calls made (network-free stand-in)."""

  def __init__(self, host, existing_pipeline_id=None):
    self.host = host
    self.calls = []
    self._existing = existing_pipeline_id

  def __getattr__(self, name):
    def record(*args, **kwargs):
      self.calls.append((name, args, kwargs))
      return {
          'get_pipeline_id': self._existing,
          'upload_pipeline': types.SimpleNamespace(pipeline_id='p-new'),
          'upload_pipeline_version': types.SimpleNamespace(pipeline_version_id='v-1'),
          'create_experiment': types.SimpleNamespace(experiment_id='e-1'),
          'create_recurring_run': types.SimpleNamespace(recurring_run_id='r-1'),
          'create_run_from_pipeline_package': types.SimpleNamespace(run_id='run-1'),
      }[name]
    return record


def _client(existing=None):
  made = []
  def factory(host):
    made.append(RecordingClient(host, existing))
    return made[-1]
  return kfp_client.KubeflowClient('http://kfp.example:8080', client_factory=factory), made


@pytest.mark.parametrize('given, expected', [
    ('0 3 * * *', '0 0 3 * * *'), ('30 0 3 * * 1-5', '30 0 3 * * 1-5'),
    ('*/15 * * * *', '0 */15 * * * *')])
def test_cron_becomes_six_fields(given, expected):
  assert kfp_client.kfp_cron(given) == expected


@pytest.mark.parametrize('bad', ['0 3 * *', 'every day', '0 3 * * * * *', '0 3 * * $'])
def test_bad_cron_is_a_clear_error(bad):
  with pytest.raises(KfpError, match='bad cron expression'):
    kfp_client.kfp_cron(bad)


def test_submit_starts_a_run_of_the_package():
  client, made = _client()
  assert client.submit('/tmp/p.yaml', 'exp', 'run-a', {'noise_stddev': 0.3}) == 'run-1'
  assert made[0].host == 'http://kfp.example:8080'
  assert made[0].calls == [('create_run_from_pipeline_package', ('/tmp/p.yaml',), {
      'arguments': {'noise_stddev': 0.3}, 'run_name': 'run-a', 'experiment_name': 'exp'})]


def test_schedule_uploads_a_new_pipeline_then_a_recurring_run():
  client, made = _client()
  assert client.schedule('/tmp/p.yaml', 'mnist-dae', 'v20261125', 'exp', 'daily',
                         '0 3 * * *', {}) == 'r-1'
  names = [name for name, _, _ in made[0].calls]
  assert names == ['get_pipeline_id', 'upload_pipeline', 'upload_pipeline_version',
                   'create_experiment', 'create_recurring_run']
  recurring = made[0].calls[-1][2]
  assert recurring['cron_expression'] == '0 0 3 * * *'
  assert (recurring['pipeline_id'], recurring['version_id']) == ('p-new', 'v-1')
  assert recurring['experiment_id'] == 'e-1' and recurring['enabled']


def test_schedule_reuses_an_existing_pipeline():
  client, made = _client(existing='p-old')
  client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {})
  names = [name for name, _, _ in made[0].calls]
  assert 'upload_pipeline' not in names
  assert made[0].calls[-1][2]['pipeline_id'] == 'p-old'


def test_bad_cron_makes_no_call():
  client, made = _client()
  with pytest.raises(KfpError):
    client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', 'daily', {})
  assert made[0].calls == []


def test_bad_host_url_is_rejected():
  with pytest.raises(KfpError, match='bad host'):
    kfp_client.KubeflowClient('localhost')


def _free_port():
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def test_unreachable_host_is_a_one_line_error():
  # The real kfp.Client, against a closed loopback port.
  port = _free_port()
  started = time.monotonic()
  with pytest.raises(KfpError, match=f'connect \\(http://127.0.0.1:{port}\\)'):
    kfp_client.KubeflowClient(f'http://127.0.0.1:{port}', timeout_s=30)
  assert time.monotonic() - started < 30


@pytest.fixture
def silent_host():
  """A loopback listener that accepts connections and never answers."""
  server = socket.socket()
  server.bind(('127.0.0.1', 0))
  server.listen(8)
  accepted, stop = [], threading.Event()
  def accept():
    server.settimeout(0.2)
    while not stop.is_set():
      try:
        accepted.append(server.accept()[0])
      except OSError:
        pass
  thread = threading.Thread(target=accept, daemon=True)
  thread.start()
  yield f'http://127.0.0.1:{server.getsockname()[1]}'
  stop.set()
  thread.join()
  for connection in accepted:
    connection.close()
  server.close()


def test_silent_host_hits_the_deadline(silent_host):
  started = time.monotonic()
  with pytest.raises(KfpError, match='no answer within 2 s'):
    kfp_client.KubeflowClient(silent_host, timeout_s=2)
  assert time.monotonic() - started < 10


def test_submit_command_reports_an_unreachable_host(capsys):
  port = _free_port()
  assert cli.main(['submit', '--host', f'http://127.0.0.1:{port}', '--profile', 'smoke',
                   '--timeout', '20']) == 1
  error = capsys.readouterr().err
  assert 'submit failed' in error and f'127.0.0.1:{port}' in error
  assert 'Traceback' not in error


def test_schedule_command_rejects_a_bad_cron_before_compiling(capsys):
  assert cli.main(['schedule', '--host', 'http://127.0.0.1:1', '--cron', 'daily']) == 1
  assert 'bad cron expression' in capsys.readouterr().err
