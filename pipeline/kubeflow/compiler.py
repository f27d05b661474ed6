"""Compiles the same `create_pipeline(...)` DAG for Kubeflow Pipelines (KFP v2).

The compiled spec references the project's container image (see Dockerfile),
in which the project lives at IMAGE_ROOT; the Trainer's task requests GPUs,
no other task does; the noise settings of RUNTIME_PARAMETER_FIELDS become
pipeline parameters, settable per run.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Optional

from components.common import names
from pipeline.kubeflow import run_compiled
import pipeline_config

IMAGE_ROOT = '/pipeline'  # WORKDIR of the Dockerfile: the project's copy.
DEFAULT_IMAGE = 'mnist-dae-pipeline:latest'
# KFP's own artifact types that the project's TFX types stand for: schema
# title -> schema version, as the kfp SDK compiles kfp.dsl.HTML
# (kfp/dsl/types/artifact_types.py). The KFP v2 UI and Vertex AI render
# `system.HTML` artifacts (docs/kubeflow.md#the-report-in-the-kfp-and-vertex-uis).
KFP_SYSTEM_TYPES = {'system.HTML': '0.0.1'}


@dataclasses.dataclass(frozen=True)
class KubeflowOptions:
  """What a Kubeflow deployment adds to the pipeline's configuration.

  Attributes:
    image: Container image of every task (built by `make image`).
    gpu_count: GPUs requested by the Trainer's task (0: none).
    gpu_type: Kubernetes resource name of the accelerator.
    trainer_cpu: CPU cores requested for the Trainer's task.
    trainer_memory_gib: Memory requested for the Trainer's task, in GiB.
  """
  image: str = DEFAULT_IMAGE
  gpu_count: int = 1
  gpu_type: str = 'nvidia.com/gpu'
  trainer_cpu: float = 8.0
  trainer_memory_gib: float = 32.0

  def __post_init__(self):
    if not self.image:
      raise pipeline_config.ConfigError('image', 'must name a container image')
    if self.gpu_count < 0:
      raise pipeline_config.ConfigError('gpu_count', f'must be >= 0, got {self.gpu_count}')
    if self.trainer_cpu <= 0 or self.trainer_memory_gib <= 0:
      raise pipeline_config.ConfigError('trainer_cpu', 'CPU and memory must be positive')


def parameter_name(field: str) -> str:
  """The KFP parameter name of a config field: 'noise.stddev' -> 'noise_stddev'."""
  return field.replace('.', '_')


def in_image(config: pipeline_config.PipelineConfig) -> pipeline_config.PipelineConfig:
  """Names the vendored data directory relative to the project, which the
  ExampleGen resolves against its own copy: /pipeline in the image, the
  checkout under `dae-pipeline run-compiled`."""
  data = config.data
  if data.image_dir is None and data.source == pipeline_config.SOURCE_VENDORED:
    relative = os.path.relpath(pipeline_config.vendored_source_dir(data),
                               pipeline_config.repository_root())
    if not relative.startswith(os.pardir):  # Inside the project.
      data = dataclasses.replace(data, source_dir=relative)
  return dataclasses.replace(config, data=data)


def for_remote_beam(config: pipeline_config.PipelineConfig,
                    options: KubeflowOptions) -> pipeline_config.PipelineConfig:
  """Makes the Beam steps runnable on remote workers (Dataflow, Flink, Spark).

  * Dataflow workers get the pipeline image (`--sdk_container_image`), which
    holds the project, so they can import `components.*`; the image's
    ENTRYPOINT is Beam's worker boot (see Dockerfile).
  * TFDS prepares MNIST under the pipeline root (`<root>/tfds`) instead of a
    directory inside the ExampleGen's pod, which remote workers cannot read.
  With DirectRunner (the default: Beam runs inside each task's pod) nothing
  changes. An explicit `--sdk_container_image` or `data.tfds_data_dir` wins.
  """
  runner = config.beam_runner
  if runner in pipeline_config.DIRECT_RUNNERS:
    return config
  args = list(config.beam_pipeline_args)
  if runner == 'DataflowRunner' and not any(
      arg.startswith('--sdk_container_image=') for arg in args):
    args.append(f'--sdk_container_image={options.image}')
  data = config.data
  if data.tfds_data_dir is None and '://' in config.pipeline_root:
    data = dataclasses.replace(
        data, tfds_data_dir=f'{config.pipeline_root.rstrip("/")}/tfds')
  return dataclasses.replace(config, beam_pipeline_args=tuple(args), data=data)


def local_path_warnings(config: pipeline_config.PipelineConfig):
  """Paths that a cluster's tasks cannot share (no URI scheme)."""
  # An image folder is fingerprinted when the package is compiled (KFP v2 runs
  # no ExampleGen driver): a folder that grows later stays cached until the
  # package is compiled again.
  return [f'{field} {value!r} is a local path: tasks on a cluster need shared '
          'storage such as gs://, s3:// or minio://'
          for field, value in (('pipeline_root', config.pipeline_root),
                               ('serving_dir', config.serving_dir),
                               ('data.image_dir', config.data.image_dir))
          if value is not None and '://' not in value]


def _runtime_parameters(config: pipeline_config.PipelineConfig):
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top
  parameters = {}
  for field in pipeline_module.RUNTIME_PARAMETER_FIELDS:
    section, name = field.split('.')
    default = getattr(getattr(config, section), name)
    parameters[field] = tfx.dsl.experimental.RuntimeParameter(
        name=parameter_name(field), ptype=type(default), default=default)
  return parameters


def _restore_parameter_defaults(job: Dict[str, Any], parameters) -> None:
  """Puts RuntimeParameter defaults back into the spec (the V2 runner drops them)."""
  definitions = (job['pipelineSpec'].setdefault('root', {})
                 .setdefault('inputDefinitions', {}).setdefault('parameters', {}))
  for parameter in parameters.values():
    definition = definitions.setdefault(parameter.name, {})
    definition['defaultValue'] = parameter.default
    definition['isOptional'] = True


def _never_cache(job: Dict[str, Any], node_ids) -> None:
  """Turns KFP's cache off for the tasks of `node_ids` (TFX sets it per
  pipeline; KFP v2 honours `cachingOptions.enableCache` per task)."""
  tasks = job['pipelineSpec']['root']['dag']['tasks']
  for node_id in node_ids:
    tasks[node_id].setdefault('cachingOptions', {})['enableCache'] = False


def _condition_inputs_by_name(job: Dict[str, Any]) -> None:
  """Points each task condition at the task's own input artifact.

  TFX's step builder (1.16 to 1.21) writes a Cond on a channel the task already takes
  as `inputs.artifacts['_<Producer>.<key>']` (the channel's implicit key)
  without adding that input, because the task has it under its own name
  (tfx/orchestration/kubeflow/v2/step_builder.py, `implicit_keys_map`): the
  Pusher's condition reads `_Evaluator.blessing` while its input is
  `model_blessing`. The KFP driver evaluates the condition over the task's
  ExecutorInput, where the name is absent, and fails; the name is replaced
  here by the input fed from the same producer and output.
  """
  for task in job['pipelineSpec']['root']['dag']['tasks'].values():
    condition = task.get('triggerPolicy', {}).get('condition')
    if not condition:
      continue
    own_names = {
        (value['taskOutputArtifact']['producerTask'],
         value['taskOutputArtifact']['outputArtifactKey']): name
        for name, value in task.get('inputs', {}).get('artifacts', {}).items()
        if 'taskOutputArtifact' in value}

    def own_name(match):
      producer, _, key = match.group(1)[1:].rpartition('.')
      name = own_names.get((producer, key), match.group(1))
      return f"inputs.artifacts['{name}']"

    task['triggerPolicy']['condition'] = run_compiled.CONDITION_INPUT.sub(own_name, condition)


def _kfp_system_types(job: Dict[str, Any]) -> None:
  """Gives outputs of KFP's own types (KFP_SYSTEM_TYPES) KFP's schema title.

  TFX writes a custom type as the generic Artifact schema with its TYPE_NAME
  as the `title` of an `instanceSchema` (tfx/orchestration/kubeflow/v2/
  compiler_utils.py, get_artifact_schema); the kfp SDK writes its own types
  as `schemaTitle` and `schemaVersion`, the form the UIs look up.
  """
  from pipeline.kubeflow import entrypoint  # pylint: disable=g-import-not-at-top
  for component in job['pipelineSpec']['components'].values():
    outputs = component.get('outputDefinitions', {}).get('artifacts', {})
    for definition in outputs.values():
      title = entrypoint.schema_title(definition.get('artifactType'))
      if title in KFP_SYSTEM_TYPES:
        definition['artifactType'] = {'schemaTitle': title,
                                      'schemaVersion': KFP_SYSTEM_TYPES[title]}


def _use_entrypoint(job: Dict[str, Any]) -> None:
  """Every container task runs the project's entrypoint
  (pipeline/kubeflow/entrypoint.py: TFX's, made to work with the OSS KFP v2
  driver), with TFX's arguments."""
  from pipeline.kubeflow import entrypoint  # pylint: disable=g-import-not-at-top
  for executor in job['pipelineSpec']['deploymentSpec']['executors'].values():
    if 'container' in executor:
      executor['container']['command'] = ['python', '-m', entrypoint.MODULE]


def compile_pipeline(config: pipeline_config.PipelineConfig,
                     options: KubeflowOptions,
                     output: Optional[str] = None) -> Dict[str, Any]:
  """Compiles the DAG; writes it to `output` when given.

  `.json` output is a PipelineJob (the spec under `pipelineSpec`); `.yaml` or
  `.yml` is the bare PipelineSpec, the package format the kfp client uploads.

  Returns:
    The PipelineJob as a dict.
  """
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top

  from pipeline import local_runner  # pylint: disable=g-import-not-at-top
  # Local paths absolute (only run-compiled can use them; its tasks run in the
  # project root, not where `compile` was called).
  config = for_remote_beam(in_image(local_runner.absolute_paths(config)), options)
  parameters = _runtime_parameters(config)
  dag = pipeline_module.create_pipeline(config, runtime_parameters=parameters)
  resource_spec = (pipeline_spec_pb2.PipelineDeploymentConfig
                   .PipelineContainerSpec.ResourceSpec)
  resources = resource_spec(cpu_limit=options.trainer_cpu,
                            memory_limit=options.trainer_memory_gib)
  if options.gpu_count:
    resources.accelerator.CopyFrom(resource_spec.AcceleratorConfig(
        type=options.gpu_type, count=options.gpu_count))
  trainer = next(component for component in dag.components
                 if component.id == names.TRAINER_NODE)
  trainer.with_platform_config(resources)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=options.image, use_pipeline_spec_2_1=True))
  job = runner.run(dag, write_out=False)
  _restore_parameter_defaults(job, parameters)
  # Built without a fingerprint: what is served is only known when it runs.
  _never_cache(job, pipeline_module.never_cached_nodes(served_fingerprint=None))
  _use_entrypoint(job)
  _kfp_system_types(job)
  _condition_inputs_by_name(job)
  refusals = run_compiled.oss_refusals(job['pipelineSpec'])
  if refusals:  # A bug here, never the user's: fail before anyone submits it.
    raise RuntimeError('compiled a package that open-source KFP v2 refuses: '
                       + '; '.join(refusals))
  if output:
    write_package(job, output)
  return job


def write_package(job: Dict[str, Any], output: str) -> None:
  """Writes a PipelineJob (.json) or its bare PipelineSpec (.yaml/.yml)."""
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  if output.endswith(('.yaml', '.yml')):
    import yaml  # pylint: disable=g-import-not-at-top
    with open(output, 'w', encoding='utf-8') as package:
      yaml.safe_dump(job['pipelineSpec'], package, sort_keys=True)
  elif output.endswith('.json'):
    with open(output, 'w', encoding='utf-8') as package:
      json.dump(job, package, indent=2, sort_keys=True)
  else:
    raise pipeline_config.ConfigError('output', f'{output!r}: use .json or .yaml')


def split_parameters(items) -> Dict[str, Any]:
  """Parses NAME=VALUE run parameters (values as JSON where they parse)."""
  parsed = {}
  for name, text in pipeline_config.parse_assignments(
      items, '--param NAME=VALUE').items():
    try:
      parsed[name] = json.loads(text)
    except json.JSONDecodeError:
      parsed[name] = text
  return parsed
