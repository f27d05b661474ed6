"""`dae-pipeline`: the command line of the MNIST denoising-autoencoder pipeline.

TFX is imported only by commands that run a pipeline, so `--help` and
`config` answer at once.
"""

import argparse
import dataclasses
import json
import sys
from typing import Dict, List, Optional

import pipeline_config


def _parse_set(values: List[str]) -> Dict[str, str]:
  overrides = {}
  for item in values:
    name, separator, value = item.partition('=')
    if not separator or not name:
      raise pipeline_config.ConfigError(item, 'expected --set section.field=value')
    overrides[name.strip()] = value.strip()
  return overrides


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
  overrides.update(_parse_set(args.set))
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
  return parser


def _write_samples(config: pipeline_config.PipelineConfig, count: int,
                   output: str) -> None:
  import os  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pipeline import samples  # pylint: disable=g-import-not-at-top
  noisy, clean = samples.read_test_images(config.resolved_metadata_path, count)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  np.save(output, noisy)
  clean_output = output[:-len('.npy')] + '.clean.npy' if output.endswith(
      '.npy') else output + '.clean.npy'
  np.save(clean_output, clean)
  print(f'wrote {len(noisy)} noisy test image(s) to {output}, clean ones to '
        f'{clean_output}')


def main(argv: Optional[List[str]] = None) -> int:
  args = make_parser().parse_args(argv)
  try:
    config = build_config(args)
    if args.command == 'config':
      print(json.dumps(dataclasses.asdict(config), indent=2))
      return 0
    if args.command == 'sample':
      _write_samples(config, args.count, args.output)
      return 0
    from pipeline import local_runner  # pylint: disable=g-import-not-at-top
    from pipeline import run_summary  # pylint: disable=g-import-not-at-top
    records = local_runner.run(config)
  except pipeline_config.ConfigError as error:
    print(f'dae-pipeline: invalid configuration: {error}', file=sys.stderr)
    return 2
  except Exception as error:  # pylint: disable=broad-except
    # TFX has logged the traceback; end with the reason, readable at a glance.
    print(f'dae-pipeline: {args.command} failed: {type(error).__name__}: {error}',
          file=sys.stderr)
    return 1
  config = local_runner.absolute_paths(config)
  print(run_summary.format_run(records))
  print(f'dae-pipeline: run finished; artifacts under {config.pipeline_root}, '
        f'MLMD in {config.resolved_metadata_path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
