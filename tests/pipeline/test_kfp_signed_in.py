"""Signed-in submissions, schedules and followed runs on Kubeflow Pipelines,
with the real kfp.Client (through KubeflowClient and the CLI) against
tests/kfp_api_server.py, a loopback server answering the v2beta1 API in its
own schema and recording each request."""

import _thread
import logging
import os

# Imported now, not inside the first call's deadline where the client imports
# it (pipeline/kubeflow/kfp_client.py), which a cold import on a loaded machine can pass.
import kfp  # pylint: disable=unused-import
import pytest

from pipeline import cli
from pipeline.kubeflow import kfp_client
from pipeline.kubeflow.kfp_client import KfpError, SignIn, SignInRefused
from tests import kfp_api_server
from tests.kfp_api_server import API, KfpApiServer

TOKEN = 'eyJhbGciOiJSUzI1NiJ9.bearer-token-value-0123456789'
COOKIE = ('authservice_session', 'MTcwMDAwMDAwMHxzZXNzaW9uLWNvb2tpZS12YWx1ZQ')
SECRETS = (TOKEN, COOKIE[1])
# Each call's deadline: these calls are answered at once; it ends a hang only.
DEADLINE_S = 60

PENDING_RUNNING_SUCCEEDED = [
    ('PENDING', []),
    ('RUNNING', [('csvexamplegen', 'RUNNING', 'mnist-dae-abc-1', None)]),
    ('RUNNING', [('csvexamplegen', 'SUCCEEDED', 'mnist-dae-abc-1', None),
                 ('trainer', 'RUNNING', 'mnist-dae-abc-2', None)]),
    ('SUCCEEDED', [('csvexamplegen', 'SUCCEEDED', 'mnist-dae-abc-1', None),
                   ('trainer', 'SUCCEEDED', 'mnist-dae-abc-2', None)])]
TRAINER_FAILS = [
    ('RUNNING', [('trainer', 'RUNNING', 'mnist-dae-abc-2', None)]),
    ('FAILED', [('trainer', 'FAILED', 'mnist-dae-abc-2', 'exit status 137: OOMKilled')])]


@pytest.fixture(scope='module')
def tiny_package(tmp_path_factory):
  """A one-task KFP package (the real compiler; the pipeline's own needs TFX)."""
  from kfp import compiler, dsl  # pylint: disable=g-import-not-at-top

  @dsl.component
  def hello() -> str:
    return 'hello'

  @dsl.pipeline(name='tiny')
  def tiny():
    hello()

  path = str(tmp_path_factory.mktemp('package') / 'pipeline.yaml')
  compiler.Compiler().compile(tiny, path)
  return path


@pytest.fixture
def files(tmp_path):
  """The credential files a user would pass."""
  return {'token': kfp_api_server.write_file(str(tmp_path), 'token', TOKEN + '\n'),
          'cookies': kfp_api_server.write_file(
              str(tmp_path), 'cookies', f'{COOKIE[0]}={COOKIE[1]}\n'),
          'wrong_token': kfp_api_server.write_file(str(tmp_path), 'wrong', 'not-the-token'),
          'stale_cookies': kfp_api_server.write_file(
              str(tmp_path), 'stale', f'{COOKIE[0]}=expired-session')}


@pytest.fixture(autouse=True)
def no_pod_token(monkeypatch, tmp_path):
  """Neither a pod's token nor a kfp context file of the machine running the
  tests takes part."""
  monkeypatch.delenv(kfp_client.SA_TOKEN_ENV, raising=False)
  monkeypatch.setattr(kfp_client, 'SA_TOKEN_DEFAULT_PATH', str(tmp_path / 'no-token'))
  from kfp import client  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(client.Client, '_LOCAL_KFP_CONTEXT', str(tmp_path / 'context.json'))


def _assert_no_secret(*texts):
  for text in texts:
    for secret in SECRETS:
      assert secret not in text


