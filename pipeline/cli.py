"""`dae-pipeline`: the command line of the MNIST denoising-autoencoder pipeline.

TFX is imported only by commands that run a pipeline, so `--help` and
`config` answer at once.
"""

import argparse
import dataclasses
import json
import math
import sys
import time
from typing import List, Optional

from components.common import names
from pipeline.kubeflow import run_compiled
import pipeline_config

EXIT_FAILED = 1
EXIT_INVALID_CONFIG = 2
EXIT_BUSY = 3  # Another run holds the pipeline root.

# Commands that read what a run left: without --profile or --pipeline-root
# they read the newest run of any profile.
FOLLOW_UP_COMMANDS = ('report', 'sample', 'tensorboard', 'denoise', 'models',
                      'rollback')
# Follow-up commands that read the serving dir, not a run's artifacts.
SERVING_DIR_COMMANDS = ('denoise', 'models', 'rollback')


class NoRunFound(FileNotFoundError):
  """No profile's pipeline root holds a run for a follow-up command."""


def _has_what_it_reads(command: str, config: pipeline_config.PipelineConfig) -> bool:
  """Whether a profile's default paths hold what `command` reads."""
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  if command in SERVING_DIR_COMMANDS:
    from components.common import serving_dir  # pylint: disable=g-import-not-at-top
    return serving_dir.newest_complete_version(config.serving_dir) is not None
  node_id, key = {'report': ('VisualReport', 'report'),
                  'tensorboard': (names.TRAINER_NODE, names.MODEL_RUN_KEY),
                  'sample': ('NoiseTransform', 'noisy_examples')}[command]
  try:
    run_summary.latest_output(config.resolved_metadata_path, node_id, key)
  except FileNotFoundError:
    return False
  return True


def newest_run_profile(command: str) -> str:
  """The profile whose newest pipeline run began last among those whose
  default paths hold what `command` reads (a report, training logs, a served
  model...); when none holds it, the newest run's, whose command then says
  what is missing.

  Raises:
    NoRunFound: no profile's store holds a run; the message says what to run.
  """
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  started = {}
  for profile in pipeline_config.PROFILES:
    path = pipeline_config.load_profile(profile).resolved_metadata_path
    newest = run_summary.newest_run_start(path)
    if newest is not None:
      started[profile] = newest
  if not started:
    looked = ', '.join(pipeline_config.load_profile(profile).pipeline_root
                       for profile in pipeline_config.PROFILES)
    raise NoRunFound(f'no pipeline run found (looked in {looked}); run one '
                     'first: make run PROFILE=smoke (about a minute), or name '
                     'the run\'s --pipeline-root')
  newest_first = sorted(started, key=started.get, reverse=True)
  return next((profile for profile in newest_first if _has_what_it_reads(
      command, pipeline_config.load_profile(profile))), newest_first[0])


def build_config(args: argparse.Namespace) -> pipeline_config.PipelineConfig:
  """The profile's config with the command line's overrides applied.

  A follow-up command (FOLLOW_UP_COMMANDS) given neither --profile nor a
  path of a run (nor denoise's --model) takes the profile of the newest run.
  """
  profile = args.profile
  if profile is None:
    located = any(getattr(args, name, None) for name in (
        'pipeline_root', 'metadata_path', 'serving_dir', 'model'))
    profile = ('full' if located or args.command not in FOLLOW_UP_COMMANDS
               else newest_run_profile(args.command))
  config = pipeline_config.load_profile(profile)
  overrides = {
      'pipeline_root': getattr(args, 'pipeline_root', None),
      'serving_dir': getattr(args, 'serving_dir', None),
      'metadata_path': getattr(args, 'metadata_path', None),
      'data.source': getattr(args, 'source', None),
      'data.source_dir': getattr(args, 'source_dir', None),
  }
  overrides = {name: value for name, value in overrides.items()
               if value is not None}
  overrides.update(pipeline_config.parse_assignments(
      getattr(args, 'set', []), '--set section.field=value'))
  if getattr(args, 'no_cache', False):
    overrides['enable_cache'] = False
  return pipeline_config.with_overrides(config, overrides)


