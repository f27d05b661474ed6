"""What the commands share: exit statuses, the arguments that locate a run,
the configuration they resolve, and how a path or the program is shown."""

import argparse
import dataclasses
import os
import sys
from typing import List, Optional

from components.common import names
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
# What each follow-up command reads, in words.
READS = {'report': 'report', 'tensorboard': 'training logs',
         'sample': 'noisy examples', 'denoise': 'served model',
         'models': 'served model', 'rollback': 'served model'}


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


def run_locations(dataset: Optional[str] = None,
                  profile: Optional[str] = None
                  ) -> List[pipeline_config.PipelineConfig]:
  """Where local runs may be: each profile's default locations (MNIST's),
  then those of each dataset that has its own folder beside them
  (pipeline_config.dataset_location).

  Args:
    dataset: Only that dataset's (its folder's name; the default dataset's
      name, 'mnist': the profiles' own locations).
    profile: Only that profile's.
  """
  located = []
  for name in pipeline_config.PROFILES if profile is None else (profile,):
    config = pipeline_config.load_profile(name)
    if dataset in (None, config.data.dataset):
      located.append(config)
    datasets = os.path.join(os.path.dirname(config.pipeline_root),
                            pipeline_config.DATASETS_DIRNAME)
    slugs = sorted(os.listdir(datasets)) if os.path.isdir(datasets) else []
    located += [dataclasses.replace(config, **{
        field: pipeline_config.dataset_location(getattr(config, field), slug)
        for field in pipeline_config.LOCATION_FIELDS})
                for slug in slugs if dataset in (None, slug)]
  return located


def newest_run_location(command: str, dataset: Optional[str] = None,
                        profile: Optional[str] = None
                        ) -> pipeline_config.PipelineConfig:
  """The profile and locations (run_locations of `dataset` and `profile`)
  whose newest pipeline run began last among those that hold what `command`
  reads (a report, training logs, a served model...); when none holds it,
  the newest run's, whose command then says what is missing.

  Raises:
    NoRunFound: no location holds a run; the message says what to run.
  """
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  started = []
  for config in run_locations(dataset, profile):
    newest = run_summary.newest_run_start(config.resolved_metadata_path)
    if newest is not None:
      started.append((newest, config))
  if not started and dataset is not None:
    raise NoRunFound(f'no run of the dataset {dataset!r} found (its runs are in '
                     f'build/[smoke/]{pipeline_config.DATASETS_DIRNAME}/'
                     f'{dataset}/; MNIST\'s: --dataset mnist)')
  if not started:
    looked = ', '.join(pipeline_config.load_profile(profile).pipeline_root
                       for profile in pipeline_config.PROFILES)
    raise NoRunFound(f'no pipeline run found (looked in {looked}); run one '
                     'first: make run PROFILE=smoke (about a minute), or name '
                     'the run\'s --pipeline-root')
  newest_first = [config for _, config in sorted(
      started, key=lambda pair: pair[0], reverse=True)]
  chosen = next((config for config in newest_first
                 if _has_what_it_reads(command, config)), newest_first[0])
  if chosen is not newest_first[0]:
    print(f'dae-pipeline: {command}: note: the newest run '
          f'({_read_location(command, newest_first[0])}) has no '
          f'{READS[command]}; reading {_read_location(command, chosen)}, of an '
          'older run', file=sys.stderr, flush=True)
  return chosen


def _read_location(command: str, config: pipeline_config.PipelineConfig) -> str:
  """Where `command` reads in `config`'s locations: its serving dir or root."""
  return shown(config.serving_dir if command in SERVING_DIR_COMMANDS
               else config.pipeline_root)


def newest_run_profile(command: str) -> str:
  """The profile of newest_run_location(command)."""
  return newest_run_location(command).profile


