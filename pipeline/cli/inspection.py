"""`sample`, `report` and `tensorboard`: what a run left, read back."""

import os
import sys
from typing import Optional

from components.common import names
from pipeline.cli import common
import pipeline_config


def add_parsers(commands) -> None:
  """Adds `sample`, `report` and `tensorboard` to the subcommands."""
  sample_parser = common.add_follow_up_parser(
      commands, 'sample', 'save noisy test images of the latest run (.npy, PNG)',
      'Write noisy test images of the latest run to a .npy file (input for '
      'saved_model_cli run) and as PNGs, and their clean versions beside '
      'them.', _sample)
  sample_parser.add_argument('--count', type=int, default=1,
                             help='number of test images (default: 1)')
  sample_parser.add_argument('--output', default='build/noisy.npy',
                             help='.npy file of float32 [count, height, width, '
                             'channels] (default: build/noisy.npy; the clean '
                             'images go to build/noisy.clean.npy, each image '
                             'also to build/noisy[-i][.clean].png)')
  report_parser = common.add_follow_up_parser(
      commands, 'report', "write the latest run's report as one HTML page",
      "Write the latest run's metrics, its comparison with the last blessed "
      'model and its pictures to one HTML page (opens offline).', _report)
  report_parser.add_argument('--output', help='the HTML file to write (default: '
                             'report.html beside the pipeline root: '
                             'build/report.html for the full profile, '
                             'build/smoke/report.html for smoke)')
  tensorboard_parser = common.add_follow_up_parser(
      commands, 'tensorboard', "open TensorBoard on the newest run's training logs",
      "Open TensorBoard on the newest run's training logs (losses per epoch, a "
      'few denoised held-out images per epoch under Images).', _tensorboard)
  tensorboard_parser.add_argument('--port', type=int, default=6006,
                                  help='port to serve on (default: 6006)')
  tensorboard_parser.add_argument('--host', default='localhost',
                                  help='interface to serve on (default: '
                                  'localhost; 0.0.0.0: all)')
  tensorboard_parser.add_argument('--print-logdir', action='store_true',
                                  help='print the log directory and exit')


def _sample(args, config) -> int:
  """Writes noisy test images of the run to --output, clean ones beside it."""
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)  # Before TensorFlow's import: its noise.
  from pipeline import samples  # pylint: disable=g-import-not-at-top
  noisy, clean = samples.read_test_images(config.resolved_metadata_path, args.count)
  written = samples.write_samples(args.output, noisy, clean)
  clean_output = next(path for path in written if path.endswith('.clean.npy'))
  pngs = [path for path in written if path.endswith('.png')]
  shown = ', '.join(pngs) if len(pngs) <= 2 else f'{pngs[0]} .. {pngs[-1]}'
  print(f'wrote {len(noisy)} noisy test image(s) to {args.output}, clean ones to '
        f'{clean_output}; as PNGs: {shown}')
  return 0


def default_report_path(config: pipeline_config.PipelineConfig) -> str:
  """report.html beside a local pipeline root (one per profile), or in
  build/ for a root on a bucket."""
  if '://' in config.pipeline_root:
    return os.path.join('build', f'{config.pipeline_name}-report.html')
  return os.path.join(os.path.dirname(config.pipeline_root.rstrip('/')) or '.',
                      'report.html')


def profile_of(pipeline_name: str) -> Optional[str]:
  """The profile whose pipeline has this name (None: no profile's)."""
  return next((profile for profile in pipeline_config.PROFILES
               if pipeline_config.load_profile(profile).pipeline_name
               == pipeline_name), None)


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
  # TensorBoard writes this advisory block to stderr whenever its fast
  # loader starts (tensorboard/program.py, load_fast=auto): an experiment
  # note, not something a user of this command acts on. Set on the module
  # itself: `program` here is TensorBoard's lazy proxy of it.
  setattr(sys.modules[program.TensorBoard.__module__],
          '_DATA_SERVER_ADVISORY_MESSAGE', '')
  # What `python -m tensorboard.main` runs, here, after the console's filters.
  server = program.TensorBoard(plugins=default.get_plugins())
  server.configure(argv=[None, '--logdir', log_dir, '--port', str(args.port),
                         '--host', args.host])
  try:
    return common.EXIT_FAILED if server.main() else 0  # Serves until stopped.
  except KeyboardInterrupt:  # Ctrl-C: the way to stop it.
    return 0
