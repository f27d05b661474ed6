"""A Pusher executor that publishes versions safely, on a disk or a bucket.

TFX's stock Pusher copies the SavedModel file by file into
``<base>/<version>/``, so a model server scanning the directory can see a
half-written version, and two pushes within a second share a version and the
second is silently skipped. This executor publishes through
`components.common.serving_dir.publish`: a staged rename on a local file system, a
copy with ``saved_model.pb`` last on an object store (see that module for why
a server never loads a half-written version and what a killed push leaves).
The destination and version are recorded on the PushedModel artifact in MLMD,
as the stock Pusher does.

A model byte-identical to the newest served version is not pushed again (a
re-run whose Evaluator re-blesses the same model against itself as baseline
must not add a version): the artifact records `pushed = 0` and the version
already serving it. The pipeline never serves the Pusher from cache, so a
re-run pushes the blessed model again when the serving dir lost it, and only
then.

Each version pushed gets its push record (components/common/push_records.py),
written before the version's files: the evaluation's headline metrics and
worst class, the baseline it beat, the run, data and code fingerprints, and
what the figures were measured on: the dataset, its image shape and the
noise of the test split, read from the `examples` input (NoiseTransform's
output, which the Evaluator ran on). They come from the artifact, not from an
execution property set when the pipeline is built: on Kubeflow the noise
settings are run-time parameters (pipeline.RUNTIME_PARAMETER_FIELDS), known
only once NoiseTransform ran and recorded them on its output, and KFP hands
an artifact's custom properties to the tasks downstream as any local run
does.

Compare-and-push: the Evaluator blessed the candidate against the model
ServedModel copied when its task ran (the `baseline_model` input, recording
its `served_version`, '' for nothing served). Another run may have pushed
since. Right before publishing, under the serving dir's push lock
(components/common/serving_lock.py), the executor re-reads the newest complete
version and publishes only if it is still that baseline (or both are
nothing); otherwise it pushes nothing and records why on the PushedModel
(`not_pushed_reason`, `served_changed_to`): the next run evaluates against
the new model. The check and the write happen under one lock, so between
pushers that take it (this executor, on a local path or gs://) nothing can
come in between; what remains is a writer that ignores the lock (a hand copy
into the serving dir, a pusher on s3://, which has no lock here), for the
time the publish takes (a copy of a few MB: seconds).
"""

from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import path_utils
from tfx.utils import proto_utils

from components.common import dataset_info as dataset_info_lib
from components.common import names
from components.common import noise as noise_lib
from components.common import push_records
from components.common import serving_dir
from components.common import serving_lock
from components.common import evaluation as evaluation_lib

ALREADY_SERVED_VERSION_KEY = names.ALREADY_SERVED_VERSION_PROPERTY
# The optional input with the Evaluator's evaluation (component.py).
EVALUATION_KEY = 'evaluation'
# The ServedModel's output: what the candidate was evaluated against.
BASELINE_MODEL_KEY = 'baseline_model'
# The optional input with the examples the Evaluator ran on (NoiseTransform's).
EXAMPLES_KEY = 'examples'
# Recorded on the PushedModel when the served version changed since then.
NOT_PUSHED_REASON_KEY = names.NOT_PUSHED_REASON_PROPERTY
SERVED_CHANGED_TO_KEY = 'served_changed_to'


def _describe(version: str) -> str:
  return f'version {version}' if version else 'nothing'


def _baseline_version(input_dict: Dict[str, List[types.Artifact]]
                      ) -> Optional[str]:
  """The served version the candidate was evaluated against ('' for nothing
  served), or None for a Pusher given no baseline."""
  baselines = input_dict.get(BASELINE_MODEL_KEY) or []
  if not baselines:
    return None
  baseline = artifact_utils.get_single_instance(baselines)
  key = names.SERVED_VERSION_PROPERTY
  if not baseline.has_custom_property(key):
    raise ValueError(
        f'the baseline model {baseline.uri} records no {key!r} (not an output '
        'of ServedModel?); nothing was pushed')
  return baseline.get_string_custom_property(key)


def _measured_on(input_dict: Dict[str, List[types.Artifact]]
                 ) -> Dict[str, Any]:
  """{dataset, image_shape, noise, class_names} of the push record: what the
  examples the Evaluator ran on recorded (empty values where the Pusher has
  no examples or they recorded nothing: a record without them is still a
  record)."""
  examples_list = input_dict.get(EXAMPLES_KEY) or []
  if not examples_list:
    return {}
  examples = artifact_utils.get_single_instance(examples_list)
  measured = {}
  try:
    info = dataset_info_lib.recorded(examples)
    measured.update(dataset=info.name, image_shape=list(info.image_shape),
                    class_names=info.class_names)
  except dataset_info_lib.MissingDatasetInfo as error:
    logging.warning('The push record names no dataset: %s', error)
  spec_json = noise_lib.recorded_spec_json(examples)
  if spec_json is None:
    logging.warning('The push record names no noise: examples %s carry no %r '
                    'property (not written by NoiseTransform?)', examples.uri,
                    names.NOISE_SPEC_PROPERTY)
  else:
    measured['noise'] = noise_lib.describe(noise_lib.NoiseSpec.from_json(spec_json))
  return measured