def test_namespace_and_bearer_token_reach_the_server(files, tiny_package):
  with KfpApiServer(token=TOKEN) as server:
    client = kfp_client.KubeflowClient(
        server.url, timeout_s=DEADLINE_S, sign_in=SignIn(namespace='team-a', token_file=files['token']))
    run_id = client.submit(tiny_package, 'exp', 'run-a', {})
  assert run_id.startswith('run-')
  assert server.requests and all(request.headers['authorization'] == f'Bearer {TOKEN}'
                                 for request in server.requests)
  created = server.calls('POST', f'{API}/experiments')[0].json()
  assert (created['display_name'], created['namespace']) == ('exp', 'team-a')
  assert server.calls('GET', f'{API}/experiments')[0].query['namespace'] == ['team-a']
  assert server.calls('POST', f'{API}/runs')[0].json()['experiment_id'] == 'experiment-1'


@pytest.mark.parametrize('cookies_text', [
    f'{COOKIE[0]}={COOKIE[1]}\n',
    f'# Netscape HTTP Cookie File\n#HttpOnly_kubeflow.example.com\tFALSE\t/\tTRUE\t0\t'
    f'{COOKIE[0]}\t{COOKIE[1]}\n'], ids=['header', 'cookies.txt'])
def test_session_cookie_reaches_the_server(tmp_path, cookies_text):
  cookies = kfp_api_server.write_file(str(tmp_path), 'cookies', cookies_text)
  with KfpApiServer(cookie=COOKIE) as server:
    kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S,
                              sign_in=SignIn(namespace='team-a', cookies_file=cookies))
  assert server.requests[0].path == f'{API}/healthz'
  assert server.requests[0].headers['cookie'] == f'{COOKIE[0]}={COOKIE[1]}'


def test_a_pod_signs_in_with_its_projected_token_read_before_each_request(
    tmp_path, monkeypatch):
  # What kfp's ServiceAccountTokenVolumeCredentials does with the PodDefault's
  # token; the kubelet rotates the file.
  token_path = kfp_api_server.write_file(str(tmp_path), 'sa-token', 'first-token')
  monkeypatch.setenv(kfp_client.SA_TOKEN_ENV, token_path)
  with KfpApiServer(token='first-token') as server:
    client = kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S,
                                       sign_in=SignIn(namespace='team-a'))
    kfp_api_server.write_file(str(tmp_path), 'sa-token', 'rotated-token')
    server.token = 'rotated-token'
    client.recurring_runs_named('experiment-1', 'nightly')
  assert [request.headers['authorization'] for request in server.requests] == [
      'Bearer first-token', 'Bearer rotated-token']


def test_https_with_a_private_ca(tmp_path):
  with KfpApiServer(token=TOKEN, tls_dir=str(tmp_path)) as server:
    token = kfp_api_server.write_file(str(tmp_path), 'token', TOKEN)
    kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S, sign_in=SignIn(
        namespace='team-a', token_file=token, ca_cert=server.ca_cert))
    assert server.url.startswith('https://')
    with pytest.raises(KfpError, match='CERTIFICATE_VERIFY_FAILED') as refused:
      kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S,
                                sign_in=SignIn(namespace='team-a', token_file=token))
  _assert_no_secret(str(refused.value))
  with pytest.raises(KfpError, match=r'^--ca-cert /nowhere/ca.pem: no such file$'):
    kfp_client.KubeflowClient(server.url, sign_in=SignIn(ca_cert='/nowhere/ca.pem'))