def _add_location_arguments(parser: argparse.ArgumentParser,
                            serving_dir: bool = True,
                            follow_up: bool = False,
                            pipeline_root: bool = True) -> None:
  """--profile and the paths of a run: what a command needs to find one."""
  if follow_up:
    profile_help = ('the profile whose run to read: full or smoke (default: '
                    'the profile of the newest run)')
  else:
    profile_help = ('full (all of MNIST, default) or smoke (a few hundred '
                    'examples, a few steps: a few minutes on 2 cores)')
  parser.add_argument('--profile', default=None,
                      help=profile_help)
  if pipeline_root:
    parser.add_argument('--pipeline-root',
                        help='directory of the artifacts (and of the MLMD '
                        'SQLite file unless --metadata-path is given); default: '
                        "the profile's")
  if serving_dir:
    parser.add_argument('--serving-dir', help='where blessed models are pushed, '
                        "one version directory each; default: the profile's")
  if pipeline_root:
    parser.add_argument('--metadata-path', help='MLMD SQLite file (default: '
                        'metadata.sqlite in the pipeline root)')


def _add_set_argument(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--set', action='append', default=[],
                      metavar='SECTION.FIELD=VALUE',
                      help='override any config field, e.g. --set '
                      'noise.stddev=0.3 (repeatable; `dae-pipeline config` '
                      'lists them)')


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
  """The location arguments and every setting of a run."""
  _add_location_arguments(parser)
  parser.add_argument('--source', help='vendored (offline IDX files) or tfds '
                      '(the stock TFDS download)')
  parser.add_argument('--source-dir', help="directory of the four *-ubyte.gz "
                      "IDX files of the vendored source (data.source_dir; "
                      "default: the dataset's data/<dataset>)")
  _add_set_argument(parser)
  parser.add_argument('--no-cache', action='store_true',
                      help='re-run every component even when cached')


