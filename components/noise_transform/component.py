"""NoiseTransform: adds seeded, reproducible noise to every example, with Beam.

Consumes TfdsExampleGen's Examples (raw uint8 pixels) and writes Examples with
``clean`` and ``noisy`` float images in [0, 1] scale (height x width x
channels values each, as the input's DatasetInfo says, which is copied onto
the output), ``noise_level`` and, when the dataset is labelled, ``label``.
The Beam pipeline honours the pipeline's
``beam_pipeline_args``, so it runs unchanged on DirectRunner, Dataflow, Flink
or Spark; the noise of an example depends only on (seed, settings, example),
see noise.py. Noise lives here only: the exported model never contains it.
"""

import dataclasses
from typing import Mapping, Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components.noise_transform import executor
from components.common import noise

_FIELD_TYPES = {field.name: field.type for field in dataclasses.fields(noise.NoiseSpec)}


class NoiseTransformSpec(ComponentSpec):
  """Inputs, outputs and parameters of NoiseTransform."""
  PARAMETERS = {
      executor.SPEC_KEY: ExecutionParameter(type=str),
      **{name: ExecutionParameter(type=_FIELD_TYPES[name], optional=True)
         for name in executor.PER_RUN_FIELDS},
  }
  INPUTS = {
      executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      executor.NOISY_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples),
  }


class NoiseTransform(base_beam_component.BaseBeamComponent):
  """Adds noise to every split of an Examples artifact (Beam)."""

  SPEC_CLASS = NoiseTransformSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  # The NoiseSpec fields that a RuntimeParameter may set per run.
  PER_RUN_FIELDS = executor.PER_RUN_FIELDS

  def __init__(self,
               examples: types.BaseChannel,
               *,
               spec: noise.NoiseSpec,
               per_run: Optional[Mapping[str, data_types.RuntimeParameter]] = None,
               noisy_examples: Optional[types.BaseChannel] = None):
    """Creates the component; invalid per-run defaults raise InvalidNoiseSpec now.

    Args:
      examples: TfdsExampleGen's Examples.
      spec: The noise (validated when it was made), passed as its JSON.
      per_run: RuntimeParameters by NoiseSpec field (some of PER_RUN_FIELDS),
        set per run on Kubeflow; the executor applies their values onto
        `spec` and checks them there.
      noisy_examples: Optional output channel.

    Raises:
      ValueError: `per_run` names a field outside PER_RUN_FIELDS.
    """
    per_run = dict(per_run or {})
    unknown = sorted(set(per_run) - set(self.PER_RUN_FIELDS))
    if unknown:
      raise ValueError(f'no per-run noise setting {unknown}; only '
                       f'{list(self.PER_RUN_FIELDS)}')
    dataclasses.replace(spec, **{name: parameter.default
                                 for name, parameter in per_run.items()})
    component_spec = NoiseTransformSpec(
        examples=examples,
        noisy_examples=noisy_examples or types.Channel(
            type=standard_artifacts.Examples),
        **{executor.SPEC_KEY: spec.to_json()}, **per_run)
    super().__init__(spec=component_spec)
