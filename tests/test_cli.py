"""The dae-pipeline command line: parsing, config errors, no TFX for --help."""

import argparse
import json
import subprocess
import sys
import time

import pytest

from pipeline import cli


def test_config_command_prints_the_resolved_profile(capsys):
  assert cli.main(['config', '--profile', 'smoke', '--pipeline-root', '/tmp/r',
                   '--set', 'noise.stddev=0.3']) == 0
  printed = json.loads(capsys.readouterr().out)
  assert printed['profile'] == 'smoke'
  assert printed['pipeline_root'] == '/tmp/r'
  assert printed['noise']['stddev'] == 0.3


@pytest.mark.parametrize('argv, field', [
    (['run', '--profile', 'huge'], "'profile'"),
    (['run', '--set', 'data.train_examples=-5'], "'data.train_examples'"),
    (['run', '--set', 'noise.stddev=3'], "'noise.stddev'"),
    (['run', '--source', 'ftp'], "'data.source'"),
    (['run', '--pipeline-root', '/etc/hostname/root'], "'pipeline_root'"),
    (['run', '--set', 'nonsense'], "'nonsense'"),
])
def test_invalid_configuration_fails_before_running(capsys, argv, field):
  assert cli.main(argv) == 2
  error = capsys.readouterr().err
  assert 'invalid configuration' in error and field in error


def test_help_does_not_import_tfx():
  # A fresh interpreter: `--help` and `config` must not pay TFX's import.
  code = ('import sys; from pipeline import cli\n'
          'try:\n    cli.main(["--help"])\nexcept SystemExit:\n    pass\n'
          'cli.main(["config"])\n'
          'sys.exit(1 if "tfx" in sys.modules or "tensorflow" in sys.modules else 0)')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr


def _main_in_a_fresh_interpreter(argv):
  """cli.main(argv) in a new Python; its exit status is 10 more when it
  imported TFX or TensorFlow."""
  code = ('import sys; from pipeline import cli\n'
          f'code = cli.main({argv!r})\n'
          'sys.exit(10 + code if "tfx" in sys.modules or "tensorflow" in sys.modules else code)')
  return subprocess.run([sys.executable, '-c', code], capture_output=True,
                        text=True, check=False)


def test_tensorboard_command_finds_nothing_without_importing_tfx(tmp_path):
  # No run recorded: a clear error, and no TFX or TensorFlow import on the way.
  result = _main_in_a_fresh_interpreter(
      ['tensorboard', '--print-logdir', '--pipeline-root', str(tmp_path)])
  assert result.returncode == cli.EXIT_FAILED, result.stderr
  assert 'no MLMD store' in result.stderr


def _subcommands():
  parser = cli.make_parser()
  [commands] = [action for action in parser._actions  # pylint: disable=protected-access
                if isinstance(action, argparse._SubParsersAction)]  # pylint: disable=protected-access
  return commands.choices


def test_every_flag_of_every_command_has_a_help_line():
  missing = [f'{name} {action.option_strings or action.dest}'
             for name, subparser in _subcommands().items()
             for action in subparser._actions  # pylint: disable=protected-access
             if not action.help and not isinstance(action, argparse._HelpAction)]  # pylint: disable=protected-access
  assert not missing


def test_a_flag_with_a_default_says_it_in_help():
  commands = _subcommands()
  assert 'default: build/pipeline.json' in ' '.join(
      commands['compile'].format_help().split())
  for command in ('compile', 'submit', 'schedule'):
    assert 'default: mnist-dae-pipeline:latest' in ' '.join(
        commands[command].format_help().split()), command


def test_only_commands_that_run_a_pipeline_take_no_cache():
  flags = {name: {flag for action in subparser._actions  # pylint: disable=protected-access
                  for flag in action.option_strings}
           for name, subparser in _subcommands().items()}
  assert {name for name, flags in flags.items() if '--no-cache' in flags} == {
      'run', 'compile', 'submit', 'schedule'}


@pytest.mark.parametrize('command', cli.FOLLOW_UP_COMMANDS)
def test_follow_up_commands_list_only_their_own_flags(command):
  flags = {flag for action in _subcommands()[command]._actions  # pylint: disable=protected-access
           for flag in action.option_strings}
  # denoise, models and rollback read the serving dir, the others a run's records.
  serving = command in cli.SERVING_DIR_COMMANDS
  assert {'--profile', '--serving-dir' if serving else '--pipeline-root'} <= flags
  assert not flags & {'--set', '--no-cache', '--source', '--source-dir', '--wait'}
  if serving:
    assert not flags & {'--pipeline-root', '--metadata-path'}


