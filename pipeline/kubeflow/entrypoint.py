"""The container entrypoint of every Kubeflow task: TFX's, made to work with
the open-source KFP v2 driver and launcher.

The compiled spec runs ``python -m pipeline.kubeflow.entrypoint`` with the flags of
TFX's ``kubeflow_v2_run_executor`` (written for Vertex AI Pipelines). Before
handing the ExecutorInput to TFX, this normalises the artifact types that the
OSS driver produces; after the executor, it deletes GCS directory markers.
No installed package is edited or patched: the ExecutorInput is rewritten and
TFX's own `_run_executor` runs on it.

What the OSS backend does differently (read in kubeflow/pipelines, backend
2.x; the known list is in sky-uk/kfp-operator's tfx-patch, PR #1248):

1. Input artifacts are built from MLMD (`backend/src/v2/metadata/client.go`,
   `OutputArtifact.ToRuntimeArtifact`): their type is the MLMD type's stored
   schema, which may be empty or missing, and a type registered by its
   ``system.*`` schema title (``system.Model``, ``system.Dataset``,
   ``system.Artifact``) names no TFX class (TFX's `TITLE_TO_CLASS_PATH` knows
   ``tfx.*`` titles only).
2. Properties and custom properties arrive merged into ``metadata``
   (`metadata/converter.go`, `toRuntimeArtifact`), so a ``system.*`` title is
   resolved by the metadata keys the TFX types carry (``split_names``:
   Examples, ``pushed``: PushedModel, ``blessed``: ModelBlessing, ...).
3. The component's own inputs spec (``--json_serialized_inputs_spec_args``,
   compiled by TFX) declares each input's TFX type: it is the first source
   for an input whose type is missing, empty or ``system.*``.
4. The project's own artifact type (VisualReport's DenoisingReport) has the
   schema title `mnist_dae.DenoisingReport`, the `namespace.Name` form KFP
   requires, while TFX's entrypoint imports a custom type's title as a
   class path (`kubeflow_v2_entrypoint_utils._retrieve_class_path`): the
   title is mapped to the class (PROJECT_ARTIFACT_TYPES), on both backends.
   So is `system.HTML`, KFP's own type that VisualReport's HtmlReport is
   compiled as (pipeline/kubeflow/compiler.py) so that the UIs render it.
5. TF's GCS filesystem writes zero-byte ``dir/`` marker objects; the OSS
   launcher downloads input artifacts to local paths and fails on them
   (``mkdir .../model: not a directory``, kubeflow/pipelines#13476), which
   hits the model's ``Format-Serving/`` directory first. The markers under
   every output artifact are deleted once the executor is done, so the model
   layout stays as TFX and Vertex AI expect it (no flattening).

On Vertex AI the types already name TFX classes and only 4 applies.
"""

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional

from absl import app
from absl import logging
import yaml

MODULE = 'pipeline.kubeflow.entrypoint'
TFX_TITLE_PREFIX = 'tfx.'
# The project's artifact types: schema title (TYPE_NAME) -> class path.
PROJECT_ARTIFACT_TYPES = {
    'mnist_dae.DenoisingReport': 'components.visual_report.component.DenoisingReport',
    'system.HTML': 'components.visual_report.component.HtmlReport',
}
# A system.* title's TFX type, told by the metadata keys that type carries;
# the first rule whose keys are all present wins, the last is the default.
SYSTEM_TITLE_RULES = {
    'system.Dataset': ((('split_names',), 'tfx.Examples'),
                       ((), 'tfx.Dataset')),
    'system.Model': ((('pushed',), 'tfx.PushedModel'),
                     ((), 'tfx.Model')),
    'system.Metrics': (((), 'tfx.Metrics'),),
    'system.Artifact': ((('blessed',), 'tfx.ModelBlessing'),
                        (('pushed',), 'tfx.PushedModel'),
                        (('split_names',), 'tfx.Examples')),
}


class ArtifactTypeError(ValueError):
  """An artifact's TFX type cannot be told from what the driver passed."""


def schema_title(artifact_type: Optional[Mapping[str, Any]]) -> str:
  """The title of an ArtifactTypeSchema (JSON form); '' when it has none."""
  if not artifact_type:
    return ''
  if artifact_type.get('schemaTitle'):
    return artifact_type['schemaTitle']
  instance_schema = artifact_type.get('instanceSchema') or ''
  parsed = yaml.safe_load(instance_schema) if instance_schema else None
  return (parsed or {}).get('title', '') if isinstance(parsed, dict) else ''


def _title_from_metadata(title: str, metadata: Mapping[str, Any]) -> str:
  for keys, tfx_title in SYSTEM_TITLE_RULES.get(title, ()):
    if all(key in metadata for key in keys):
      return tfx_title
  return ''


