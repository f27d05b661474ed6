"""One zygote for every end-to-end test (tests/e2e/zygote.py): TFX and its
stack are imported once per session, each `dae-pipeline` run is a fork."""

import pytest

import pipeline_config
from tests.e2e import zygote as zygote_lib


@pytest.fixture(scope='session')
def zygote():
  """run(args, log, crash_in=None, cwd=None) -> (exit status, output)."""
  with zygote_lib.client(pipeline_config.repository_root()) as run:
    yield run