def _store_with_a_run(path, run_id, report=False):
  """An MLMD store with one pipeline run (as TFX records it); with `report`,
  a finished VisualReport execution and its output in it."""
  from ml_metadata import metadata_store  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2 as mlmd  # pylint: disable=g-import-not-at-top
  path.parent.mkdir(parents=True, exist_ok=True)
  config = mlmd.ConnectionConfig()
  config.sqlite.filename_uri = str(path)
  config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
  store = metadata_store.MetadataStore(config)
  run_type = store.put_context_type(mlmd.ContextType(name='pipeline_run'))
  [run] = store.put_contexts([mlmd.Context(type_id=run_type, name=run_id)])
  if not report:
    return
  node_type = store.put_context_type(mlmd.ContextType(name='node'))
  [node] = store.put_contexts([mlmd.Context(type_id=node_type,
                                            name='mnist-dae-smoke.VisualReport')])
  [execution] = store.put_executions([mlmd.Execution(
      type_id=store.put_execution_type(mlmd.ExecutionType(name='VisualReport')),
      last_known_state=mlmd.Execution.COMPLETE)])
  [artifact] = store.put_artifacts([mlmd.Artifact(
      type_id=store.put_artifact_type(mlmd.ArtifactType(name='DenoisingReport')),
      uri=str(path.parent / 'report'))])
  event = mlmd.Event(artifact_id=artifact, execution_id=execution,
                     type=mlmd.Event.OUTPUT)
  event.path.steps.add().key = 'report'
  store.put_events([event])
  store.put_attributions_and_associations(
      [], [mlmd.Association(context_id=context, execution_id=execution)
           for context in (run, node)])