class Executor(pusher_executor.Executor):
  """Pushes a blessed model to a filesystem serving directory atomically."""

  def GetModelPath(self, input_dict: Dict[str, List[types.Artifact]]) -> str:
    """The InfraBlessing's stamped model (the model with its warm-up
    requests, components/serving_check) when it has one, else TFX's choice
    (which prefers the Trainer's model whenever `model` is an input)."""
    infra_blessings = input_dict.get(standard_component_specs.INFRA_BLESSING_KEY)
    if infra_blessings:
      infra_blessing = artifact_utils.get_single_instance(infra_blessings)
      if infra_blessing.get_int_custom_property(names.INFRA_HAS_MODEL_PROPERTY) == 1:
        return path_utils.stamped_model_path(infra_blessing.uri)
    return super().GetModelPath(input_dict)

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    push_destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
        push_destination)
    if push_destination.WhichOneof('destination') != 'filesystem':
      raise NotImplementedError('only filesystem push destinations are supported')
    model_path = self.GetModelPath(input_dict)
    base_directory = push_destination.filesystem.base_directory
    compared_with = _baseline_version(input_dict)
    # Built before the lock (it reads the evaluation): the lock is held for
    # the decision and the publish only.
    record = self._push_record(input_dict, exec_properties, model_push,
                               compared_with)
    with serving_lock.hold(base_directory):
      # From here to the end of publish, no other pusher decides or writes.
      served = serving_dir.newest_complete_version(base_directory)
      if compared_with is not None and (served or '') != compared_with:
        self._MarkServedChanged(model_push, base_directory, served or '',
                                compared_with)
        return
      if served and serving_dir.directory_digest(model_path) == (
          serving_dir.directory_digest(
              serving_dir.version_path(base_directory, served))):
        logging.info('The model is already served as version %s; not pushed '
                     'again', served)
        self._MarkNotPushed(model_push)
        model_push.set_string_custom_property(ALREADY_SERVED_VERSION_KEY,
                                              served)
        return
      # After the check above: a model rolled forward to on purpose is served.
      rolled_back = push_records.rolled_back_version(base_directory, model_path)
      if rolled_back:
        self._MarkRolledBack(model_push, *rolled_back)
        return
      serving_path = push_records.publish_with_record(
          model_path, base_directory, record)
    logging.info('Model pushed to %s', serving_path)
    serving_dir.copy_tree(model_path, model_push.uri)  # The archive copy in MLMD.
    self._MarkPushed(model_push, pushed_destination=serving_path,
                     pushed_version=serving_path.rstrip('/').rpartition('/')[2])

  def _MarkServedChanged(self, model_push: types.Artifact, base_directory: str,
                         served: str, compared_with: str) -> None:
    """Records (and logs) that another push changed the served model since
    the candidate was evaluated."""
    reason = (f'{base_directory} serves {_describe(served)} now, not '
              f'{_describe(compared_with)} as when this candidate was '
              'evaluated (another run pushed meanwhile?); the next run '
              'evaluates against what is served')
    logging.warning('Not pushed: %s', reason)
    self._MarkNotPushed(model_push)
    model_push.set_string_custom_property(NOT_PUSHED_REASON_KEY, reason)
    model_push.set_string_custom_property(SERVED_CHANGED_TO_KEY, served)

  def _MarkRolledBack(self, model_push: types.Artifact, version: str,
                      rollback: str) -> None:
    """Records (and logs) that the candidate is a model a rollback took out
    of service."""
    reason = (f'this model is version {version}, which the rollback published '
              f'as version {rollback} took out of service; not pushed again '
              f'(serve it on purpose with: dae-pipeline rollback {version})')
    logging.warning('Not pushed: %s', reason)
    self._MarkNotPushed(model_push)
    model_push.set_string_custom_property(NOT_PUSHED_REASON_KEY, reason)

  def _push_record(self, input_dict: Dict[str, List[types.Artifact]],
                   exec_properties: Dict[str, Any],
                   model_push: types.Artifact,
                   compared_with: Optional[str]) -> push_records.PushRecord:
    """The record of this push (before publishing: bad input fails first);
    its baseline is `compared_with`, the version ServedModel copied (none
    for '' or a Pusher given no baseline)."""
    evaluation = input_dict.get(EVALUATION_KEY)
    run_id, orchestrator = push_records.run_identity(
        self._context.pipeline_run_id if self._context else None, model_push.uri)
    return push_records.for_push(
        evaluation_lib.read_evaluation(evaluation[0].uri) if evaluation else None,
        compared_with or None,
        run_id, orchestrator,
        dataset_fingerprint=exec_properties.get(
            push_records.DATASET_FINGERPRINT_KEY, ''),
        code_fingerprint=exec_properties.get(
            push_records.MODEL_CODE_FINGERPRINT_KEY, ''),
        **_measured_on(input_dict))

