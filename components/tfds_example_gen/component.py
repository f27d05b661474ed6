"""TfdsExampleGen: an image dataset through TensorFlow Datasets into Examples.

Takes the data settings as one DataSpec (components/tfds_example_gen/
settings.py) and outputs one `Examples` artifact with three splits, planned
when it runs from the settings and the dataset's own sizes (executor.
plan_splits):

* a TFDS dataset (vendored IDX files, or TFDS's own): ``train`` the head of
  its train split, ``eval`` its tail (disjoint), ``test`` its test split;
* an image folder: its images split by a seeded hash of their paths.

Each tf.Example holds ``image`` (int64 pixel values in 0..255, row-major,
channels last: height x width x channels of them) and, when the dataset is
labelled, ``label`` (int64 class index). Raw integer pixels rather than PNG
bytes: they let TFDV check the pixel domain and the image length against the
schema, and every downstream consumer reads them without a decoder. The
artifact records the dataset's description (components/dataset_info).
"""

from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.tfds_example_gen import driver
from components.tfds_example_gen import executor
from components.tfds_example_gen import settings
from components.tfds_example_gen import sources

# Artifact and parameter keys.
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
DATA_SPEC_KEY = settings.DATA_SPEC_KEY
SOURCE_FINGERPRINT_KEY = 'source_fingerprint'


class TfdsExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  """FileBasedExampleGen's spec plus the data settings and their fingerprint."""
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      DATA_SPEC_KEY: ExecutionParameter(type=str),
      SOURCE_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
  }


def make_input_config() -> example_gen_pb2.Input:
  """The input config: the output splits by name. Their TFDS slices are
  planned at run time (executor.plan_splits): only the dataset knows its
  sizes, so each pattern is its split's name."""
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name=split, pattern=split)
      for split in executor.SPLITS])


class TfdsExampleGen(base_beam_component.BaseBeamComponent):
  """Ingests an image dataset through a TFDS builder into train/eval/test
  Examples."""

  SPEC_CLASS = TfdsExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.TfdsDriver

  def __init__(self, data: settings.DataSpec = settings.DataSpec()):
    """Creates the component.

    Args:
      data: Which images are ingested and how they are split (a DataSpec;
        checked when it was made).
    """
    input_config = make_input_config()
    spec = TfdsExampleGenSpec(
        # The source's fingerprint, in the execution properties and so in
        # every orchestrator's cache key: TFX runs the custom driver (which
        # fingerprints at run time) locally, but its KFP v2 step builder runs
        # drivers only for FileBasedExampleGen. Missing files: the executor
        # fails naming them.
        source_fingerprint=sources.source_fingerprint(data, missing_ok=True),
        input_base='',
        input_config=input_config,
        output_config=example_gen_utils.make_default_output_config(
            input_config),
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        data_spec=data.to_json(),
        examples=types.Channel(type=standard_artifacts.Examples))
    super().__init__(spec=spec)
