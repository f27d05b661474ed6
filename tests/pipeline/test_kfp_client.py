"""submit/schedule against Kubeflow Pipelines.

No KFP server is reachable from here: the call sequences are checked with a
recording stand-in for kfp.Client, and the error paths with the real
kfp.Client against loopback sockets (a closed port, a silent listener).
Signing in, schedules' bodies and following runs are tested with the real
kfp.Client against tests/kfp_api_server.py (test_kfp_signed_in.py).
"""

import http.server
import json
import socket
import threading
import time
import types
from unittest import mock

# Imported now, not inside the first call's deadline where the client imports
# it (pipeline/kubeflow/kfp_client.py): a cold import on a loaded machine can take
# longer than the short deadlines below.
import kfp  # pylint: disable=unused-import
import pytest

from pipeline import cli
from pipeline.kubeflow import kfp_client
from pipeline.kubeflow.kfp_client import KfpError


def _stand_in(existing_pipeline_id=None, existing_recurring=()):
  """A kfp.Client stand-in that fails on a wrong signature (no server here)."""
  import kfp  # pylint: disable=g-import-not-at-top
  client = mock.create_autospec(kfp.Client, instance=True)
  client.get_pipeline_id.return_value = existing_pipeline_id
  client.upload_pipeline.return_value = types.SimpleNamespace(pipeline_id='p-new')
  client.upload_pipeline_version.return_value = types.SimpleNamespace(pipeline_version_id='v-1')
  client.create_experiment.return_value = types.SimpleNamespace(experiment_id='e-1')
  client.create_recurring_run.return_value = types.SimpleNamespace(recurring_run_id='r-1')
  client.create_run_from_pipeline_package.return_value = types.SimpleNamespace(run_id='run-1')
  client.list_recurring_runs.return_value = types.SimpleNamespace(recurring_runs=[
      types.SimpleNamespace(recurring_run_id=run_id, display_name=name)
      for run_id, name in existing_recurring] or None)
  return client


def _client(existing=None, existing_recurring=()):
  made = []
  def factory(host, **arguments):
    made.append(_stand_in(existing, existing_recurring))
    made[-1].host, made[-1].arguments = host, arguments
    return made[-1]
  return kfp_client.KubeflowClient('http://kfp.example:8080', client_factory=factory), made


def _names(stand_in):
  return [call[0] for call in stand_in.method_calls]


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
  made[0].create_run_from_pipeline_package.assert_called_once_with(
      '/tmp/p.yaml', arguments={'noise_stddev': 0.3}, run_name='run-a',
      experiment_name='exp', namespace=None)


def test_schedule_uploads_a_new_pipeline_then_a_recurring_run():
  client, made = _client()
  assert client.schedule('/tmp/p.yaml', 'mnist-dae', 'v20261125', 'exp', 'daily',
                         '0 3 * * *', {}) == 'r-1'
  assert _names(made[0]) == ['create_experiment', 'list_recurring_runs', 'get_pipeline_id',
                             'upload_pipeline', 'upload_pipeline_version',
                             'create_recurring_run']
  recurring = made[0].create_recurring_run.call_args.kwargs
  assert recurring['cron_expression'] == '0 0 3 * * *'
  assert (recurring['pipeline_id'], recurring['version_id']) == ('p-new', 'v-1')
  assert recurring['experiment_id'] == 'e-1' and recurring['enabled']
  assert (recurring['max_concurrency'], recurring['no_catchup']) == (1, True)


def test_schedule_policy_is_passed_and_checked_before_any_call():
  client, made = _client()
  client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {},
                  policy=kfp_client.SchedulePolicy(max_concurrency=3, catchup=True))
  recurring = made[0].create_recurring_run.call_args.kwargs
  assert (recurring['max_concurrency'], recurring['no_catchup']) == (3, False)
  client, made = _client()
  with pytest.raises(KfpError, match=r'--max-concurrency 11: Kubeflow Pipelines takes 1 to 10'):
    client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {},
                    policy=kfp_client.SchedulePolicy(max_concurrency=11))
  assert made[0].method_calls == []