def make_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='dae-pipeline',
      description='TFX pipeline of a denoising autoencoder for MNIST.')
  commands = parser.add_subparsers(dest='command', required=True)
  run_parser = commands.add_parser(
      'run', help='run the pipeline locally (LocalDagRunner, SQLite MLMD)')
  _add_config_arguments(run_parser)
  run_parser.add_argument(
      '--wait', nargs='?', type=float, const=math.inf, default=None,
      metavar='SECONDS',
      help='when another run holds the pipeline root, wait for it (for at '
      'most SECONDS, or as long as it takes) instead of exiting at once '
      f'with status {EXIT_BUSY}')
  loudness = run_parser.add_mutually_exclusive_group()
  loudness.add_argument('--verbose', action='store_true',
                        help="every INFO line of TFX, Beam and TensorFlow (default: "
                        "the executors' one-line INFO messages, warnings, progress)")
  loudness.add_argument('--quiet', action='store_true',
                        help='warnings, errors and the closing table only; no progress')
  config_parser = commands.add_parser(
      'config', help='print the resolved configuration as JSON, run nothing')
  _add_config_arguments(config_parser)
  schema_parser = commands.add_parser(
      'schema', help="infer the schema from the configured dataset's train "
      'split (TFX SchemaGen) and write it to a file for curation; runs '
      'import it from there')
  _add_location_arguments(schema_parser, serving_dir=False, pipeline_root=False)
  _add_set_argument(schema_parser)
  schema_parser.add_argument('--output', help='the .pbtxt to write (default: '
                             "the dataset's curated schema, schemas/<dataset>"
                             '.pbtxt, which the next run imports)')
  schema_parser.add_argument('--force', action='store_true',
                             help='overwrite the output file if it exists')
  sample_parser = commands.add_parser(
      'sample', help='write noisy test images of the latest run to a .npy file '
      '(input for saved_model_cli run), and their clean versions beside it')
  _add_location_arguments(sample_parser, serving_dir=False, follow_up=True)
  sample_parser.add_argument('--count', type=int, default=1,
                             help='number of test images (default: 1)')
  sample_parser.add_argument('--output', default='build/noisy.npy',
                             help='.npy file of float32 [count, height, width, '
                             'channels] (default: build/noisy.npy; the clean '
                             'images go to build/noisy.clean.npy)')
  report_parser = commands.add_parser(
      'report', help="write the latest run's metrics, its comparison with the "
      'last blessed model and its pictures to one HTML page (opens offline)')
  _add_location_arguments(report_parser, serving_dir=False, follow_up=True)
  report_parser.add_argument('--output', help='the HTML file to write (default: '
                             'report.html beside the pipeline root: '
                             'build/report.html for the full profile, '
                             'build/smoke/report.html for smoke)')
  tensorboard_parser = commands.add_parser(
      'tensorboard', help="open TensorBoard on the newest run's training logs "
      '(losses per epoch, a few denoised held-out images per epoch under Images)')
  _add_location_arguments(tensorboard_parser, serving_dir=False, follow_up=True)
  tensorboard_parser.add_argument('--port', type=int, default=6006,
                                  help='port to serve on (default: 6006)')
  tensorboard_parser.add_argument('--host', default='localhost',
                                  help='interface to serve on (default: '
                                  'localhost; 0.0.0.0: all)')
  tensorboard_parser.add_argument('--print-logdir', action='store_true',
                                  help='print the log directory and exit')
  _add_denoise_parser(commands)
  _add_version_parsers(commands)
  compile_parser = commands.add_parser(
      'compile', help='compile the pipeline for an orchestrator (Kubeflow '
      'Pipelines v2); runs nothing')
  compile_parser.add_argument('--target', choices=['kubeflow'], default='kubeflow',
                              help='the orchestrator: kubeflow (Kubeflow Pipelines v2 '
                              'and Vertex AI Pipelines take the same package)')
  compile_parser.add_argument('--output', default='build/pipeline.json',
                              help='.json (PipelineJob) or .yaml (PipelineSpec, '
                              'the package the kfp client uploads)')
  _add_config_arguments(compile_parser)
  _add_kubeflow_arguments(compile_parser)
  run_compiled_parser = commands.add_parser(
      'run-compiled', help='run a compiled Kubeflow package here, task by task, '
      'the way open-source KFP v2 runs it (a pre-flight check before submitting)')
  run_compiled_parser.add_argument('package', help='the .json or .yaml that compile wrote')
  run_compiled_parser.add_argument('--pipeline-root', help="root of the run's artifacts "
                            '(a path or gs://...); default: the package\'s')
  _add_param_argument(run_compiled_parser)
  run_compiled_parser.add_argument('--work-dir', default='build/run-compiled',
                            help="where each task's log and executor output go")
  run_compiled_parser.add_argument('--parallelism', type=int,
                            default=run_compiled.DEFAULT_PARALLELISM,
                            help='tasks run at once at most (each imports TensorFlow)')
  for name, help_text in (
      ('submit', 'compile, then start one run on Kubeflow Pipelines or Vertex AI'),
      ('schedule', 'compile, then create a recurring run on Kubeflow Pipelines '
       '(as a new pipeline version) or a schedule on Vertex AI')):
    remote = commands.add_parser(name, help=help_text)
    _add_config_arguments(remote)
    _add_kubeflow_arguments(remote)
    _add_target_arguments(remote)
    remote.add_argument('--experiment', default='mnist-dae',
                        help='KFP experiment (--target kubeflow)')
    remote.add_argument('--service-account', help="the runs' service account "
                        '(--target vertex; default: the project\'s default)')
    _add_param_argument(remote)
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
  _add_status_parser(commands)
  return parser


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
  from pipeline.kubeflow import follow  # pylint: disable=g-import-not-at-top
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


def _add_status_parser(commands) -> None:
  status = commands.add_parser(
      'status', help="show a remote run's state and its tasks' (--wait: follow "
      'it to its end)')
  status.add_argument('run', metavar='RUN', help='the run id (Kubeflow) or '
                      'PipelineJob resource name (Vertex AI) that submit printed')
  _add_target_arguments(status)
  _add_follow_arguments(status)