@pytest.mark.parametrize('server_args, sign_in_files, expected', [
    ({'token': TOKEN}, {'token_file': 'wrong_token'},
     r'^the KFP API at {url} refused the bearer token from --token-file \(401\)$'),
    ({'token': TOKEN}, {},
     r'^the KFP API at {url} needs a signed-in identity \(401\): pass --token-file '
     r'\(a bearer token\) or --cookies-file \(your authservice_session cookie\)$'),
    ({'cookie': COOKIE}, {},
     r'^{url} answered with a redirect to /dex/auth: pass --cookies-file with your '
     r'authservice_session cookie or --token-file$'),
    ({'cookie': COOKIE}, {'cookies_file': 'stale_cookies'},
     r'^{url} answered with a redirect to /dex/auth: it did not accept the session '
     r'cookie from --cookies-file \(expired, or for another host\); copy a fresh one '
     r'from the browser$'),
    ({'cookie': COOKIE, 'login_redirect': False}, {},
     r'^{url} answered with a login page: pass --cookies-file'),
], ids=['wrong token', 'no token', 'login redirect', 'stale cookie', 'login page'])
def test_a_refused_sign_in_is_one_line_naming_the_credential(
    files, server_args, sign_in_files, expected):
  sign_in = SignIn(namespace='team-a', **{
      name: files[key] for name, key in sign_in_files.items()})
  with KfpApiServer(**server_args) as server:
    with pytest.raises(SignInRefused) as refused:
      kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S, sign_in=sign_in)
  assert len(server.requests) == 1  # Refused at the first answer, not retried.
  assert refused.match(expected.format(url=server.url))


def test_without_a_namespace_the_first_answer_is_checked_too(files):
  # kfp's constructor calls healthz itself when no namespace is set; a 401
  # there is not retried for 25 s.
  with KfpApiServer(token=TOKEN) as server:
    with pytest.raises(SignInRefused, match=r'refused the bearer token .*\(401\)'):
      kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S,
                                sign_in=SignIn(token_file=files['wrong_token']))
  assert len(server.requests) == 1


def test_a_multi_user_api_without_a_namespace_asks_for_one(files):
  with KfpApiServer(token=TOKEN) as server:
    with pytest.raises(KfpError, match=r'is multi-user: pass --namespace'):
      kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S,
                                sign_in=SignIn(token_file=files['token']))
  with KfpApiServer(multi_user=False) as server:
    kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S)  # Single-user: none needed.


def test_an_error_that_echoes_credentials_is_scrubbed(files, caplog):
  caplog.set_level(logging.DEBUG)
  with KfpApiServer(token=TOKEN, cookie=COOKIE) as server:
    server.echo_failures = (f'{API}/recurringruns',)
    client = kfp_client.KubeflowClient(server.url, timeout_s=DEADLINE_S, sign_in=SignIn(
        namespace='team-a', token_file=files['token'], cookies_file=files['cookies']))
    with pytest.raises(KfpError, match='list recurring runs') as failed:
      client.recurring_runs_named('experiment-1', 'nightly')
  assert kfp_client.HIDDEN in str(failed.value)
  assert failed.value.__cause__ is None and failed.value.__suppress_context__
  _assert_no_secret(str(failed.value), caplog.text)


def test_a_recurring_run_neither_backfills_nor_overlaps(files, tiny_package):
  with KfpApiServer(token=TOKEN) as server:
    client = kfp_client.KubeflowClient(
        server.url, timeout_s=DEADLINE_S, sign_in=SignIn(namespace='team-a', token_file=files['token']))
    client.schedule(tiny_package, 'tiny', 'v1', 'exp', 'nightly', '0 3 * * *', {})
    client.schedule(tiny_package, 'tiny', 'v2', 'exp', 'weekly', '0 3 * * 1', {},
                    policy=kfp_client.SchedulePolicy(max_concurrency=2, catchup=True))
  nightly, weekly = [request.json() for request in server.calls('POST', f'{API}/recurringruns')]
  assert (nightly['no_catchup'], int(nightly['max_concurrency'])) == (True, 1)
  assert (weekly['no_catchup'], int(weekly['max_concurrency'])) == (False, 2)
  assert nightly['trigger']['cron_schedule']['cron'] == '0 0 3 * * *'
  assert nightly['experiment_id'] == 'experiment-1'


def _status(server, run_id, *flags):
  return cli.main(['status', run_id, '--host', server.url, '--namespace', 'team-a',
                   '--poll-interval', '0.01', *flags])


def _submitted_run(server, script):
  """A run the server will move through `script`, one step per look."""
  server.run_script = script
  run_id = 'run-1'
  server.runs[run_id] = {'experiment_id': 'experiment-1', 'script': script, 'gets': 0}
  return run_id


