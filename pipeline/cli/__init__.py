"""`dae-pipeline`: the command line of the MNIST denoising-autoencoder pipeline.

Each module adds its subcommands and names the function that runs each:

* run: `run`, `config`, `schema`: a local run and its configuration.
* inspection: `sample`, `report`, `tensorboard`: what a run left.
* models: `denoise`, `models`, `rollback`: the served models.
* package: `compile`, `run-compiled`: the Kubeflow package.
* remote: `submit`, `schedule`, `status`: runs on Kubeflow or Vertex AI.

TFX is imported only by commands that run a pipeline, so `--help` and
`config` answer at once.
"""

import argparse
import sys
import time
from typing import List, Optional

from pipeline.cli import common
from pipeline.cli import inspection
from pipeline.cli import models
from pipeline.cli import package
from pipeline.cli import remote
from pipeline.cli import run
import pipeline_config

# What callers and tests use, by the names they had when cli was one module.
EXIT_BUSY = common.EXIT_BUSY
EXIT_FAILED = common.EXIT_FAILED
EXIT_INVALID_CONFIG = common.EXIT_INVALID_CONFIG
FOLLOW_UP_COMMANDS = common.FOLLOW_UP_COMMANDS
SERVING_DIR_COMMANDS = common.SERVING_DIR_COMMANDS
NoRunFound = common.NoRunFound
build_config = common.build_config
newest_run_profile = common.newest_run_profile
default_report_path = inspection.default_report_path
profile_of = inspection.profile_of
schema_notice = run.schema_notice


def make_parser() -> argparse.ArgumentParser:
  """The parser of every subcommand, each with the function that runs it."""
  parser = argparse.ArgumentParser(
      prog='dae-pipeline',
      description='TFX pipeline of a denoising autoencoder for MNIST.')
  commands = parser.add_subparsers(dest='command', required=True)
  for module in (run, inspection, models, package, remote):  # --help's order.
    module.add_parsers(commands)
  return parser


def main(argv: Optional[List[str]] = None) -> int:
  """Runs one subcommand; its exit status.

  A command's function takes the parsed arguments and the resolved
  configuration, or the arguments alone when its parser sets
  `reads_config=False`. Errors become one line and an exit status, unless
  the parser sets `maps_errors=False` (the command reports its own).
  """
  start = time.monotonic()
  args = make_parser().parse_args(argv)
  args.started = start  # A run's table counts its time from here.
  if not getattr(args, 'maps_errors', True):
    return args.func(args)
  try:
    if not getattr(args, 'reads_config', True):
      return args.func(args)
    if args.command in common.SERVING_DIR_COMMANDS:
      # Finding the newest served model imports TensorFlow (through the
      # serving dir's file I/O): its import-time noise is filtered first.
      from pipeline import console  # pylint: disable=g-import-not-at-top
      console.configure(console.NORMAL)
    return args.func(args, common.build_config(args))
  except pipeline_config.ConfigError as error:
    print(f'dae-pipeline: invalid configuration: {error}', file=sys.stderr)
    return common.EXIT_INVALID_CONFIG
  except FileNotFoundError as error:
    # Nothing to read yet (no run, no store): the message says what to run.
    print(f'dae-pipeline: {args.command}: {error}', file=sys.stderr)
    return common.EXIT_FAILED
  except Exception as error:  # pylint: disable=broad-except
    # TFX has logged the traceback; end with the reason, readable at a glance.
    print(f'dae-pipeline: {args.command} failed: {type(error).__name__}: {error}',
          file=sys.stderr)
    return common.EXIT_FAILED