def _add_denoise_parser(commands) -> None:
  denoise_parser = commands.add_parser(
      'denoise', help='denoise PNG/JPEG/.npy images with the newest served '
      'model (or --model DIR) into PNGs')
  _add_location_arguments(denoise_parser, follow_up=True, pipeline_root=False)
  denoise_parser.add_argument(
      'images', nargs='+', metavar='IMAGE',
      help='PNG, JPEG or .npy ([H, W], [H, W, C] or [N, H, W, C]; floats in '
      '[0, 1] or uint8) of the size the model takes')
  denoise_parser.add_argument('--output', required=True, metavar='DIR',
                              help='directory (or bucket) of the denoised '
                              '<stem>.png (<stem>-<i>.png for an .npy stack)')
  denoise_parser.add_argument('--model', metavar='DIR',
                              help='a SavedModel directory (default: the newest '
                              'complete version in the serving dir)')
  denoise_parser.add_argument('--reference', nargs='+', metavar='CLEAN',
                              help='clean images, one per IMAGE in its order: '
                              'print PSNR and SSIM of input and output')


def _denoise(args, config) -> int:
  from pipeline import denoise  # pylint: disable=g-import-not-at-top
  try:
    denoise.denoise_command(args.images, args.output, args.model,
                            config.serving_dir, args.reference)
  except denoise.DenoiseError as error:
    print(f'dae-pipeline: denoise: {error}', file=sys.stderr)
    return EXIT_INVALID_CONFIG
  return 0


def _add_version_parsers(commands) -> None:
  models_parser = commands.add_parser(
      'models', help='list the versions of the serving dir, newest first: '
      'push time, PSNR/SSIM, worst class, the version each beat, its run; '
      'the one served now marked')
  _add_location_arguments(models_parser, follow_up=True, pipeline_root=False)
  rollback_parser = commands.add_parser(
      'rollback', help='serve an earlier version again, as a copy published '
      'as the new highest version (with a record saying what it rolls back to)')
  _add_location_arguments(rollback_parser, follow_up=True, pipeline_root=False)
  rollback_parser.add_argument(
      'version', nargs='?', metavar='VERSION',
      help='the version to serve again (default: the one before the served '
      'one; after a rollback to N, the one before N)')


def _models(config) -> int:
  from pipeline import versions  # pylint: disable=g-import-not-at-top
  print(versions.format_versions(
      config.serving_dir, versions.list_versions(config.serving_dir)))
  return 0


def _rollback(args, config) -> int:
  from components.common import serving_lock  # pylint: disable=g-import-not-at-top
  from pipeline import versions  # pylint: disable=g-import-not-at-top
  try:
    new_version, target = versions.rollback(config.serving_dir, args.version)
  except versions.RollbackRefused as error:
    print(f'dae-pipeline: rollback refused in {config.serving_dir}: {error}',
          file=sys.stderr)
    return EXIT_INVALID_CONFIG
  except serving_lock.ServingDirBusy as error:  # A push in progress.
    print(f'dae-pipeline: rollback: {error}', file=sys.stderr)
    return EXIT_BUSY
  print(f'rolled back {config.serving_dir} to version {target}: served now '
        f'as version {new_version}')
  return 0


def _add_param_argument(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--param', action='append', default=[],
                      metavar='NAME=VALUE', help='pipeline parameter of the run, '
                      'e.g. noise_stddev=0.3 (repeatable)')


def _add_kubeflow_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--image', default='mnist-dae-pipeline:latest',
                      help='container image of every task (make image)')
  parser.add_argument('--gpus', type=int, default=1,
                      help="GPUs the Trainer's task requests (0: none)")
  parser.add_argument('--gpu-type', default='nvidia.com/gpu',
                      help="the Kubernetes resource name of the Trainer's GPUs "
                      '(default: nvidia.com/gpu)')
  parser.add_argument('--trainer-cpu', type=float, default=8.0,
                      help="CPUs the Trainer's task requests (default: 8)")
  parser.add_argument('--trainer-memory-gib', type=float, default=32.0,
                      help="memory the Trainer's task requests, in GiB "
                      '(default: 32)')
  parser.add_argument('--beam-arg', action='append', default=[],
                      metavar='ARG', help='Beam pipeline argument for every '
                      'Beam component, e.g. --beam-arg=--runner=DataflowRunner '
                      '(repeatable; replaces the local defaults)')


