"""The dae-pipeline command line: parsing, config errors, no TFX for --help."""

import json
import subprocess
import sys

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


def test_tensorboard_command_finds_nothing_without_importing_tfx(tmp_path):
  # No run recorded: a clear error, and no TFX or TensorFlow import on the way.
  code = ('import sys; from pipeline import cli\n'
          f'code = cli.main(["tensorboard", "--print-logdir", "--pipeline-root", {str(tmp_path)!r}])\n'
          'sys.exit(10 + code if "tfx" in sys.modules or "tensorflow" in sys.modules else code)')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=False)
  assert result.returncode == cli.EXIT_FAILED, result.stderr
  assert 'no MLMD store' in result.stderr


def test_tensorboard_command_names_the_pipeline_s_trainer_output():
  from tfx.types import standard_component_specs  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top
  assert cli.TRAINER_ID == pipeline_module.TRAINER_ID
  assert cli.MODEL_RUN_KEY == standard_component_specs.MODEL_RUN_KEY
