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