def build_config(args: argparse.Namespace) -> pipeline_config.PipelineConfig:
  """The profile's config with the command line's overrides applied.

  A follow-up command (FOLLOW_UP_COMMANDS) given neither --profile nor a
  path of a run (nor denoise's --model) takes the profile and locations of
  the newest run (newest_run_location); given --dataset, of that dataset's
  newest run (of --profile's, when given).
  """
  profile, found = args.profile, {}
  dataset = getattr(args, 'dataset', None)
  located = any(getattr(args, name, None) for name in (
      'pipeline_root', 'metadata_path', 'serving_dir', 'model'))
  if (profile is None or dataset) and not located and (
      args.command in FOLLOW_UP_COMMANDS):
    newest = newest_run_location(args.command, dataset, profile)
    profile = newest.profile
    found = {name: getattr(newest, name)
             for name in pipeline_config.LOCATION_FIELDS}
  profile = profile or 'full'

  config = pipeline_config.load_profile(profile)
  overrides = {
      'pipeline_root': getattr(args, 'pipeline_root', None),
      'serving_dir': getattr(args, 'serving_dir', None),
      'metadata_path': getattr(args, 'metadata_path', None),
      'data.source': getattr(args, 'source', None),
      'data.source_dir': getattr(args, 'source_dir', None),
  }
  overrides = {**found, **{name: value for name, value in overrides.items()
                           if value is not None}}
  assigned = pipeline_config.parse_assignments(
      getattr(args, 'set', []), '--set section.field=value')
  overrides.update(assigned)
  if getattr(args, 'no_cache', False):
    overrides['enable_cache'] = False
  config = pipeline_config.with_overrides(config, overrides)
  for line in pipeline_config.ineffective_settings(config, assigned):
    print(f'dae-pipeline: warning: {line}', file=sys.stderr, flush=True)
  return config


def add_location_arguments(parser: argparse.ArgumentParser,
                           serving_dir: bool = True,
                           follow_up: bool = False,
                           pipeline_root: bool = True) -> None:
  """--profile and the paths of a run: what a command needs to find one."""
  if follow_up:
    profile_help = ('the profile whose run to read: full or smoke (default: '
                    'the profile of the newest run)')
    parser.add_argument('--dataset', metavar='NAME',
                        help="the newest run of this dataset: its own locations, "
                        f'build/[smoke/]{pipeline_config.DATASETS_DIRNAME}/NAME/ '
                        "(mnist: the profile's); default: of any dataset")
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


def add_follow_up_parser(commands, name: str, help_text: str, description: str,
                         func) -> argparse.ArgumentParser:
  """A follow-up command's subparser (FOLLOW_UP_COMMANDS), run by `func`: it
  locates the serving dir (SERVING_DIR_COMMANDS) or else a run's root.

  Args:
    commands: The subparsers to add it to.
    name: The command.
    help_text: Its line in `dae-pipeline --help`.
    description: What its own --help says it does.
    func: What runs it, given the arguments and the resolved configuration.
  """
  parser = commands.add_parser(name, help=help_text, description=description)
  serving = name in SERVING_DIR_COMMANDS
  add_location_arguments(parser, serving_dir=serving, follow_up=True,
                         pipeline_root=not serving)
  parser.set_defaults(func=func)
  return parser


def add_set_argument(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--set', action='append', default=[],
                      metavar='SECTION.FIELD=VALUE',
                      help='override any config field, e.g. --set '
                      'noise.stddev=0.3 (repeatable; `dae-pipeline config` '
                      'lists them)')


def add_config_arguments(parser: argparse.ArgumentParser,
                         runs: bool = True) -> None:
  """The location arguments and every setting of a run (and --no-cache where
  the command `runs` or compiles a pipeline)."""
  add_location_arguments(parser)
  parser.add_argument('--source', help='vendored (offline IDX files) or tfds '
                      '(the stock TFDS download)')
  parser.add_argument('--source-dir', help="directory of the four *-ubyte.gz "
                      "IDX files of the vendored source (data.source_dir; "
                      "default: the dataset's data/<dataset>)")
  add_set_argument(parser)
  if runs:
    parser.add_argument('--no-cache', action='store_true',
                        help='re-run every component even when cached')


def shown(path: str) -> str:
  """A local path as a user may type it: relative when under the working
  directory, else as it is."""
  relative = os.path.relpath(path)
  return path if relative.startswith('..') else relative


def program() -> str:
  """How the user called this command (`.venv/bin/dae-pipeline`, or the name
  alone when it came from PATH), for the next commands a run suggests."""
  invoked = sys.argv[0] if sys.argv and sys.argv[0] else 'dae-pipeline'
  if os.path.basename(invoked) != 'dae-pipeline' or os.sep not in invoked:
    return 'dae-pipeline'
  return shown(invoked)