def _kubeflow(args: argparse.Namespace, config: pipeline_config.PipelineConfig):
  from pipeline.kubeflow import compiler  # pylint: disable=g-import-not-at-top
  options = compiler.KubeflowOptions(
      image=args.image, gpu_count=args.gpus, gpu_type=args.gpu_type,
      trainer_cpu=args.trainer_cpu, trainer_memory_gib=args.trainer_memory_gib)
  if args.beam_arg:
    config = dataclasses.replace(config, beam_pipeline_args=tuple(args.beam_arg))
  for warning in compiler.local_path_warnings(config):
    print(f'dae-pipeline: warning: {warning}', file=sys.stderr)
  return compiler, options, config


def _compile(args, config) -> int:
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)  # Before TFX's import: its warnings.
  compiler, options, config = _kubeflow(args, config)
  compiler.compile_pipeline(config, options, args.output)
  print(f'wrote the Kubeflow pipeline to {args.output}')
  return 0


def _sign_in(args):
  from pipeline.kubeflow import kfp_client  # pylint: disable=g-import-not-at-top
  return kfp_client.SignIn(namespace=args.namespace, token_file=args.token_file,
                           cookies_file=args.cookies_file, ca_cert=args.ca_cert)


def _target_client(args, pipeline_root: Optional[str] = None):
  """The KubeflowClient (signed in, before any work) or VertexClient."""
  from pipeline.kubeflow import kfp_client  # pylint: disable=g-import-not-at-top
  from pipeline.kubeflow import vertex_client  # pylint: disable=g-import-not-at-top
  if args.target == 'vertex':
    return vertex_client.VertexClient(
        args.project, args.region, pipeline_root,
        service_account=getattr(args, 'service_account', None),
        timeout_s=args.timeout)
  if not args.host:
    raise pipeline_config.ConfigError('host', '--target kubeflow needs --host')
  return kfp_client.KubeflowClient(args.host, timeout_s=args.timeout,
                                   sign_in=_sign_in(args))


def _status_command(args, run_id: str) -> str:
  """The `dae-pipeline status` command that follows this run again (file
  names of credentials, never their contents)."""
  import shlex  # pylint: disable=g-import-not-at-top
  words = [_program(), 'status', run_id]
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
  from pipeline.kubeflow import follow  # pylint: disable=g-import-not-at-top
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
  return EXIT_FAILED


def _status(args) -> int:
  from pipeline.kubeflow import kfp_client  # pylint: disable=g-import-not-at-top
  try:
    return _follow(args, _target_client(args), args.run)
  except kfp_client.SignInRefused as error:
    return _refused(args, error)


def _remote(args, config) -> int:
  from pipeline.kubeflow import kfp_client  # pylint: disable=g-import-not-at-top
  from pipeline.kubeflow import vertex_client  # pylint: disable=g-import-not-at-top
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
  import os  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  compiler, options, config = _kubeflow(args, config)
  parameters = compiler.split_parameters(args.param)
  schedule_name = (getattr(args, 'schedule_name', None)
                   or f'{config.pipeline_name}-recurring')
  stamp = time.strftime('%Y%m%d-%H%M%S')
  with tempfile.TemporaryDirectory() as package_dir:
    # Vertex takes the PipelineJob (.json), the kfp client the PipelineSpec.
    package = os.path.join(
        package_dir, 'pipeline.json' if args.target == 'vertex' else 'pipeline.yaml')
    compiler.compile_pipeline(config, options, package)
    if args.target == 'vertex':
      if args.command == 'schedule':
        name = client.schedule(package, schedule_name, args.cron, parameters,
                               replace=args.replace, policy=policy)
        print(f'created Vertex AI schedule {name} ({args.cron})')
        return 0
      run_id = client.submit(package, f'{config.pipeline_name}-{stamp}', parameters)
      print(f'started Vertex AI pipeline run {run_id}', flush=True)
    elif args.command == 'schedule':
      job_id = client.schedule(package, config.pipeline_name, stamp,
                               args.experiment, schedule_name, args.cron,
                               parameters, replace=args.replace, policy=policy)
      print(f'created recurring run {schedule_name!r} ({job_id}, {args.cron}) in '
            f'experiment {args.experiment!r}')
      return 0
    else:
      run_id = client.submit(package, args.experiment,
                             f'{config.pipeline_name}-{stamp}', parameters)
      print(f'started run {run_id} in experiment {args.experiment!r}', flush=True)
  return 0 if args.wait is None else _follow(args, client, run_id)