def test_schedule_reuses_an_existing_pipeline():
  client, made = _client(existing='p-old')
  client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {})
  assert 'upload_pipeline' not in _names(made[0])
  assert made[0].create_recurring_run.call_args.kwargs['pipeline_id'] == 'p-old'


def test_bad_cron_makes_no_call():
  client, made = _client()
  with pytest.raises(KfpError):
    client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', 'daily', {})
  assert made[0].method_calls == []


def test_schedule_refuses_a_second_recurring_run_of_the_same_name():
  client, made = _client(existing_recurring=[('r-old', 'daily')])
  with pytest.raises(KfpError, match="'daily' already exists in experiment 'exp' "
                     r'\(r-old\); pass --replace'):
    client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {})
  # Nothing was uploaded or changed.
  assert _names(made[0]) == ['create_experiment', 'list_recurring_runs']


def test_schedule_with_replace_swaps_the_recurring_run():
  client, made = _client(existing_recurring=[('r-old', 'daily'), ('r-other', 'weekly')])
  assert client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {},
                         replace=True) == 'r-1'
  assert _names(made[0])[-3:] == ['disable_recurring_run', 'create_recurring_run',
                                  'delete_recurring_run']
  made[0].disable_recurring_run.assert_called_once_with('r-old')
  made[0].delete_recurring_run.assert_called_once_with('r-old')
  name_filter = made[0].list_recurring_runs.call_args.kwargs['filter']
  assert json.loads(name_filter)['predicates'][0]['stringValue'] == 'daily'


def test_a_failed_replacement_enables_the_old_recurring_run_again():
  client, made = _client(existing_recurring=[('r-old', 'daily')])
  made[0].create_recurring_run.side_effect = RuntimeError('quota')
  with pytest.raises(KfpError, match='create recurring run .*quota'):
    client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {},
                    replace=True)
  made[0].enable_recurring_run.assert_called_once_with('r-old')
  made[0].delete_recurring_run.assert_not_called()


def test_bad_host_url_is_rejected():
  with pytest.raises(KfpError, match='bad host'):
    kfp_client.KubeflowClient('localhost')


def _free_port():
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def test_unreachable_host_is_a_one_line_error():
  # The real kfp.Client, against a closed loopback port: refused, not
  # waited for until the deadline (a long one, so no slow machine reaches it).
  port = _free_port()
  started = time.monotonic()
  with pytest.raises(KfpError, match=f'connect \\(http://127.0.0.1:{port}\\)'):
    kfp_client.KubeflowClient(f'http://127.0.0.1:{port}', timeout_s=120)
  assert time.monotonic() - started < 120


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
  assert time.monotonic() - started < 60  # Not hung, however busy the machine.


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


@pytest.fixture
def stalling_host():
  """A loopback KFP stand-in: answers the health check, never answers a POST."""
  posts, stalled_out = [], []
  release = threading.Event()

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
      body = b'{"multi_user": false}'
      self.send_response(200)
      self.send_header('Content-Type', 'application/json')
      self.send_header('Content-Length', str(len(body)))
      self.end_headers()
      self.wfile.write(body)

    def do_POST(self):  # pylint: disable=invalid-name
      posts.append(self.path)
      if not release.wait(300):
        stalled_out.append(self.path)  # Then closes, unanswered.

    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
  server.daemon_threads = True
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f'http://127.0.0.1:{server.server_address[1]}', posts, stalled_out
  release.set()
  server.shutdown()
  server.server_close()


def test_a_change_that_times_out_is_over_when_the_error_is_reported(stalling_host):
  """The real kfp.Client: the POST times out at the socket and nothing of the
  call lives on in a thread (it could create a run after the CLI gave up)."""
  host, posts, stalled_out = stalling_host
  client = kfp_client.KubeflowClient(host, timeout_s=2)
  with pytest.raises(KfpError, match='create experiment'):
    client.schedule('/tmp/p.yaml', 'mnist-dae', 'v2', 'exp', 'daily', '0 3 * * *', {})
  # Given up at its 2 s socket timeout, while the server still stalls (for
  # 300 s), not when the server closed the connection.
  assert stalled_out == []
  assert posts == ['/apis/v2beta1/experiments']
  assert not [thread for thread in threading.enumerate()
              if thread.name.startswith('kfp:') and thread.is_alive()]