def class_title(key: str, artifact: Mapping[str, Any],
              declared: Optional[Mapping[str, Any]]) -> str:
  """The schema title TFX's entrypoint resolves to the artifact's class: a
  `tfx.*` title, or the class path of one of the project's types.

  Args:
    key: The artifact's input or output key (for the error message).
    artifact: The RuntimeArtifact as the driver passed it.
    declared: The key's ArtifactTypeSchema in the component's spec, if any.

  Raises:
    ArtifactTypeError: Nothing tells the artifact's TFX type.
  """
  title = schema_title(artifact.get('type'))
  declared_title = schema_title(declared)
  for known in (title, declared_title):
    if known.startswith(TFX_TITLE_PREFIX):
      return known
    if known in PROJECT_ARTIFACT_TYPES:
      return PROJECT_ARTIFACT_TYPES[known]
  inferred = _title_from_metadata(title, artifact.get('metadata') or {})
  if inferred:
    return inferred
  raise ArtifactTypeError(
      f'artifact {key!r} ({artifact.get("uri", "no uri")}) has type '
      f'{title or "none"!r}, which names no TFX artifact type, and the '
      'component spec declares none for it')


def normalize_executor_input(executor_input: Dict[str, Any],
                             inputs_spec: Optional[Mapping[str, Any]]) -> List[str]:
  """Gives every artifact of an ExecutorInput (JSON form) the schema title of
  its class (see class_title).

  Args:
    executor_input: The ExecutorInput, changed in place.
    inputs_spec: The component's ComponentInputsSpec (JSON form), or None.

  Returns:
    One line per artifact whose type was rewritten (for the log).
  """
  declared = (inputs_spec or {}).get('artifacts', {})
  changes = []
  for side in ('inputs', 'outputs'):
    for key, artifact_list in executor_input.get(side, {}).get('artifacts', {}).items():
      declared_type = declared.get(key, {}).get('artifactType') if side == 'inputs' else None
      for artifact in artifact_list.get('artifacts', []):
        title = class_title(f'{side}.{key}', artifact, declared_type)
        before = schema_title(artifact.get('type'))
        artifact['type'] = {'schemaTitle': title}
        if before != title:
          changes.append(f'{side}.{key}: {before or "none"} -> {title}')
  return changes


def _gcs_client():
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  return storage.Client()


def remove_directory_markers(uris: Iterable[str], client=None) -> List[str]:
  """Deletes zero-byte ``.../`` objects below gs:// URIs; returns their URIs.

  Both calls retry transient errors (429, 5xx, dropped connections) with
  google-cloud-storage's DEFAULT_RETRY: listing is idempotent and retried by
  default; a delete is retried only when it is conditional
  (`DEFAULT_RETRY_IF_GENERATION_SPECIFIED`, google/cloud/storage/retry.py),
  so each marker is deleted with `if_generation_match` its listed
  generation: a retry never deletes an object written since. A retry whose
  first attempt did delete finds the marker gone (404): that is done too.
  """
  from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
  removed = []
  for uri in uris:
    if not uri.startswith('gs://'):
      continue
    bucket_name, _, prefix = uri[len('gs://'):].partition('/')
    prefix = prefix.rstrip('/') + '/' if prefix else ''
    client = client or _gcs_client()
    bucket = client.bucket(bucket_name)
    for blob in client.list_blobs(bucket_name, prefix=prefix):
      if blob.name.endswith('/') and not blob.size:
        try:
          bucket.delete_blob(blob.name, if_generation_match=blob.generation)
        except exceptions.NotFound:
          pass
        removed.append(f'gs://{bucket_name}/{blob.name}')
  return removed


def output_uris(executor_input: Mapping[str, Any]) -> List[str]:
  """The URIs of an ExecutorInput's output artifacts."""
  return [artifact['uri']
          for artifact_list in executor_input.get('outputs', {}).get('artifacts', {}).values()
          for artifact in artifact_list.get('artifacts', []) if artifact.get('uri')]


def parse_flags(argv: List[str]):
  """TFX's entrypoint flags (the compiled spec's args are TFX's)."""
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # pylint: disable=g-import-not-at-top
  return kubeflow_v2_run_executor._parse_flags(argv)  # pylint: disable=protected-access


def main(parsed_argv) -> None:
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # pylint: disable=g-import-not-at-top
  args, beam_args = parsed_argv
  logging.set_verbosity(logging.INFO)
  executor_input = json.loads(args.json_serialized_invocation_args)
  inputs_spec = (json.loads(args.json_serialized_inputs_spec_args)
                 if getattr(args, 'json_serialized_inputs_spec_args', None) else None)
  for change in normalize_executor_input(executor_input, inputs_spec):
    logging.info('Artifact type from the OSS driver mapped: %s', change)
  args.json_serialized_invocation_args = json.dumps(executor_input)
  kubeflow_v2_run_executor._run_executor(args, beam_args)  # pylint: disable=protected-access
  removed = remove_directory_markers(output_uris(executor_input))
  if removed:
    logging.info('Deleted %d GCS directory marker(s) below the outputs',
                 len(removed))


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