def test_status_wait_follows_a_run_to_success(files, capsys, caplog):
  caplog.set_level(logging.DEBUG)
  with KfpApiServer(token=TOKEN) as server:
    run_id = _submitted_run(server, PENDING_RUNNING_SUCCEEDED)
    assert _status(server, run_id, '--token-file', files['token'], '--wait') == 0
  out, err = capsys.readouterr()
  assert out.splitlines() == [
      'run: PENDING', '  csvexamplegen: RUNNING', 'run: RUNNING', '  csvexamplegen: SUCCEEDED',
      '  trainer: RUNNING', '  trainer: SUCCEEDED', 'run: SUCCEEDED', 'run run-1 succeeded']
  assert len(server.calls('GET', f'{API}/runs/')) == 4
  _assert_no_secret(out, err, caplog.text)


def test_a_failed_run_names_the_task_its_pod_and_the_run_page(files, capsys):
  with KfpApiServer(token=TOKEN) as server:
    run_id = _submitted_run(server, TRAINER_FAILS)
    assert _status(server, run_id, '--token-file', files['token'], '--wait', '30') == 1
  err = capsys.readouterr().err
  assert err.strip().splitlines()[-1] == (
      'run run-1 failed: task trainer failed (pod mnist-dae-abc-2): exit status 137: '
      f'OOMKilled; logs: {server.url}/#/runs/details/run-1')


def test_a_wait_that_runs_out_exits_124_and_says_how_to_follow_again(files, capsys):
  with KfpApiServer(token=TOKEN) as server:
    run_id = _submitted_run(server, [('RUNNING', [('trainer', 'RUNNING', None, None)])])
    assert _status(server, run_id, '--token-file', files['token'], '--wait', '0.2') == 124
    assert _status(server, run_id, '--token-file', files['token']) == 124  # One look.
  out, err = capsys.readouterr()
  assert 'run run-1 is still RUNNING after 0.2 s; follow it again: ' in err
  assert f"status run-1 --host {server.url} --namespace team-a --token-file {files['token']} " \
         '--wait' in err
  assert out.splitlines()[-1].startswith('run run-1 is RUNNING; follow it: ')
  _assert_no_secret(out, err)


def test_ctrl_c_stops_following_not_the_run(files, capsys):
  with KfpApiServer(token=TOKEN) as server:
    run_id = _submitted_run(server, [('RUNNING', [('trainer', 'RUNNING', None, None)])])
    # Ctrl-C arrives while the third look is under way.
    server.on_get_run = lambda gets: gets == 3 and _thread.interrupt_main()
    assert _status(server, run_id, '--token-file', files['token'], '--wait') == 130
  err = capsys.readouterr().err
  assert 'stopped following run run-1; the run goes on. Follow it again: ' in err
  assert all(request.method == 'GET' for request in server.requests)  # Nothing cancelled.


def test_status_reports_a_refused_credential_in_one_line(files, capsys):
  with KfpApiServer(cookie=COOKIE) as server:
    assert _status(server, 'run-1', '--cookies-file', files['stale_cookies']) == 1
  out, err = capsys.readouterr()
  assert err.strip() == (f'dae-pipeline: status: {server.url} answered with a redirect to '
                         '/dex/auth: it did not accept the session cookie from '
                         '--cookies-file (expired, or for another host); copy a fresh '
                         'one from the browser')
  assert out == ''


def _compile_and_send(server, capsys, command, *flags):
  """Runs `dae-pipeline <command>` on the smoke profile against the server
  (the real compile, TFX); its stdout and stderr, once it exited 0."""
  code = cli.main([command, '--profile', 'smoke', '--host', server.url,
                   '--namespace', 'team-a', '--pipeline-root', 'gs://bucket/root', *flags])
  out, err = capsys.readouterr()
  assert code == 0, err
  return out, err


