"""`submit`, `schedule` and `status`: runs on Kubeflow Pipelines or Vertex AI
Pipelines, started, scheduled and followed from here."""

import argparse
import math
import os
import shlex
import sys
import tempfile
import time
from typing import Optional

from pipeline.cli import common
from pipeline.cli import package
from pipeline.kubeflow import compiler
from pipeline.kubeflow import follow
from pipeline.kubeflow import kfp_client
from pipeline.kubeflow import vertex_client
import pipeline_config


def add_parsers(commands) -> None:
  """Adds `submit`, `schedule` and `status` to the subcommands."""
  for name, help_text, description in (
      ('submit', 'compile, then start one run on Kubeflow or Vertex AI',
       'Compile, then start one run on Kubeflow Pipelines or Vertex AI.'),
      ('schedule', 'compile, then schedule runs on Kubeflow or Vertex AI',
       'Compile, then create a recurring run on Kubeflow Pipelines (as a new '
       'pipeline version) or a schedule on Vertex AI.')):
    remote = commands.add_parser(name, help=help_text, description=description)
    common.add_config_arguments(remote)
    package.add_kubeflow_arguments(remote)
    _add_target_arguments(remote)
    remote.add_argument('--experiment', default='mnist-dae',
                        help='KFP experiment (--target kubeflow)')
    remote.add_argument('--service-account', help="the runs' service account "
                        '(--target vertex; default: the project\'s default)')
    package.add_param_argument(remote)
    if name == 'submit':
      _add_follow_arguments(remote)
    if name == 'schedule':
      remote.add_argument('--cron', required=True,
                          help='cron schedule, 5 fields ("0 3 * * *"); Kubeflow '
                          'also takes 6 with seconds first, Vertex a "TZ=Area/City " prefix')
      remote.add_argument('--schedule-name',
                          help='name of the recurring run (default: '
                          '<pipeline name>-recurring); one per name and experiment')
      remote.add_argument('--replace', action='store_true',
                          help='replace the recurring run of that name if it exists '
                          '(without: refuse, changing nothing)')
      _add_schedule_policy_arguments(remote)
    remote.set_defaults(func=_remote)
  status = commands.add_parser(
      'status', help="show a remote run's state (--wait: follow it)",
      description="Show a remote run's state and its tasks' (--wait: follow "
      'it to its end).')
  status.add_argument('run', metavar='RUN', help='the run id (Kubeflow) or '
                      'PipelineJob resource name (Vertex AI) that submit printed')
  _add_target_arguments(status)
  _add_follow_arguments(status)
  status.set_defaults(func=_status, reads_config=False)  # A run, no config.


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
  """Where a remote command goes, and how it signs in."""
  parser.add_argument('--target', choices=['kubeflow', 'vertex'], default='kubeflow',
                      help='open-source Kubeflow Pipelines (--host) or Vertex AI '
                      'Pipelines (--project, --region; signs in with Application '
                      'Default Credentials: gcloud auth application-default login, '
                      'no flags)')
  parser.add_argument('--host', help='KFP API endpoint, e.g. http://localhost:8080 '
                      'or https://kubeflow.example.com/pipeline (--target kubeflow)')
  parser.add_argument('--project', help='Google Cloud project (--target vertex)')
  parser.add_argument('--region', help='Vertex AI region, e.g. europe-west4')
  sign_in = parser.add_argument_group(
      'signing in to a multi-user Kubeflow (--target kubeflow; no value is '
      'ever printed or logged)')
  sign_in.add_argument('--namespace', help='your Kubeflow profile namespace: '
                       'the runs and experiment belong to it')
  sign_in.add_argument('--token-file', metavar='FILE',
                       help='file holding a bearer token (e.g. kubectl create '
                       'token); default: in a pod, the projected ServiceAccount '
                       'token at $KF_PIPELINES_SA_TOKEN_PATH, as kfp reads it')
  sign_in.add_argument('--cookies-file', metavar='FILE',
                       help='file holding the Dex/oauth2-proxy session cookie '
                       'from your browser, e.g. authservice_session=... (or a '
                       'cookies.txt export)')
  sign_in.add_argument('--ca-cert', metavar='PEM',
                       help="CA certificate that signed the host's TLS "
                       'certificate (a private CA)')
  parser.add_argument('--timeout', type=float, default=60.0,
                      help='seconds to wait for each answer of the host')


def _add_follow_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
      '--wait', nargs='?', type=float, const=math.inf, default=None,
      metavar='SECONDS',
      help="follow the run: print each task's state as it changes, then the "
      f'run\'s; exit {follow.EXIT_SUCCEEDED} when it succeeded, '
      f'{follow.EXIT_FAILED} when it failed (naming the task and its logs), '
      f'{follow.EXIT_WAIT_RAN_OUT} when SECONDS ran out (default: as long as '
      'it takes); Ctrl-C stops following, not the run')
  parser.add_argument('--poll-interval', type=float,
                      default=follow.DEFAULT_POLL_INTERVAL_S, metavar='SECONDS',
                      help='seconds between looks at the run (default: '
                      f'{follow.DEFAULT_POLL_INTERVAL_S:g})')


def _add_schedule_policy_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--max-concurrency', type=int, default=1, metavar='N',
                      help='runs of the schedule active at once, at most '
                      '(default: 1); a time that comes while N run waits for one '
                      'to end (Kubeflow) or is skipped (Vertex AI)')
  parser.add_argument('--catchup', action='store_true',
                      help='Kubeflow: after a pause, or runs that outlast their '
                      'interval, start one run per missed time (backfill); '
                      'default: one run for the latest missed time only')


