"""TFX's Evaluator, told when its baseline holds no model.

The baseline comes from ServedModel, which outputs an empty Model artifact
while nothing is served. TFX's Evaluator decides "no baseline" by the
*absence* of the baseline input (tfx/components/evaluator/executor.py:
`has_baseline = bool(input_dict.get(BASELINE_MODEL_KEY))`, then the change
thresholds are dropped: rubber stamp). So an empty baseline is removed from
the inputs here and the first model is gated on value thresholds alone.

The EvalConfig is completed here for the examples' dataset (their
DatasetInfo: image shape, classes; eval_config.for_dataset), which is known
only when the pipeline runs.
"""

import json
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_component_specs
from tfx.utils import path_utils
from tfx.utils import proto_utils
from tensorflow_model_analysis.proto import config_pb2

from components.common import dataset_info
from components.common import names
from components.common import progress
from components.evaluator import eval_config as eval_config_lib
from components.evaluator import extractors
from components.common import saved_model
from components.common import serving_dir

BASELINE_MODEL_KEY = standard_component_specs.BASELINE_MODEL_KEY
EVAL_CONFIG_KEY = standard_component_specs.EVAL_CONFIG_KEY
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
EXAMPLE_SPLITS_KEY = standard_component_specs.EXAMPLE_SPLITS_KEY
MODULE_PATH_KEY = standard_component_specs.MODULE_PATH_KEY
MODULE_FILE_KEY = standard_component_specs.MODULE_FILE_KEY
# TFX's Evaluator evaluates this split when `example_splits` is empty.
TFX_DEFAULT_SPLITS = ['eval']


class Executor(evaluator_executor.Executor):
  """Evaluates against the served model, or on values alone when none is."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    baseline = input_dict.get(BASELINE_MODEL_KEY) or []
    if baseline and not serving_dir.holds_model(baseline[0]):
      logging.info('No model is served yet: no baseline, value thresholds only')
      input_dict = {key: artifacts for key, artifacts in input_dict.items()
                    if key != BASELINE_MODEL_KEY}
    elif baseline:
      check_baseline_takes_the_examples(
          baseline[0], dataset_info.recorded(input_dict[EXAMPLES_KEY][0]))
    if exec_properties.get(EVAL_CONFIG_KEY):
      exec_properties = dict(exec_properties, **{
          EVAL_CONFIG_KEY: eval_config_for_examples(
              exec_properties[EVAL_CONFIG_KEY], input_dict[EXAMPLES_KEY])})
    if not (exec_properties.get(MODULE_PATH_KEY) or
            exec_properties.get(MODULE_FILE_KEY)):
      # TFMA's default extractors and a progress bar (see extractors.py).
      exec_properties = dict(exec_properties,
                             **{MODULE_PATH_KEY: extractors.__name__})
      extractors.expect_examples(
          expected_examples(input_dict[EXAMPLES_KEY], exec_properties))
    super().Do(input_dict, output_dict, exec_properties)


class BaselineOfAnotherDataset(ValueError):
  """The model served takes images of another shape than the examples'."""


def check_baseline_takes_the_examples(baseline: types.Artifact,
                                      info: dataset_info.DatasetInfo) -> None:
  """Refuses a served model made for another dataset's images.

  Its serving dir then belongs to another dataset (the same --serving-dir for
  two datasets): comparing would fail inside TFMA, and pushing would put a
  model of another input shape on top of it. Nothing is pushed.

  Raises:
    BaselineOfAnotherDataset: the shapes differ (both named).
  """
  served_shape = saved_model.saved_model_image_shape(
      path_utils.serving_model_path(baseline.uri))
  if served_shape != info.image_shape:
    version = baseline.get_string_custom_property(
        names.SERVED_VERSION_PROPERTY) or '?'
    raise BaselineOfAnotherDataset(
        dataset_info.served_model_of_another_shape(
            version, served_shape, info.name, info.image_shape) +
        '; nothing was pushed')


def eval_config_for_examples(eval_config_json: str,
                             examples: List[types.Artifact]) -> str:
  """The EvalConfig (JSON) completed for the examples' dataset.

  Raises:
    MissingDatasetInfo: the examples carry no DatasetInfo.
  """
  eval_config = proto_utils.json_to_proto(eval_config_json, config_pb2.EvalConfig())
  info = dataset_info.recorded(examples[0])
  return proto_utils.proto_to_json(eval_config_lib.for_dataset(eval_config, info))


def expected_examples(examples: List[types.Artifact],
                      exec_properties: Dict[str, Any]) -> Optional[int]:
  """How many examples the evaluation reads: the sizes of its splits that the
  examples' producer recorded; None when one of them is unknown."""
  splits = json.loads(exec_properties.get(EXAMPLE_SPLITS_KEY) or 'null') or (
      TFX_DEFAULT_SPLITS)
  total = 0
  for artifact in examples:
    sizes = progress.split_sizes(artifact)
    if any(split not in sizes for split in splits):
      return None
    total += sum(sizes[split] for split in splits)
  return total
