"""The Beam components' arguments: no sdist of TFX on the DirectRunner."""

import glob
import tempfile

from tfx.dsl.components.base import base_beam_executor

from pipeline import pipeline as pipeline_module
import pipeline_config


def _tfx_sdists():
  return set(glob.glob(f'{tempfile.gettempdir()}/tmp*/build/tfx'))


class _BeamExecutor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    raise NotImplementedError


def _executor_args(config):
  """The arguments TFX's BaseBeamExecutor ends up with for `config`."""
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=pipeline_module.beam_pipeline_args(config))
  return _BeamExecutor(context)._beam_pipeline_args  # pylint: disable=protected-access


def test_direct_runner_builds_no_tfx_package():
  before = _tfx_sdists()
  args = _executor_args(pipeline_config.load_profile('smoke'))
  assert not [arg for arg in args if arg.startswith('--extra_package=')]
  assert _tfx_sdists() == before  # Nothing copied to /tmp.
  assert pipeline_module.DIRECT_RUNNER_NO_STAGING in args


def test_explicit_runner_and_dependency_flags_are_kept():
  dataflow = pipeline_config.with_overrides(pipeline_config.load_profile(), {
      'beam_pipeline_args': '--runner=DataflowRunner,--setup_file=./setup.py'})
  assert pipeline_module.beam_pipeline_args(dataflow) == [
      '--runner=DataflowRunner', '--setup_file=./setup.py']
  direct_with_package = pipeline_config.with_overrides(
      pipeline_config.load_profile(),
      {'beam_pipeline_args': '--extra_package=dist/x.tar.gz'})
  assert pipeline_module.beam_pipeline_args(direct_with_package) == [
      '--extra_package=dist/x.tar.gz']
