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

from pipeline import kfp_local
import pipeline_config

EXIT_FAILED = 1
EXIT_INVALID_CONFIG = 2
EXIT_BUSY = 3  # Another run holds the pipeline root.

# The Trainer's node id and its output with the TensorBoard logs, as
# pipeline.TRAINER_ID and TFX's MODEL_RUN_KEY (tests check both): the
# tensorboard command reads MLMD without importing TFX (~30 s).
TRAINER_ID = 'Trainer'
MODEL_RUN_KEY = 'model_run'


def build_config(args: argparse.Namespace) -> pipeline_config.PipelineConfig:
  """The profile's config with the command line's overrides applied."""
  config = pipeline_config.load_profile(args.profile)
  overrides = {
      'pipeline_root': args.pipeline_root,
      'serving_dir': args.serving_dir,
      'metadata_path': args.metadata_path,
      'data.source': args.source,
      'data.source_dir': args.source_dir,
  }
  overrides = {name: value for name, value in overrides.items()
               if value is not None}
  overrides.update(pipeline_config.parse_assignments(
      args.set, '--set section.field=value'))
  if args.no_cache:
    overrides['enable_cache'] = False
  return pipeline_config.with_overrides(config, overrides)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--profile', default='full',
                      help='full (all of MNIST, default) or smoke (a few '
                      'hundred examples, a few steps)')
  parser.add_argument('--pipeline-root',
                      help='directory of the artifacts (and of the MLMD '
                      'SQLite file unless --metadata-path is given)')
  parser.add_argument('--serving-dir', help='where blessed models are pushed')
  parser.add_argument('--metadata-path', help='MLMD SQLite file')
  parser.add_argument('--source', help='vendored (offline IDX files) or tfds '
                      '(the stock TFDS download)')
  parser.add_argument('--source-dir', help='directory of the four MNIST '
                      '*-ubyte.gz files (vendored source)')
  parser.add_argument('--set', action='append', default=[],
                      metavar='SECTION.FIELD=VALUE',
                      help='override any config field, e.g. --set '
                      'noise.stddev=0.3 (repeatable)')
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
  sample_parser = commands.add_parser(
      'sample', help='write noisy test images of the latest run to a .npy file '
      '(input for saved_model_cli run), and their clean versions beside it')
  _add_config_arguments(sample_parser)
  sample_parser.add_argument('--count', type=int, default=1,
                             help='number of test images')
  sample_parser.add_argument('--output', default='build/noisy.npy',
                             help='.npy file of float32 [count, 28, 28, 1]')
  report_parser = commands.add_parser(
      'report', help="write the latest run's metrics, its comparison with the "
      'last blessed model and its pictures to one HTML page (opens offline)')
  _add_config_arguments(report_parser)
  report_parser.add_argument('--output', default='build/report.html',
                             help='the HTML file to write')
  tensorboard_parser = commands.add_parser(
      'tensorboard', help="open TensorBoard on the newest run's training logs "
      '(losses per epoch, a few denoised test digits per epoch under Images)')
  _add_config_arguments(tensorboard_parser)
  tensorboard_parser.add_argument('--port', type=int, default=6006)
  tensorboard_parser.add_argument('--host', default='localhost',
                                  help='interface to serve on (0.0.0.0: all)')
  tensorboard_parser.add_argument('--print-logdir', action='store_true',
                                  help='print the log directory and exit')
  compile_parser = commands.add_parser(
      'compile', help='compile the pipeline for an orchestrator (Kubeflow '
      'Pipelines v2); runs nothing')
  compile_parser.add_argument('--target', choices=['kubeflow'], default='kubeflow')
  compile_parser.add_argument('--output', default='build/pipeline.json',
                              help='.json (PipelineJob) or .yaml (PipelineSpec, '
                              'the package the kfp client uploads)')
  _add_config_arguments(compile_parser)
  _add_kubeflow_arguments(compile_parser)
  run_compiled = commands.add_parser(
      'run-compiled', help='run a compiled Kubeflow package here, task by task, '
      'the way open-source KFP v2 runs it (a pre-flight check before submitting)')
  run_compiled.add_argument('package', help='the .json or .yaml that compile wrote')
  run_compiled.add_argument('--pipeline-root', help="root of the run's artifacts "
                            '(a path or gs://...); default: the package\'s')
  _add_param_argument(run_compiled)
  run_compiled.add_argument('--work-dir', default='build/run-compiled',
                            help="where each task's log and executor output go")
  run_compiled.add_argument('--parallelism', type=int,
                            default=kfp_local.DEFAULT_PARALLELISM,
                            help='tasks run at once at most (each imports TensorFlow)')
  for name, help_text in (
      ('submit', 'compile, then start one run on Kubeflow Pipelines or Vertex AI'),
      ('schedule', 'compile, then create a recurring run on Kubeflow Pipelines '
       '(as a new pipeline version) or a schedule on Vertex AI')):
    remote = commands.add_parser(name, help=help_text)
    _add_config_arguments(remote)
    _add_kubeflow_arguments(remote)
    remote.add_argument('--target', choices=['kubeflow', 'vertex'], default='kubeflow',
                        help='open-source Kubeflow Pipelines (--host) or Vertex AI '
                        'Pipelines (--project, --region)')
    remote.add_argument('--host', help='KFP API endpoint, e.g. http://localhost:8080 '
                        '(--target kubeflow)')
    remote.add_argument('--experiment', default='mnist-dae',
                        help='KFP experiment (--target kubeflow)')
    remote.add_argument('--project', help='Google Cloud project (--target vertex)')
    remote.add_argument('--region', help='Vertex AI region, e.g. europe-west4')
    remote.add_argument('--service-account', help="the runs' service account "
                        '(--target vertex; default: the project\'s default)')
    _add_param_argument(remote)
    remote.add_argument('--timeout', type=float, default=60.0,
                        help='seconds to wait for each answer of the host')
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
  return parser