def test_follow_up_commands_read_the_newest_run_of_any_profile(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for command in (['report'], ['sample'], ['tensorboard'],
                  ['denoise', 'x.png', '--output', 'out']):
    args = cli.make_parser().parse_args(command)
    with pytest.raises(cli.NoRunFound, match='make run PROFILE=smoke'):
      cli.build_config(args)
  _store_with_a_run(tmp_path / 'build' / 'pipeline_root' / 'metadata.sqlite', 'a')
  time.sleep(0.01)
  _store_with_a_run(tmp_path / 'build' / 'smoke' / 'pipeline_root' / 'metadata.sqlite', 'b')
  args = cli.make_parser().parse_args(['report'])
  assert cli.build_config(args).profile == 'smoke'
  assert cli.default_report_path(cli.build_config(args)) == 'build/smoke/report.html'
  time.sleep(0.01)
  _store_with_a_run(tmp_path / 'build' / 'pipeline_root' / 'metadata.sqlite', 'c')
  assert cli.build_config(cli.make_parser().parse_args(['sample'])).profile == 'full'
  # A dataset's own locations (another dataset's run) are found too.
  time.sleep(0.01)
  _store_with_a_run(tmp_path / 'build' / 'smoke' / 'datasets' / 'photos' / 'pipeline_root'
                    / 'metadata.sqlite', 'd')
  config = cli.build_config(cli.make_parser().parse_args(['sample']))
  assert (config.profile, config.pipeline_root, config.serving_dir) == (
      'smoke', 'build/smoke/datasets/photos/pipeline_root',
      'build/smoke/datasets/photos/serving')
  assert cli.default_report_path(config) == 'build/smoke/datasets/photos/report.html'
  # --dataset picks a dataset's newest run (mnist: the profiles' own places).
  config = cli.build_config(cli.make_parser().parse_args(['report', '--dataset', 'mnist']))
  assert (config.profile, config.pipeline_root) == ('full', 'build/pipeline_root')
  config = cli.build_config(cli.make_parser().parse_args(
      ['models', '--dataset', 'mnist', '--profile', 'smoke']))
  assert (config.profile, config.serving_dir) == ('smoke', 'build/smoke/serving')
  config = cli.build_config(cli.make_parser().parse_args(['report', '--dataset', 'photos']))
  assert config.pipeline_root == 'build/smoke/datasets/photos/pipeline_root'
  with pytest.raises(cli.NoRunFound, match="no run of the dataset 'pets' found"):
    cli.build_config(cli.make_parser().parse_args(['report', '--dataset', 'pets']))
  # Named, they win; and `run` never guesses.
  assert cli.build_config(cli.make_parser().parse_args(
      ['report', '--profile', 'smoke'])).profile == 'smoke'
  assert cli.build_config(cli.make_parser().parse_args(['run'])).profile == 'full'


def test_a_follow_up_command_without_any_run_says_what_to_run(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  assert cli.main(['report']) == cli.EXIT_FAILED
  error = capsys.readouterr().err.strip()
  assert len(error.splitlines()) == 1
  assert error.startswith('dae-pipeline: report: no pipeline run found')
  assert 'make run PROFILE=smoke' in error


def test_an_unusable_pipeline_root_is_a_configuration_error(capsys):
  assert cli.main(['run', '--pipeline-root', '/proc/nope/root']) == 2
  error = capsys.readouterr().err.strip()
  assert error.startswith("dae-pipeline: invalid configuration: config field "
                          "'pipeline_root'"), error
  assert len(error.splitlines()) == 1


def test_a_renamed_setting_says_its_new_name_in_one_line(capsys):
  assert cli.main(['run', '--set', 'thresholds.max_digit_psnr_drop_db=1']) == 2
  error = capsys.readouterr().err.strip()
  assert error == ("dae-pipeline: invalid configuration: config field "
                   "'thresholds.max_digit_psnr_drop_db': renamed to "
                   "thresholds.max_class_psnr_drop_db"), error


def test_a_run_s_profile_is_known_by_its_pipeline_name():
  assert cli.profile_of('mnist-dae-smoke') == 'smoke'
  assert cli.profile_of('mnist-dae') == 'full'
  assert cli.profile_of('someone-elses') is None


def test_follow_up_commands_skip_a_newer_run_that_lacks_what_they_read(
    tmp_path, monkeypatch, capsys):
  # A full run stopped before its report began after the smoke run, which
  # drew one: `report` reads the smoke run, `sample` (neither has noisy
  # examples) the newest.
  monkeypatch.chdir(tmp_path)
  _store_with_a_run(tmp_path / 'build' / 'smoke' / 'pipeline_root' / 'metadata.sqlite',
                    'a', report=True)
  time.sleep(0.01)
  _store_with_a_run(tmp_path / 'build' / 'pipeline_root' / 'metadata.sqlite', 'b')
  assert cli.newest_run_profile('report') == 'smoke'
  # Said in one line: the newest run is not the one read.
  assert capsys.readouterr().err.strip() == (
      'dae-pipeline: report: note: the newest run (build/pipeline_root) has no '
      'report; reading build/smoke/pipeline_root, of an older run')
  assert cli.newest_run_profile('sample') == 'full'
  assert capsys.readouterr().err == ''


def test_schema_command_lists_only_its_flags():
  flags = {flag for action in _subcommands()['schema']._actions  # pylint: disable=protected-access
           for flag in action.option_strings}
  assert flags == {'-h', '--help', '--profile', '--set', '--output', '--force'}


def test_schema_command_refuses_to_overwrite_without_importing_tfx(tmp_path):
  existing = tmp_path / 'mine.pbtxt'
  existing.write_text('')
  result = _main_in_a_fresh_interpreter(['schema', '--output', str(existing)])
  assert result.returncode == cli.EXIT_INVALID_CONFIG, result.stderr
  assert result.stderr.strip() == (f'dae-pipeline: schema: {existing} exists; '
                                   '--force overwrites it')
  assert existing.read_text() == ''


def test_schema_command_of_an_image_folder_needs_an_output(tmp_path, capsys):
  assert cli.main(['schema', '--set', f'data.image_dir={tmp_path}']) == 2
  error = capsys.readouterr().err.strip()
  assert len(error.splitlines()) == 1 and "'--output'" in error


def _busy_run_output(tmp_path, capsys, *settings):
  """What `run` prints before it starts, made to stop there: its root is
  held by another run (this test)."""
  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  from pipeline import run_lock  # pylint: disable=g-import-not-at-top
  argv = ['run', '--profile', 'smoke', '--pipeline-root', str(tmp_path / 'root'),
          '--serving-dir', str(tmp_path / 'serving'),
          '--set', f'schemas_dir={tmp_path}', '--set', f'data.source_dir={tmp_path}']
  for setting in settings:
    argv += ['--set', setting]
  config = local_runner.absolute_paths(cli.build_config(cli.make_parser().parse_args(argv)))
  with run_lock.hold(config):
    assert cli.main(argv) == cli.EXIT_BUSY
  return capsys.readouterr().out.strip().splitlines()


def test_a_run_without_a_curated_schema_says_so_in_one_line(tmp_path, capsys):
  [line] = _busy_run_output(tmp_path, capsys, 'data.dataset=fashion_mnist')
  assert line == (f'schema: none curated for fashion_mnist ({tmp_path}/fashion_mnist.pbtxt); '
                  'inferring it from the train split - dae-pipeline schema --set '
                  'data.dataset=fashion_mnist writes it there for curation')
  [line] = _busy_run_output(tmp_path, capsys, f'data.image_dir={tmp_path}')
  assert line.startswith(f'schema: none curated for the image folder {tmp_path} ')
  # A curated schema is imported as before: nothing more is said.
  (tmp_path / 'fashion_mnist.pbtxt').write_text('')
  assert _busy_run_output(tmp_path, capsys, 'data.dataset=fashion_mnist') == []


def test_a_set_value_the_profile_makes_ineffective_is_a_warning_line(capsys):
  assert cli.main(['config', '--profile', 'smoke', '--set',
                   'training.epochs=8']) == 0
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ['dae-pipeline: warning: training.epochs=8 has no effect beyond '
                 '4: training.max_train_steps=32 stops training after 4 '
                 'epoch(s) of 8 steps (set training.max_train_steps=none to '
                 'train every epoch)']
