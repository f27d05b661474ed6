"""The Trainer's executor: TFX's GenericExecutor, plus the examples' noise.

`run_fn` gets TFX's FnArgs, which carry the examples' file patterns but not
the artifact's properties. With `training.fresh_noise` it must draw new noise
with the settings that made its examples, which NoiseTransform records on
them (`noise_spec`, see components/noise_transform/noise.py). Those settings
may be runtime parameters chosen when a Kubeflow run is submitted, so they
cannot be copied into the Trainer's custom_config when the pipeline is
built: this executor reads them from the input artifact and adds them to
custom_config under `run_fn.NOISE_SPEC_KEY`.
"""

from typing import Any, Dict, List

from tfx import types
from tfx.components.trainer import executor as tfx_trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from components.noise_transform import noise
from components.trainer import run_fn as run_fn_lib


class Executor(tfx_trainer_executor.GenericExecutor):
  """Runs `run_fn` like TFX's GenericExecutor, telling it the examples' noise."""

  def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]],
                 output_dict: Dict[str, List[types.Artifact]],
                 exec_properties: Dict[str, Any]) -> fn_args_utils.FnArgs:
    fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
    examples = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.EXAMPLES_KEY])
    spec_json = noise.recorded_spec_json(examples)
    if spec_json is not None:
      fn_args.custom_config = dict(fn_args.custom_config or {},
                                   **{run_fn_lib.NOISE_SPEC_KEY: spec_json})
    return fn_args