def _add_param_argument(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--param', action='append', default=[],
                      metavar='NAME=VALUE', help='pipeline parameter of the run, '
                      'e.g. noise_stddev=0.3 (repeatable)')


def _add_kubeflow_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--image', default='mnist-dae-pipeline:latest',
                      help='container image of every task (make image)')
  parser.add_argument('--gpus', type=int, default=1,
                      help="GPUs the Trainer's task requests (0: none)")
  parser.add_argument('--gpu-type', default='nvidia.com/gpu')
  parser.add_argument('--trainer-cpu', type=float, default=8.0)
  parser.add_argument('--trainer-memory-gib', type=float, default=32.0)
  parser.add_argument('--beam-arg', action='append', default=[],
                      metavar='ARG', help='Beam pipeline argument for every '
                      'Beam component, e.g. --beam-arg=--runner=DataflowRunner '
                      '(repeatable; replaces the local defaults)')


def _kubeflow(args: argparse.Namespace, config: pipeline_config.PipelineConfig):
  from pipeline import kubeflow_runner  # pylint: disable=g-import-not-at-top
  options = kubeflow_runner.KubeflowOptions(
      image=args.image, gpu_count=args.gpus, gpu_type=args.gpu_type,
      trainer_cpu=args.trainer_cpu, trainer_memory_gib=args.trainer_memory_gib)
  if args.beam_arg:
    config = dataclasses.replace(config, beam_pipeline_args=tuple(args.beam_arg))
  for warning in kubeflow_runner.local_path_warnings(config):
    print(f'dae-pipeline: warning: {warning}', file=sys.stderr)
  return kubeflow_runner, options, config


def _compile(args, config) -> int:
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)  # Before TFX's import: its warnings.
  kubeflow_runner, options, config = _kubeflow(args, config)
  kubeflow_runner.compile_pipeline(config, options, args.output)
  print(f'wrote the Kubeflow pipeline to {args.output}')
  return 0