def _write_samples(config: pipeline_config.PipelineConfig, count: int,
                   output: str) -> None:
  import os  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)  # Before TensorFlow's import: its noise.
  from pipeline import samples  # pylint: disable=g-import-not-at-top
  noisy, clean = samples.read_test_images(config.resolved_metadata_path, count)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  np.save(output, noisy)
  clean_output = output[:-len('.npy')] + '.clean.npy' if output.endswith(
      '.npy') else output + '.clean.npy'
  np.save(clean_output, clean)
  print(f'wrote {len(noisy)} noisy test image(s) to {output}, clean ones to '
        f'{clean_output}')


def _tensorboard(args, config) -> int:
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  run_id, log_dir = run_summary.latest_output(
      config.resolved_metadata_path, names.TRAINER_NODE, names.MODEL_RUN_KEY)
  if args.print_logdir:
    print(log_dir)
    return 0
  print(f'TensorBoard on the Trainer logs of run {run_id}: {log_dir}', flush=True)
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)  # Before TensorBoard imports TensorFlow.
  from tensorboard import default  # pylint: disable=g-import-not-at-top
  from tensorboard import program  # pylint: disable=g-import-not-at-top
  # What `python -m tensorboard.main` runs, here, after the console's filters.
  server = program.TensorBoard(plugins=default.get_plugins())
  server.configure(argv=[None, '--logdir', log_dir, '--port', str(args.port),
                         '--host', args.host])
  try:
    return EXIT_FAILED if server.main() else 0  # Serves until stopped.
  except KeyboardInterrupt:  # Ctrl-C: the way to stop it.
    return 0


def _run_compiled(args) -> int:
  from pipeline.kubeflow import compiler  # pylint: disable=g-import-not-at-top
  try:
    results = run_compiled.run_package(
        args.package, pipeline_root=args.pipeline_root,
        parameters=compiler.split_parameters(args.param),
        work_dir=args.work_dir, parallelism=args.parallelism)
  except run_compiled.PackageRefused as error:
    print(f'dae-pipeline: run-compiled refused {args.package}: {error}', file=sys.stderr)
    return EXIT_INVALID_CONFIG
  except run_compiled.TaskFailed as error:
    print(run_compiled.format_results(error.results))
    print(f'dae-pipeline: run-compiled failed: {error}', file=sys.stderr)
    return EXIT_FAILED
  print(run_compiled.format_results(results))
  print(f'dae-pipeline: run-compiled finished {args.package}')
  return 0


def _shown(path: str) -> str:
  """A local path as a user may type it: relative when under the working
  directory, else as it is."""
  import os  # pylint: disable=g-import-not-at-top
  relative = os.path.relpath(path)
  return path if relative.startswith('..') else relative


def _program() -> str:
  """How the user called this command (`.venv/bin/dae-pipeline`, or the name
  alone when it came from PATH), for the next commands a run suggests."""
  import os  # pylint: disable=g-import-not-at-top
  invoked = sys.argv[0] if sys.argv and sys.argv[0] else 'dae-pipeline'
  if os.path.basename(invoked) != 'dae-pipeline' or os.sep not in invoked:
    return 'dae-pipeline'
  return _shown(invoked)


def schema_notice(config: pipeline_config.PipelineConfig) -> Optional[str]:
  """The one line a run prints when it infers its schema (none curated);
  None when it imports a curated one."""
  if pipeline_config.curated_schema_path(config) is not None:
    return None
  location = pipeline_config.schema_location(config)
  if location is None:
    return (f'schema: none curated for the image folder {config.data.image_dir} '
            '(only schema_path names one); inferring it from the train split - '
            f'{_program()} schema --output PATH writes it for curation, '
            '--set schema_path=PATH imports it')
  return (f'schema: none curated for {config.data.dataset} ({_shown(location)}); '
          f'inferring it from the train split - {_program()} schema --set '
          f'data.dataset={config.data.dataset} writes it there for curation')


