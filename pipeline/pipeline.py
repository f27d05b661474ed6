"""The pipeline's DAG, built by one pure function from the configuration."""

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ml_metadata.proto import metadata_store_pb2
# TFX's modules, not its `tfx.v1` facade: importing `tfx.v1` also imports its
# Google Cloud extensions (google-cloud-aiplatform), which takes seconds.
from tfx.components import ExampleValidator
from tfx.components import SchemaGen
from tfx.components import StatisticsGen
from tfx.dsl.experimental.conditionals.conditional import Cond
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2
from tfx.proto import trainer_pb2

from components.data_gate.component import DataValidationGate
from components.common import metrics as evaluator_metrics
from components.evaluator.component import ServedBaselineEvaluator
from components.evaluator.eval_config import make_eval_config
from components.noise_transform.component import NoiseTransform
from components.common import names
from components.common import push_records
from components.pusher.component import AtomicPusher
from components.schema_importer.component import read_schema_text
from components.schema_importer.component import SchemaImporter
from components.served_model.component import ServedModel
from components.tfds_example_gen.component import SOURCE_FINGERPRINT_KEY
from components.serving_check.component import ServingCheck
from components.tfds_example_gen.component import TfdsExampleGen
from components.trainer.component import Trainer
from components.trainer import run_fn as trainer_run_fn
from components.visual_report.component import VisualReport
from pipeline import code_fingerprint
import pipeline_config

RUN_FN = 'components.trainer.run_fn.run_fn'
# The splits an inferred schema is not learned from: it is learned from
# `train` alone, so that validating `eval` and `test` against it checks them.
SCHEMA_UNSEEN_SPLITS = ('eval', 'test')
# Config fields that orchestrators may turn into per-run parameters (the
# components take RuntimeParameters there; TFX supports none inside TrainArgs
# or the EvalConfig, so training settings and thresholds are set when compiling).
RUNTIME_PARAMETER_FIELDS = tuple(f'noise.{name}'
                                 for name in NoiseTransform.PER_RUN_FIELDS)


def never_cached_nodes(served_fingerprint: Optional[str]) -> Tuple[str, ...]:
  """The nodes a runner must never serve from cache, whatever `enable_cache`
  says (TFX sets caching per pipeline only, so each runner applies this to
  its compiled form), given the `served_fingerprint` it built the pipeline
  with (see create_pipeline).

  Both read or write the serving dir, outside the pipeline root: a cached
  Pusher would leave a deleted or emptied serving dir empty (run again, it
  pushes only what the serving dir lacks, components/pusher), and a cached
  ServedModel would hand the Evaluator a stale baseline, unless its cache is
  keyed on what is served (a fingerprint, not None).
  """
  if served_fingerprint is None:
    return (names.SERVED_MODEL_NODE, names.PUSHER_NODE)
  return (names.PUSHER_NODE,)


def _display_path(path: str) -> str:
  """A path inside the repository, relative to it (the spec stays portable)."""
  relative = os.path.relpath(os.path.abspath(path), pipeline_config.repository_root())
  return path if relative.startswith('..') else relative


# The Beam arguments that tell TFX its Python package is already provided.
# Without one, every Beam executor builds an sdist of TFX for remote workers
# (tfx/utils/dependency_utils.py: make_beam_dependency_flags, called from
# BaseBeamExecutor.__init__): seconds, and a copy of TFX left in /tmp, per
# component and run.
_BEAM_DEPENDENCY_FLAGS = ('--extra_package', '--extra_packages', '--setup_file',
                          '--requirements_file', '--sdk_container_image',
                          '--worker_harness_container_image')
# What the DirectRunner gets instead: it stages nothing and starts no
# container (apache_beam/runners/portability/fn_api_runner/fn_runner.py sets
# an embedded or subprocess environment for every direct_running_mode), so the
# flag is read by TFX's check alone.
DIRECT_RUNNER_NO_STAGING = '--sdk_container_image=unused-by-the-direct-runner'