def _remote(args, config) -> int:
  import os  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  from pipeline import kfp_client  # pylint: disable=g-import-not-at-top
  from pipeline import vertex_client  # pylint: disable=g-import-not-at-top
  kubeflow_runner, options, config = _kubeflow(args, config)
  parameters = kubeflow_runner.split_parameters(args.param)
  schedule_name = (getattr(args, 'schedule_name', None)
                   or f'{config.pipeline_name}-recurring')
  if args.target == 'kubeflow':
    if not args.host:
      raise pipeline_config.ConfigError('host', '--target kubeflow needs --host')
    if args.command == 'schedule':
      kfp_client.kfp_cron(args.cron)  # A bad cron fails before any work.
  else:
    if args.command == 'schedule':
      vertex_client.vertex_cron(args.cron)
    client = vertex_client.VertexClient(
        args.project, args.region, config.pipeline_root,
        service_account=args.service_account, timeout_s=args.timeout)
  stamp = time.strftime('%Y%m%d-%H%M%S')
  with tempfile.TemporaryDirectory() as package_dir:
    # Vertex takes the PipelineJob (.json), the kfp client the PipelineSpec.
    package = os.path.join(
        package_dir, 'pipeline.json' if args.target == 'vertex' else 'pipeline.yaml')
    kubeflow_runner.compile_pipeline(config, options, package)
    if args.target == 'vertex':
      if args.command == 'submit':
        name = client.submit(package, f'{config.pipeline_name}-{stamp}', parameters)
        print(f'started Vertex AI pipeline run {name}')
      else:
        name = client.schedule(package, schedule_name, args.cron, parameters,
                               replace=args.replace)
        print(f'created Vertex AI schedule {name} ({args.cron})')
      return 0
    client = kfp_client.KubeflowClient(args.host, timeout_s=args.timeout)
    if args.command == 'submit':
      run_id = client.submit(package, args.experiment,
                             f'{config.pipeline_name}-{stamp}', parameters)
      print(f'started run {run_id} in experiment {args.experiment!r}')
    else:
      job_id = client.schedule(package, config.pipeline_name, stamp,
                               args.experiment, schedule_name, args.cron,
                               parameters, replace=args.replace)
      print(f'created recurring run {schedule_name!r} ({job_id}, {args.cron}) in '
            f'experiment {args.experiment!r}')
  return 0


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
      config.resolved_metadata_path, TRAINER_ID, MODEL_RUN_KEY)
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
  from pipeline import kubeflow_runner  # pylint: disable=g-import-not-at-top
  try:
    results = kfp_local.run_package(
        args.package, pipeline_root=args.pipeline_root,
        parameters=kubeflow_runner.split_parameters(args.param),
        work_dir=args.work_dir, parallelism=args.parallelism)
  except kfp_local.PackageRefused as error:
    print(f'dae-pipeline: run-compiled refused {args.package}: {error}', file=sys.stderr)
    return EXIT_INVALID_CONFIG
  except kfp_local.TaskFailed as error:
    print(kfp_local.format_results(error.results))
    print(f'dae-pipeline: run-compiled failed: {error}', file=sys.stderr)
    return EXIT_FAILED
  print(kfp_local.format_results(results))
  print(f'dae-pipeline: run-compiled finished {args.package}')
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  start = time.monotonic()
  args = make_parser().parse_args(argv)
  if args.command == 'run-compiled':
    return _run_compiled(args)
  try:
    config = build_config(args)
    if args.command == 'config':
      print(json.dumps(dataclasses.asdict(config), indent=2))
      return 0
    if args.command == 'sample':
      _write_samples(config, args.count, args.output)
      return 0
    if args.command == 'report':
      from pipeline import report_page  # pylint: disable=g-import-not-at-top
      source = report_page.write_page(config.resolved_metadata_path, args.output)
      print(f'wrote the report of run {source.run_id} to {args.output}')
      return 0
    if args.command == 'compile':
      return _compile(args, config)
    if args.command == 'tensorboard':
      return _tensorboard(args, config)
    if args.command in ('submit', 'schedule'):
      return _remote(args, config)
    from pipeline import console  # pylint: disable=g-import-not-at-top
    console.configure(console.QUIET if args.quiet else
                      console.VERBOSE if args.verbose else console.NORMAL)
    from pipeline import local_runner  # pylint: disable=g-import-not-at-top
    from pipeline import run_lock  # pylint: disable=g-import-not-at-top
    from pipeline import run_summary  # pylint: disable=g-import-not-at-top
    try:
      records = local_runner.run(config, wait_s=args.wait)
    except run_lock.PipelineRootBusy as error:
      print(f'dae-pipeline: {error}', file=sys.stderr)
      return EXIT_BUSY
  except pipeline_config.ConfigError as error:
    print(f'dae-pipeline: invalid configuration: {error}', file=sys.stderr)
    return EXIT_INVALID_CONFIG
  except Exception as error:  # pylint: disable=broad-except
    # TFX has logged the traceback; end with the reason, readable at a glance.
    print(f'dae-pipeline: {args.command} failed: {type(error).__name__}: {error}',
          file=sys.stderr)
    return EXIT_FAILED
  config = local_runner.absolute_paths(config)
  print(run_summary.format_run(records, time.monotonic() - start))
  print(f'dae-pipeline: run finished; artifacts under {config.pipeline_root}, '
        f'MLMD in {config.resolved_metadata_path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