def _schema_output(args, config: pipeline_config.PipelineConfig) -> str:
  """The file `schema` writes: --output, else the dataset's curated schema.

  Raises:
    pipeline_config.ConfigError: none given for an image folder, or a bucket.
  """
  output = args.output or pipeline_config.schema_location(config)
  if output is None:
    raise pipeline_config.ConfigError(
        '--output', 'an image folder has no curated schema file: name one '
        '(then run with --set schema_path=PATH)')
  if '://' in output:
    raise pipeline_config.ConfigError(
        '--output', f'{output!r}: the schema is written to a local file for '
        'curation')
  return output


def _schema(args, config) -> int:
  """Writes the schema inferred from the train split to a file for curation."""
  import os  # pylint: disable=g-import-not-at-top
  output = _schema_output(args, config)
  if os.path.exists(output) and not args.force:
    print(f'dae-pipeline: schema: {_shown(output)} exists; --force overwrites it',
          file=sys.stderr)
    return EXIT_INVALID_CONFIG
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  # Before the console's imports: a bad path fails at once.
  pipeline_config.check_paths(local_runner.absolute_paths(config))
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)
  from pipeline import run_lock  # pylint: disable=g-import-not-at-top
  try:
    with local_runner.stopped_by_signals():
      text = local_runner.inferred_schema_text(config)
  except (run_lock.PipelineRootBusy, local_runner.RunInterrupted) as error:
    return _stopped(error, config)
  location = pipeline_config.schema_location(config)
  source = (config.data.dataset if location else
            f'the image folder {config.data.image_dir}')
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as schema_file:
    schema_file.write(f'# Inferred by TFX SchemaGen from the train split of '
                      f'{source}: curate it (value domains, presence),\n'
                      '# then runs import it by content.\n' + text)
  imported = ('the next run imports it' if location and os.path.abspath(output)
              == os.path.abspath(location) else
              f'runs import it with --set schema_path={_shown(output)}')
  print(f'wrote the schema inferred from the train split of {source} to '
        f'{_shown(output)}; {imported}')
  return 0


def _follow_up_command(command: str, config: pipeline_config.PipelineConfig) -> str:
  """`dae-pipeline <command>` with the flags it needs to find this run: none
  when it ran on its profile's default root (then it is that profile's newest
  run). `config` has absolute paths."""
  import os  # pylint: disable=g-import-not-at-top
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  words = [_program(), command]
  default = local_runner.absolute_paths(pipeline_config.load_profile(config.profile))
  if config.pipeline_root != default.pipeline_root:
    words += ['--pipeline-root', config.pipeline_root]
  if config.resolved_metadata_path != os.path.join(config.pipeline_root,
                                                   'metadata.sqlite'):
    words += ['--metadata-path', config.resolved_metadata_path]
  return ' '.join(words)


def default_report_path(config: pipeline_config.PipelineConfig) -> str:
  """report.html beside a local pipeline root (one per profile), or in
  build/ for a root on a bucket."""
  import os  # pylint: disable=g-import-not-at-top
  if '://' in config.pipeline_root:
    return os.path.join('build', f'{config.pipeline_name}-report.html')
  return os.path.join(os.path.dirname(config.pipeline_root.rstrip('/')) or '.',
                      'report.html')


def _report(args, config) -> int:
  from pipeline import report_page  # pylint: disable=g-import-not-at-top
  from pipeline import run_outcome  # pylint: disable=g-import-not-at-top
  output = args.output or default_report_path(config)
  if '://' in output:
    raise pipeline_config.ConfigError(
        '--output', f'{output!r}: the page is written to a local file; copy it '
        'to a bucket with gsutil or gcloud storage cp')
  outcome = run_outcome.latest(config.resolved_metadata_path)
  profile = profile_of(outcome.pipeline_name) or config.profile
  report_page.write_page(outcome, profile, output, config.serving_dir)
  print(f'wrote the report of run {outcome.run_id} ({profile} profile) '
        f'to {output}')
  return 0


def profile_of(pipeline_name: str) -> Optional[str]:
  """The profile whose pipeline has this name (None: no profile's)."""
  return next((profile for profile in pipeline_config.PROFILES
               if pipeline_config.load_profile(profile).pipeline_name
               == pipeline_name), None)


