"""`run`, `config` and `schema`: a local run, its resolved configuration,
and the schema a run infers, written out for curation."""

import dataclasses
import json
import math
import os
import sys
import time
from typing import Optional

from pipeline.cli import common
import pipeline_config


def add_parsers(commands) -> None:
  """Adds `run`, `config` and `schema` to the subcommands."""
  run_parser = commands.add_parser(
      'run', help='run the pipeline locally (LocalDagRunner, SQLite MLMD)')
  common.add_config_arguments(run_parser)
  run_parser.add_argument(
      '--wait', nargs='?', type=float, const=math.inf, default=None,
      metavar='SECONDS',
      help='when another run holds the pipeline root, wait for it (for at '
      'most SECONDS, or as long as it takes) instead of exiting at once '
      f'with status {common.EXIT_BUSY}')
  loudness = run_parser.add_mutually_exclusive_group()
  loudness.add_argument('--verbose', action='store_true',
                        help="every INFO line of TFX, Beam and TensorFlow (default: "
                        "the executors' one-line INFO messages, warnings, progress)")
  loudness.add_argument('--quiet', action='store_true',
                        help='warnings, errors and the closing table only; no progress')
  run_parser.set_defaults(func=_run)
  config_parser = commands.add_parser(
      'config', help='print the resolved configuration as JSON, run nothing')
  common.add_config_arguments(config_parser, runs=False)
  config_parser.set_defaults(func=_print_config)
  schema_parser = commands.add_parser(
      'schema', help="infer the dataset's schema and write it for curation",
      description="Infer the schema from the configured dataset's train "
      'split (TFX SchemaGen) and write it to a file for curation; runs '
      'import it from there.')
  common.add_location_arguments(schema_parser, serving_dir=False,
                                pipeline_root=False)
  common.add_set_argument(schema_parser)
  schema_parser.add_argument('--output', help='the .pbtxt to write (default: '
                             "the dataset's curated schema, schemas/<dataset>"
                             '.pbtxt, which the next run imports)')
  schema_parser.add_argument('--force', action='store_true',
                             help='overwrite the output file if it exists')
  schema_parser.set_defaults(func=_schema)


def _print_config(args, config) -> int:  # pylint: disable=unused-argument
  print(json.dumps(dataclasses.asdict(config), indent=2))
  return 0


def schema_notice(config: pipeline_config.PipelineConfig) -> Optional[str]:
  """The one line a run prints when it infers its schema (none curated);
  None when it imports a curated one."""
  if pipeline_config.curated_schema_path(config) is not None:
    return None
  location = pipeline_config.schema_location(config)
  if location is None:
    return (f'schema: none curated for the image folder {config.data.image_dir} '
            '(only schema_path names one); inferring it from the train split - '
            f'{common.program()} schema --output PATH writes it for curation, '
            '--set schema_path=PATH imports it')
  return (f'schema: none curated for {config.data.dataset} '
          f'({common.shown(location)}); inferring it from the train split - '
          f'{common.program()} schema --set data.dataset={config.data.dataset} '
          'writes it there for curation')


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
  output = _schema_output(args, config)
  if os.path.exists(output) and not args.force:
    print(f'dae-pipeline: schema: {common.shown(output)} exists; --force '
          'overwrites it', file=sys.stderr)
    return common.EXIT_INVALID_CONFIG
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
              f'runs import it with --set schema_path={common.shown(output)}')
  print(f'wrote the schema inferred from the train split of {source} to '
        f'{common.shown(output)}; {imported}')
  return 0


def _follow_up_command(command: str, config: pipeline_config.PipelineConfig) -> str:
  """`dae-pipeline <command>` with the flags it needs to find this run: none
  when it ran on its dataset's default root (then it is the newest run that
  follow-up commands find). `config` has absolute paths."""
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  words = [common.program(), command]
  default = local_runner.absolute_paths(pipeline_config.with_dataset_locations(
      dataclasses.replace(pipeline_config.load_profile(config.profile),
                          data=config.data)))
  if config.pipeline_root != default.pipeline_root:
    words += ['--pipeline-root', config.pipeline_root]
  if config.resolved_metadata_path != os.path.join(config.pipeline_root,
                                                   'metadata.sqlite'):
    words += ['--metadata-path', config.resolved_metadata_path]
  return ' '.join(words)


def _stopped(error: BaseException,
             config: pipeline_config.PipelineConfig) -> int:
  """Says why a local run did not run to its end, in one line; its exit
  status. `error`: run_lock.PipelineRootBusy or local_runner.RunInterrupted."""
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  if not isinstance(error, local_runner.RunInterrupted):
    print(f'dae-pipeline: {error}', file=sys.stderr)
    return common.EXIT_BUSY
  error.acknowledge()
  resume = ('the components that finished come from the cache'
            if config.enable_cache else 'caching is off, so it starts over')
  print(f'dae-pipeline: run interrupted ({error.signal_name}); run the '
        f'same command again to resume: {resume}', file=sys.stderr)
  return 128 + error.signal_number


def _run(args, config) -> int:
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
  print(run_summary.format_run(records, time.monotonic() - args.started))
  print(f'artifacts: {config.pipeline_root}; MLMD: {config.resolved_metadata_path}')
  print('\n'.join(run_outcome.closing_lines(
      records, _follow_up_command('report', config))))
  return 0