def _target_client(args, pipeline_root: Optional[str] = None):
  """The KubeflowClient (signed in, before any work) or VertexClient."""
  if args.target == 'vertex':
    return vertex_client.VertexClient(
        args.project, args.region, pipeline_root,
        service_account=getattr(args, 'service_account', None),
        timeout_s=args.timeout)
  if not args.host:
    raise pipeline_config.ConfigError('host', '--target kubeflow needs --host')
  sign_in = kfp_client.SignIn(namespace=args.namespace, token_file=args.token_file,
                              cookies_file=args.cookies_file, ca_cert=args.ca_cert)
  return kfp_client.KubeflowClient(args.host, timeout_s=args.timeout,
                                   sign_in=sign_in)


def _status_command(args, run_id: str) -> str:
  """The `dae-pipeline status` command that follows this run again (file
  names of credentials, never their contents)."""
  words = [common.program(), 'status', run_id]
  if args.target == 'vertex':
    words += ['--target', 'vertex', '--project', args.project, '--region', args.region]
  else:
    words += ['--host', args.host]
    for flag in ('namespace', 'token_file', 'cookies_file', 'ca_cert'):
      if getattr(args, flag):
        words += ['--' + flag.replace('_', '-'), getattr(args, flag)]
  return ' '.join(shlex.quote(word) for word in words) + ' --wait'


def _follow(args, client, run_id: str) -> int:
  """Follows the run for --wait seconds (one look without it); its exit
  status. Ctrl-C stops following and says how to follow again."""
  wait_s = 0.0 if args.wait is None else args.wait
  again = _status_command(args, run_id)
  try:
    view = follow.follow(lambda: client.run_view(run_id), wait_s,
                         args.poll_interval, lambda line: print(line, flush=True))
  except KeyboardInterrupt:
    print(f'dae-pipeline: stopped following run {run_id}; the run goes on. '
          f'Follow it again: {again}', file=sys.stderr)
    return follow.EXIT_STOPPED_FOLLOWING
  if view.finished:
    print(follow.verdict(view), file=sys.stdout if view.state ==
          follow.SUCCEEDED else sys.stderr)
  elif args.wait is None:
    print(f'run {run_id} is {view.state}; follow it: {again}')
  else:
    print(f'dae-pipeline: run {run_id} is still {view.state} after {wait_s:g} s; '
          f'follow it again: {again}', file=sys.stderr)
  return follow.exit_code(view)


def _refused(args, error) -> int:
  """A refused sign-in, in its one line."""
  print(f'dae-pipeline: {args.command}: {error}', file=sys.stderr)
  return common.EXIT_FAILED


def _status(args) -> int:
  try:
    return _follow(args, _target_client(args), args.run)
  except kfp_client.SignInRefused as error:
    return _refused(args, error)


def _remote(args, config) -> int:
  """`submit` or `schedule`: signs in, compiles, then sends the package."""
  policy = None
  if args.command == 'schedule':  # A bad cron or policy fails before any work.
    policy = kfp_client.SchedulePolicy(max_concurrency=args.max_concurrency,
                                       catchup=args.catchup)
    if args.target == 'kubeflow':
      kfp_client.kfp_cron(args.cron)
      policy.check(kfp_client.KFP_MAX_CONCURRENCY, 'Kubeflow Pipelines')
    else:
      vertex_client.vertex_cron(args.cron)
      vertex_client.check_policy(policy)
  try:
    # Signed in before the compile (tens of seconds): a refused credential
    # or an unreachable host fails at once.
    client = _target_client(args, config.pipeline_root)
    return _compile_and_send(args, config, client, policy)
  except kfp_client.SignInRefused as error:
    return _refused(args, error)


def _compile_and_send(args, config, client, policy) -> int:
  """Compiles the package, then starts the run (following it with --wait)
  or creates the schedule with `policy`."""
  options, config = package.kubeflow_options(args, config)
  parameters = compiler.split_parameters(args.param)
  schedule_name = (getattr(args, 'schedule_name', None)
                   or f'{config.pipeline_name}-recurring')
  stamp = time.strftime('%Y%m%d-%H%M%S')
  with tempfile.TemporaryDirectory() as package_dir:
    # Vertex takes the PipelineJob (.json), the kfp client the PipelineSpec.
    package_path = os.path.join(
        package_dir, 'pipeline.json' if args.target == 'vertex' else 'pipeline.yaml')
    compiler.compile_pipeline(config, options, package_path)
    if args.target == 'vertex':
      if args.command == 'schedule':
        name = client.schedule(package_path, schedule_name, args.cron, parameters,
                               replace=args.replace, policy=policy)
        print(f'created Vertex AI schedule {name} ({args.cron})')
        return 0
      run_id = client.submit(package_path, f'{config.pipeline_name}-{stamp}',
                             parameters)
      print(f'started Vertex AI pipeline run {run_id}', flush=True)
    elif args.command == 'schedule':
      job_id = client.schedule(package_path, config.pipeline_name, stamp,
                               args.experiment, schedule_name, args.cron,
                               parameters, replace=args.replace, policy=policy)
      print(f'created recurring run {schedule_name!r} ({job_id}, {args.cron}) in '
            f'experiment {args.experiment!r}')
      return 0
    else:
      run_id = client.submit(package_path, args.experiment,
                             f'{config.pipeline_name}-{stamp}', parameters)
      print(f'started run {run_id} in experiment {args.experiment!r}', flush=True)
  return 0 if args.wait is None else _follow(args, client, run_id)