def beam_pipeline_args(config: pipeline_config.PipelineConfig) -> List[str]:
  """The Beam components' arguments: the config's, and on the DirectRunner
  the flag that spares TFX's sdist of itself (see _BEAM_DEPENDENCY_FLAGS)."""
  args = list(config.beam_pipeline_args)
  if config.beam_runner in pipeline_config.DIRECT_RUNNERS and not any(
      arg.split('=')[0] in _BEAM_DEPENDENCY_FLAGS for arg in args):
    args.append(DIRECT_RUNNER_NO_STAGING)
  return args


def trainer_custom_config(config: pipeline_config.PipelineConfig
                          ) -> Dict[str, Any]:
  """The settings `run_fn` reads from the config; the rest (split sizes, the
  dataset's description, the noise) its executor adds from the examples."""
  return {trainer_run_fn.TRAINING_KEY: config.training.to_json()}


def create_pipeline(config: pipeline_config.PipelineConfig,
                    metadata_connection_config: Optional[
                        metadata_store_pb2.ConnectionConfig] = None,
                    runtime_parameters: Optional[Mapping[str, Any]] = None,
                    served_fingerprint: Optional[str] = None,
                    infer_schema: bool = False
                    ) -> tfx_pipeline.Pipeline:
  """Returns the TFX pipeline for a configuration; runs nothing.

  Args:
    config: The whole configuration (see pipeline_config).
    metadata_connection_config: MLMD connection for local runs; None for
      orchestrators that bring their own (Kubeflow).
    runtime_parameters: RuntimeParameters replacing config values, keyed by
      field (one of RUNTIME_PARAMETER_FIELDS); None or {} for plain values.
    served_fingerprint: What the serving dir served when the run started
      (components.common.serving_dir.served_fingerprint), from a runner that looks
      before it runs (local): ServedModel must copy exactly that model, and
      may then come from cache while it is served (never_cached_nodes).
      None: ServedModel copies what is served when it runs, never from cache
      (Kubeflow, whose package runs later and many times).
    infer_schema: Infer the schema from the train split even when a curated
      one exists (`dae-pipeline schema`, which writes it for curation).
  """
  data = config.data
  unknown = set(runtime_parameters or ()) - set(RUNTIME_PARAMETER_FIELDS)
  if unknown:
    raise ValueError(f'no runtime parameter for {sorted(unknown)}; only for '
                     f'{RUNTIME_PARAMETER_FIELDS}')

  # Ingest the dataset through TFDS into train / eval / test tf.Examples.
  example_gen = TfdsExampleGen(data=data)

  # Compute TFDV statistics of every split.
  statistics_gen = StatisticsGen(
      examples=example_gen.outputs['examples'])

  # The schema: the curated one (schemas/<dataset>.pbtxt or schema_path),
  # imported by content; without one, inferred from the train split by TFX.
  curated_schema = (None if infer_schema
                    else pipeline_config.curated_schema_path(config))
  if curated_schema:
    schema_node = SchemaImporter(
        schema_text=read_schema_text(curated_schema),
        schema_source=_display_path(curated_schema))
    code_fingerprint.attach(schema_node, SchemaImporter.__module__)
  else:  # TFX's code alone: nothing of the project's to fingerprint.
    schema_node = SchemaGen(
        statistics=statistics_gen.outputs['statistics'],
        infer_feature_shape=True,  # image [H*W*C], label [1]: fixed shapes.
        exclude_splits=list(SCHEMA_UNSEEN_SPLITS)).with_id(names.SCHEMA_GEN_NODE)

  # Compare every split's statistics with the schema.
  example_validator = ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_node.outputs['schema'])

  # Stop here, saying why, when the data has anomalies or lacks a split.
  data_gate = DataValidationGate(
      anomalies=example_validator.outputs['anomalies'],
      required_splits='train,eval,test')

  # Add seeded noise to every split with Beam: (noisy, clean) pairs.
  noise_transform = NoiseTransform(
      examples=example_gen.outputs['examples'], spec=config.noise,
      per_run={field.partition('.')[2]: parameter
               for field, parameter in (runtime_parameters or {}).items()}
  ).with_id(names.NOISE_TRANSFORM_NODE)
  noise_transform.add_upstream_node(data_gate)

  # Train the denoising autoencoder, noisy -> clean, and export a SavedModel.
  # No num_steps: run_fn plans its steps from the split sizes the examples
  # record and the replicas it finds (TFX passes an unset num_steps to it as
  # None, tfx/components/trainer/fn_args_utils.py).
  trainer = Trainer(
      run_fn=RUN_FN,
      examples=noise_transform.outputs[names.NOISY_EXAMPLES_KEY],
      train_args=trainer_pb2.TrainArgs(splits=['train']),
      eval_args=trainer_pb2.EvalArgs(splits=['eval']),
      custom_config=trainer_custom_config(config)).with_id(names.TRAINER_NODE)

  # Copy the model served now: the baseline the candidate must not lose to
  # (none on the first push). A plain task on every orchestrator (no TFX
  # Resolver, which open-source KFP v2 refuses).
  served_model = ServedModel(
      serving_dir=config.serving_dir,
      expected_fingerprint=served_fingerprint).with_id(names.SERVED_MODEL_NODE)

  # Evaluate on the test split with TFMA; bless only above the thresholds.
  evaluator = ServedBaselineEvaluator(
      examples=noise_transform.outputs[names.NOISY_EXAMPLES_KEY],
      model=trainer.outputs['model'],
      baseline_model=served_model.outputs['model'],
      example_splits=['test'],
      eval_config=make_eval_config(config.thresholds)).with_id(names.EVALUATOR_NODE)

  # Draw the run's pictures (class grid, PSNR per class) and record its verdict's
  # facts (failed gates, the noisy input's figures), blessed or not.
  visual_report = VisualReport(
      model=trainer.outputs['model'],
      baseline_model=served_model.outputs['model'],
      examples=noise_transform.outputs[names.NOISY_EXAMPLES_KEY],
      evaluation=evaluator.outputs['evaluation'],
      blessing=evaluator.outputs['blessing']).with_id(names.VISUAL_REPORT_NODE)

  # Load a blessed model in a fresh process, as a server would, and send
  # every signature canaries from the test split; then push it, atomically,
  # as a new version of the serving dir, only if it answered (the Pusher's
  # CheckBlessing refuses an unblessed InfraBlessing), with its warm-up
  # requests (the InfraBlessing's stamped copy), and only while the serving
  # dir still serves the baseline (another run may have pushed meanwhile).
  with Cond(evaluator.outputs['blessing'].future()[0].custom_property(
      names.MODEL_BLESSED_PROPERTY) == 1):
    serving_check = ServingCheck(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        examples=noise_transform.outputs[names.NOISY_EXAMPLES_KEY],
        split='test').with_id(names.SERVING_CHECK_NODE)
    pusher = AtomicPusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        baseline_model=served_model.outputs['model'],
        evaluation=evaluator.outputs['evaluation'],
        examples=noise_transform.outputs[names.NOISY_EXAMPLES_KEY],
        infra_blessing=serving_check.outputs['blessing'],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=config.serving_dir))).with_id(names.PUSHER_NODE)

  # Key the cache of every node that runs project code on that code, so an
  # edit re-runs what it affects (see pipeline/code_fingerprint.py).
  for node, *code in ((example_gen, TfdsExampleGen.__module__),
                      (data_gate, DataValidationGate.__module__),
                      (noise_transform, NoiseTransform.__module__),
                      (trainer, RUN_FN.rpartition('.')[0], Trainer.__module__),
                      (served_model, ServedModel.__module__),
                      (evaluator, evaluator_metrics.METRICS_MODULE,
                       ServedBaselineEvaluator.__module__),
                      (visual_report, VisualReport.__module__),
                      (serving_check, ServingCheck.__module__),
                      (pusher, AtomicPusher.__module__)):
    code_fingerprint.attach(node, *code)
  # What the push record says the model was made of (components/common/push_records.py).
  pusher.exec_properties.update({
      push_records.DATASET_FINGERPRINT_KEY: push_records.digest_of(
          example_gen.exec_properties[SOURCE_FINGERPRINT_KEY]),
      push_records.MODEL_CODE_FINGERPRINT_KEY:
          trainer.exec_properties[code_fingerprint.CODE_FINGERPRINT_KEY]})

  return tfx_pipeline.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=[
          example_gen, statistics_gen, schema_node, example_validator,
          data_gate, noise_transform, trainer, served_model, evaluator,
          visual_report, serving_check, pusher
      ],
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args(config))
