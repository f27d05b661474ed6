"""The Trainer's executor: TFX's GenericExecutor, plus what the examples say.

`run_fn` gets TFX's FnArgs, which carry the examples' file patterns but not
the artifact's properties. It needs three of them, known only when the
pipeline runs, so they cannot be copied into the Trainer's custom_config
when the pipeline is built; this executor reads them from the input artifact
and adds them to custom_config:
- the dataset's description (DatasetInfo: image shape, classes), under
  `run_fn.DATASET_INFO_KEY`, which the model is built for;
- the train and eval split sizes the producer recorded (`split_sizes`), under
  `run_fn.TRAIN_EXAMPLES_KEY` / `EVAL_EXAMPLES_KEY`, which the steps are
  planned from (the dataset decides them: the config may leave them unset);
- with `training.fresh_noise`, the noise settings that made the examples
  (`noise_spec`, see components/common/noise/__init__.py; they may be runtime
  parameters of a Kubeflow run), under `run_fn.NOISE_SPEC_KEY`.
"""

from typing import Any, Dict, List

from tfx import types
from tfx.components.trainer import executor as tfx_trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from components.common import dataset_info
from components.common import progress
from components.common import noise
from components.trainer import run_fn as run_fn_lib


class Executor(tfx_trainer_executor.GenericExecutor):
  """Runs `run_fn` like TFX's GenericExecutor, telling it the examples'
  dataset, split sizes and noise."""

  def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]],
                 output_dict: Dict[str, List[types.Artifact]],
                 exec_properties: Dict[str, Any]) -> fn_args_utils.FnArgs:
    fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.EXAMPLES_KEY])
    fn_args.custom_config = dict(fn_args.custom_config or {},
                                 **examples_config(examples))
    return fn_args


def examples_config(examples: types.Artifact) -> Dict[str, Any]:
  """The custom_config entries of what an Examples artifact records.

  Raises:
    MissingDatasetInfo: the examples carry no DatasetInfo.
    ValueError: they carry no size of the train or eval split.
  """
  sizes = progress.split_sizes(examples)
  missing = [split for split in ('train', 'eval') if split not in sizes]
  if missing:
    raise ValueError(f'examples {examples.uri} record no size of split(s) '
                     f'{missing} (property split_sizes): the Trainer plans its '
                     'steps from them')
  config = {
      run_fn_lib.DATASET_INFO_KEY: dataset_info.recorded(examples).to_json(),
      run_fn_lib.TRAIN_EXAMPLES_KEY: sizes['train'],
      run_fn_lib.EVAL_EXAMPLES_KEY: sizes['eval'],
  }
  spec_json = noise.recorded_spec_json(examples)
  if spec_json is not None:
    config[run_fn_lib.NOISE_SPEC_KEY] = spec_json
  return config
