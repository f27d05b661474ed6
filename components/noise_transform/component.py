"""NoiseTransform: adds seeded, reproducible noise to every example, with Beam.

Consumes TfdsExampleGen's Examples (raw uint8 pixels) and writes Examples with
``clean`` and ``noisy`` float images in [0, 1] scale (784 values each),
``label`` and ``noise_level``. The Beam pipeline honours the pipeline's
``beam_pipeline_args``, so it runs unchanged on DirectRunner, Dataflow, Flink
or Spark; the noise of an example depends only on (seed, settings, example),
see noise.py. Noise lives here only: the exported model never contains it.
"""

from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components.noise_transform import executor
from components.noise_transform import noise

FloatParameter = Union[float, data_types.RuntimeParameter]
IntParameter = Union[int, data_types.RuntimeParameter]


class NoiseTransformSpec(ComponentSpec):
  """Inputs, outputs and parameters of NoiseTransform."""
  PARAMETERS = {
      executor.KIND_KEY: ExecutionParameter(type=str),
      executor.STDDEV_KEY: ExecutionParameter(type=float),
      executor.MIN_STDDEV_KEY: ExecutionParameter(type=float),
      executor.MAX_STDDEV_KEY: ExecutionParameter(type=float),
      executor.AMOUNT_KEY: ExecutionParameter(type=float),
      executor.CLIP_KEY: ExecutionParameter(type=int),
      executor.SEED_KEY: ExecutionParameter(type=int),
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

  def __init__(self,
               examples: types.BaseChannel,
               *,
               kind: str,
               stddev: FloatParameter,
               min_stddev: float,
               max_stddev: float,
               amount: FloatParameter,
               clip: bool,
               seed: IntParameter,
               noisy_examples: Optional[types.BaseChannel] = None):
    """Creates the component; invalid settings raise InvalidNoiseSpec now.

    Every setting is required (defaults, units and meaning:
    pipeline_config.NoiseConfig, which create_pipeline passes in full).

    Args:
      examples: TfdsExampleGen's Examples.
      kind: 'gaussian', 'salt_and_pepper' or 'random_gaussian'.
      stddev: Gaussian stddev in [0, 1] pixel units.
      min_stddev: Lowest per-example stddev (random_gaussian).
      max_stddev: Highest per-example stddev (random_gaussian).
      amount: Fraction of pixels set to 0 or 1 (salt_and_pepper).
      clip: Clip noisy pixels to [0, 1].
      seed: Seed of the noise.
      noisy_examples: Optional output channel.

    `stddev`, `amount` and `seed` may be RuntimeParameters (set per run on
    Kubeflow); their defaults are checked here, their values by the executor.
    """
    def value(parameter):
      return (parameter.default if isinstance(parameter, data_types.RuntimeParameter)
              else parameter)
    noise.NoiseSpec(kind=kind, stddev=value(stddev), min_stddev=min_stddev,
                    max_stddev=max_stddev, amount=value(amount), clip=clip,
                    seed=value(seed))
    spec = NoiseTransformSpec(
        kind=kind, stddev=stddev, min_stddev=min_stddev, max_stddev=max_stddev,
        amount=amount, clip=int(clip), seed=seed, examples=examples,
        noisy_examples=noisy_examples or types.Channel(
            type=standard_artifacts.Examples))
    super().__init__(spec=spec)
