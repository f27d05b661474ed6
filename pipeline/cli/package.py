"""`compile` and `run-compiled`: the Kubeflow package, written and run here
task by task; and the arguments that shape it, which `submit` and `schedule`
take too."""

import argparse
import dataclasses
import re
import sys
from typing import Tuple

from pipeline.cli import common
from pipeline.kubeflow import compiler
from pipeline.kubeflow import run_compiled
import pipeline_config


def add_parsers(commands) -> None:
  """Adds `compile` and `run-compiled` to the subcommands."""
  compile_parser = commands.add_parser(
      'compile', help='compile the pipeline for Kubeflow Pipelines v2',
      description='Compile the pipeline for an orchestrator (Kubeflow '
      'Pipelines v2); runs nothing.')
  compile_parser.add_argument('--target', choices=['kubeflow'], default='kubeflow',
                              help='the orchestrator: kubeflow (Kubeflow Pipelines v2 '
                              'and Vertex AI Pipelines take the same package)')
  compile_parser.add_argument('--output', default='build/pipeline.json',
                              help='.json (PipelineJob) or .yaml (PipelineSpec, '
                              'the package the kfp client uploads; default: '
                              '%(default)s)')
  common.add_config_arguments(compile_parser)
  add_kubeflow_arguments(compile_parser)
  compile_parser.set_defaults(func=_compile)
  run_compiled_parser = commands.add_parser(
      'run-compiled', help='run a compiled Kubeflow package here, task by task',
      description='Run a compiled Kubeflow package here, task by task, the '
      'way open-source KFP v2 runs it (a pre-flight check before submitting): '
      "it pushes to a scratch serving dir, not the package's, unless told.")
  run_compiled_parser.add_argument('package',
                                   help='the .json or .yaml that compile wrote')
  run_compiled_parser.add_argument('--pipeline-root', help="root of the run's "
                                   'artifacts (a path or gs://...); default: '
                                   "the package's")
  add_param_argument(run_compiled_parser)
  run_compiled_parser.add_argument('--work-dir', default='build/run-compiled',
                                   help="where each run's folder goes: each "
                                   "task's log and executor output, the scratch "
                                   'serving dir (default: %(default)s)')
  run_compiled_parser.add_argument('--parallelism', type=int,
                                   default=run_compiled.DEFAULT_PARALLELISM,
                                   help='tasks run at once at most (each '
                                   'imports TensorFlow)')
  run_compiled_parser.add_argument('--run-id', type=_run_id, help="the run's name in its "
                                   'artifact paths and its folder under '
                                   '--work-dir (default: run-<time>-<random>)')
  where = run_compiled_parser.add_mutually_exclusive_group()
  where.add_argument('--serving-dir', metavar='DIR', help='the serving dir the '
                     'ServedModel reads and the Pusher pushes to, instead of '
                     "the package's (default: a scratch one, <work dir>/<run>/"
                     "serving, holding a copy of the package's served model)")
  where.add_argument('--push-for-real', action='store_true',
                     help="push to the package's own serving dir (a real push "
                     'that a model server may load)')
  # It reads the package, not a configuration, and reports its own failures
  # (a refused package, a failed task); anything else shows its traceback.
  run_compiled_parser.set_defaults(func=_run_compiled, reads_config=False,
                                   maps_errors=False)


def _run_id(text: str) -> str:
  """A --run-id: one folder's name (it names the run's folders)."""
  if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9._-]*', text):
    raise argparse.ArgumentTypeError(
        f'{text!r}: letters, digits, ".", "_" and "-" only, not starting with '
        'a dot or dash (it names the run\'s folders)')
  return text


def add_param_argument(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--param', action='append', default=[],
                      metavar='NAME=VALUE', help='pipeline parameter of the run, '
                      'e.g. noise_stddev=0.3 (repeatable)')


def add_kubeflow_arguments(parser: argparse.ArgumentParser) -> None:
  """The image and the Trainer's resources of every task, Beam's arguments."""
  parser.add_argument('--image', default='mnist-dae-pipeline:latest',
                      help='container image of every task (make image; '
                      'default: %(default)s)')
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


def kubeflow_options(
    args: argparse.Namespace, config: pipeline_config.PipelineConfig
) -> Tuple[compiler.KubeflowOptions, pipeline_config.PipelineConfig]:
  """The options of add_kubeflow_arguments, and the config with --beam-arg;
  warns of each local path that a cluster's tasks cannot share."""
  options = compiler.KubeflowOptions(
      image=args.image, gpu_count=args.gpus, gpu_type=args.gpu_type,
      trainer_cpu=args.trainer_cpu, trainer_memory_gib=args.trainer_memory_gib)
  if args.beam_arg:
    config = dataclasses.replace(config, beam_pipeline_args=tuple(args.beam_arg))
  for warning in compiler.local_path_warnings(config):
    print(f'dae-pipeline: warning: {warning}', file=sys.stderr)
  return options, config


def _compile(args, config) -> int:
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)  # Before TFX's import: its warnings.
  options, config = kubeflow_options(args, config)
  compiler.compile_pipeline(config, options, args.output)
  print(f'wrote the Kubeflow pipeline to {args.output}')
  return 0


def _run_compiled(args) -> int:
  """Runs a package task by task; prints its table, verdict and logs' folder."""
  run_id = args.run_id or run_compiled.new_run_id()
  logs = (f'logs: {common.shown(run_compiled.run_folder(args.work_dir, run_id))}'
          '/<task>/log.txt')
  try:
    results = run_compiled.run_package(
        args.package, pipeline_root=args.pipeline_root,
        parameters=compiler.split_parameters(args.param), run_id=run_id,
        work_dir=args.work_dir, parallelism=args.parallelism,
        serving_dir=args.serving_dir, push_for_real=args.push_for_real)
  except run_compiled.PackageRefused as error:
    print(f'dae-pipeline: run-compiled refused {args.package}: {error}',
          file=sys.stderr)
    return common.EXIT_INVALID_CONFIG
  except run_compiled.TaskFailed as error:
    print(run_compiled.format_results(error.results))
    print(logs)
    print(f'dae-pipeline: run-compiled failed: {error}', file=sys.stderr)
    return common.EXIT_FAILED
  print(run_compiled.format_results(results))
  print(f'dae-pipeline: run-compiled finished {args.package}')
  from pipeline import run_outcome  # pylint: disable=g-import-not-at-top
  print('\n'.join(run_outcome.closing_lines(
      run_compiled.execution_records(results), _html_report(results))))
  print(logs)
  return 0


def _html_report(results) -> str:
  """What to do with the run's HTML report: open its file (a KFP HTML
  artifact, a file named html_report without an extension) in a browser;
  '' when it drew none."""
  from components.common import names  # pylint: disable=g-import-not-at-top
  report = results.get(names.VISUAL_REPORT_NODE)
  artifacts = report.outputs.get(names.HTML_REPORT_KEY) if report else None
  if not artifacts:
    return ''
  uri = artifacts[0]['uri']
  return f'open {uri if "://" in uri else common.shown(uri)} in a browser'
