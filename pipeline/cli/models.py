"""`denoise`, `models` and `rollback`: the served models, used and managed."""

import sys

from pipeline.cli import common


def add_parsers(commands) -> None:
  """Adds `denoise`, `models` and `rollback` to the subcommands."""
  denoise_parser = common.add_follow_up_parser(
      commands, 'denoise', 'denoise images with the newest served model',
      'Denoise PNG/JPEG/.npy images with the newest served model (or --model '
      'DIR) into PNGs. One quoted pattern (\'gs://bucket/scans/**.png\') or '
      'folder runs a Beam job instead (RunInference; --beam-arg for Dataflow) '
      'that writes each output under its relative path, a manifest.jsonl and '
      'unreadable.txt, and skips what an earlier run wrote.', _denoise)
  denoise_parser.add_argument(
      'images', nargs='+', metavar='IMAGE',
      help='PNG, JPEG or .npy ([H, W], [H, W, C] or [N, H, W, C]; floats in '
      '[0, 1] or uint8) of the size the model takes; or one pattern or folder')
  denoise_parser.add_argument(
      '--beam-arg', action='append', default=[], metavar='ARG',
      help='a Beam pipeline option of the batch job (repeatable), e.g. '
      '--beam-arg=--runner=DataflowRunner (default: DirectRunner here)')
  denoise_parser.add_argument('--output', required=True, metavar='DIR',
                              help='directory (or bucket) of the denoised '
                              '<stem>.png (<stem>-<i>.png for an .npy stack)')
  denoise_parser.add_argument('--model', metavar='DIR',
                              help='a SavedModel directory (default: the newest '
                              'complete version in the serving dir)')
  denoise_parser.add_argument('--reference', nargs='+', metavar='CLEAN',
                              help='clean images, one per IMAGE in its order: '
                              'print PSNR and SSIM of input and output')
  common.add_follow_up_parser(
      commands, 'models', "list the serving dir's versions, newest first",
      'List the versions of the serving dir, newest first: push time, the '
      'dataset and noise its figures were measured on, PSNR/SSIM, PSNR versus '
      'the served version (only on the same dataset and noise), worst class, '
      'the version each beat, its run; the one served now marked.', _models)
  rollback_parser = common.add_follow_up_parser(
      commands, 'rollback', 'serve an earlier version again',
      'Serve an earlier version again, as a copy published as the new highest '
      'version (with a record saying what it rolls back to).', _rollback)
  rollback_parser.add_argument(
      'version', nargs='?', metavar='VERSION',
      help='the version to serve again (default: the one before the served '
      'one; after a rollback to N, the one before N)')


def _denoise(args, config) -> int:
  from pipeline import batch_denoise  # pylint: disable=g-import-not-at-top
  from pipeline import denoise  # pylint: disable=g-import-not-at-top
  try:
    pattern = batch_denoise.batch_pattern(args.images)
    if pattern is None and args.beam_arg:
      if len(args.images) != 1:
        raise denoise.DenoiseError('--beam-arg runs a Beam job over one pattern '
                                   f'or folder, not {len(args.images)} files')
      pattern = args.images[0]
    if pattern is None:
      denoise.denoise_command(args.images, args.output, args.model,
                              config.serving_dir, args.reference)
      return 0
    if args.reference:
      raise denoise.DenoiseError('--reference takes files, not a pattern or '
                                 'folder')
    model_dir, _ = denoise.model_directory(args.model, config.serving_dir)
    batch_denoise.denoise_batch(pattern, args.output, model_dir, args.beam_arg)
  except denoise.DenoiseError as error:
    print(f'dae-pipeline: denoise: {error}', file=sys.stderr)
    return common.EXIT_INVALID_CONFIG
  return 0


def _models(args, config) -> int:  # pylint: disable=unused-argument
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
    return common.EXIT_INVALID_CONFIG
  except serving_lock.ServingDirBusy as error:  # A push in progress.
    print(f'dae-pipeline: rollback: {error}', file=sys.stderr)
    return common.EXIT_BUSY
  print(f'rolled back {config.serving_dir} to version {target}: served now '
        f'as version {new_version}')
  return 0