def test_submit_wait_end_to_end_compiles_signs_in_and_follows(files, capsys, caplog):
  """The CLI as a user runs it: compile the real pipeline (TFX), sign in with
  a token, start the run in a namespace, follow it to its end."""
  caplog.set_level(logging.DEBUG)
  with KfpApiServer(token=TOKEN) as server:
    server.run_script = PENDING_RUNNING_SUCCEEDED
    out, err = _compile_and_send(server, capsys, 'submit', '--token-file', files['token'],
                                 '--wait', '60', '--poll-interval', '0.01')
  assert 'started run run-2 in experiment' in out and out.splitlines()[-1] == 'run run-2 succeeded'
  run_body = server.calls('POST', f'{API}/runs')[0].body.decode()
  assert '"pipeline_spec"' in run_body and 'Trainer' in run_body
  assert server.calls('POST', f'{API}/experiments')[0].json()['namespace'] == 'team-a'
  # No credential in the compiled package (it travelled in the run's body),
  # the output or the logs.
  _assert_no_secret(run_body, out, err, caplog.text)
  assert os.path.exists(files['token'])


def test_status_in_a_fresh_interpreter_imports_no_tfx(files):
  """`dae-pipeline status` runs no pipeline: it must not pay TFX's import."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  with KfpApiServer(token=TOKEN) as server:
    run_id = _submitted_run(server, PENDING_RUNNING_SUCCEEDED)
    code = ('import sys; from pipeline import cli\n'
            f'status = cli.main(["status", {run_id!r}, "--host", {server.url!r}, '
            f'"--namespace", "team-a", "--token-file", {files["token"]!r}, "--wait", '
            '"--poll-interval", "0.01"])\n'
            'print("tfx imported" if "tfx" in sys.modules else "no tfx", status)')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, kfp_client.SA_TOKEN_ENV: ''})
  assert done.stdout.splitlines()[-1] == 'no tfx 0'
  _assert_no_secret(done.stdout, done.stderr)


def test_a_403_says_the_identity_has_no_access_to_the_namespace(files):
  sign_in = SignIn(namespace='team-b', token_file=files['token'])
  assert kfp_client.refusal('https://kf.example.com/pipeline', sign_in, 403, {}) == (
      'the KFP API at https://kf.example.com/pipeline refused the bearer token from '
      "--token-file (403: the identity has no access to namespace 'team-b')")
  assert kfp_client.refusal('https://kf.example.com', sign_in, 200,
                            {'Content-Type': 'application/json'}) is None


def test_unreadable_credential_files_are_one_line_without_their_contents(
    tmp_path, monkeypatch):
  empty = kfp_api_server.write_file(str(tmp_path), 'empty', '\n')
  with pytest.raises(KfpError, match=f'^--token-file {empty}: the file is empty$'):
    SignIn(token_file=empty).client_arguments()
  with pytest.raises(KfpError, match=r'^--cookies-file /nowhere: cannot read it \('):
    SignIn(cookies_file='/nowhere').client_arguments()
  monkeypatch.setenv(kfp_client.SA_TOKEN_ENV, str(tmp_path / 'not-mounted'))
  with pytest.raises(KfpError, match=f'^{kfp_client.SA_TOKEN_ENV} .*not-mounted: cannot read'):
    SignIn(namespace='team-a').client_arguments()


def test_cookies_file_lines_make_one_cookie_header():
  assert kfp_client.cookie_header('a=1;\n# comment\nb=2; c=3\n') == 'a=1; b=2; c=3'


def test_schedule_command_end_to_end_sends_its_policy(files, capsys):
  """`schedule` as a user runs it (the real compile): signed in with a cookie,
  in a namespace, --max-concurrency reaches the recurring run's body."""
  with KfpApiServer(cookie=COOKIE) as server:
    out, err = _compile_and_send(server, capsys, 'schedule', '--cookies-file',
                                 files['cookies'], '--cron', '0 3 * * *',
                                 '--max-concurrency', '2')
  [body] = [request.json() for request in server.calls('POST', f'{API}/recurringruns')]
  assert (body['no_catchup'], int(body['max_concurrency'])) == (True, 2)
  assert "created recurring run 'mnist-dae-smoke-recurring'" in out
  uploaded = server.calls('POST', f'{API}/pipelines/upload')[0].body.decode('utf-8', 'replace')
  assert 'Trainer' in uploaded
  _assert_no_secret(uploaded, out, err)