def _stopped(error: BaseException,
             config: pipeline_config.PipelineConfig) -> int:
  """Says why a local run did not run to its end, in one line; its exit
  status. `error`: run_lock.PipelineRootBusy or local_runner.RunInterrupted."""
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  if not isinstance(error, local_runner.RunInterrupted):
    print(f'dae-pipeline: {error}', file=sys.stderr)
    return EXIT_BUSY
  error.acknowledge()
  resume = ('the components that finished come from the cache'
            if config.enable_cache else 'caching is off, so it starts over')
  print(f'dae-pipeline: run interrupted ({error.signal_name}); run the '
        f'same command again to resume: {resume}', file=sys.stderr)
  return 128 + error.signal_number


def _run(args, config, start: float) -> int:
  """Runs the pipeline locally; prints its table and verdict."""
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  # Before the console's imports (Beam's take seconds): a bad path fails at once.
  pipeline_config.check_paths(local_runner.absolute_paths(config))
  notice = schema_notice(config)
  if notice:
    print(notice, flush=True)
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.QUIET if args.quiet else
                    console.VERBOSE if args.verbose else console.NORMAL)
  from pipeline import run_lock  # pylint: disable=g-import-not-at-top
  from pipeline import run_outcome  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  try:
    with local_runner.stopped_by_signals():
      records = local_runner.run(config, wait_s=args.wait)
  except (run_lock.PipelineRootBusy, local_runner.RunInterrupted) as error:
    return _stopped(error, config)
  config = local_runner.absolute_paths(config)
  print(run_summary.format_run(records, time.monotonic() - start))
  print(f'artifacts: {config.pipeline_root}; MLMD: {config.resolved_metadata_path}')
  try:
    outcome = run_outcome.from_records(records)
  except FileNotFoundError as error:  # A cached report's files were deleted.
    print(f'verdict: unavailable ({error})')
    return 0
  if outcome is None:
    print('verdict: none (the run stopped before its evaluation)')
    return 0
  print('\n'.join(run_outcome.verdict_lines(
      outcome, _follow_up_command('report', config))))
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  start = time.monotonic()
  args = make_parser().parse_args(argv)
  if args.command == 'run-compiled':
    return _run_compiled(args)
  try:
    if args.command == 'status':  # Reads no configuration.
      return _status(args)
    if args.command in SERVING_DIR_COMMANDS:
      # Finding the newest served model imports TensorFlow (through the
      # serving dir's file I/O): its import-time noise is filtered first.
      from pipeline import console  # pylint: disable=g-import-not-at-top
      console.configure(console.NORMAL)
    config = build_config(args)
    if args.command == 'config':
      print(json.dumps(dataclasses.asdict(config), indent=2))
      return 0
    if args.command == 'schema':
      return _schema(args, config)
    if args.command == 'sample':
      _write_samples(config, args.count, args.output)
      return 0
    if args.command == 'report':
      return _report(args, config)
    if args.command == 'compile':
      return _compile(args, config)
    if args.command == 'denoise':
      return _denoise(args, config)
    if args.command == 'tensorboard':
      return _tensorboard(args, config)
    if args.command == 'models':
      return _models(config)
    if args.command == 'rollback':
      return _rollback(args, config)
    if args.command in ('submit', 'schedule'):
      return _remote(args, config)
    return _run(args, config, start)
  except pipeline_config.ConfigError as error:
    print(f'dae-pipeline: invalid configuration: {error}', file=sys.stderr)
    return EXIT_INVALID_CONFIG
  except FileNotFoundError as error:
    # Nothing to read yet (no run, no store): the message says what to run.
    print(f'dae-pipeline: {args.command}: {error}', file=sys.stderr)
    return EXIT_FAILED
  except Exception as error:  # pylint: disable=broad-except
    # TFX has logged the traceback; end with the reason, readable at a glance.
    print(f'dae-pipeline: {args.command} failed: {type(error).__name__}: {error}',
          file=sys.stderr)
    return EXIT_FAILED


if __name__ == '__main__':
  sys.exit(main())
