"""DataValidationGate: stops the pipeline when ExampleValidator found anomalies.

ExampleValidator records anomalies but never fails. This gate reads them and
raises, naming each split and anomaly, so that nothing downstream (training,
pushing) runs on data that broke the schema. It also checks that every
required split was validated at all.
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.dsl.io import fileio
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

# Written by TFX's ExampleValidator in each split's directory.
ANOMALIES_FILENAME = 'SchemaDiff.pb'


class DataAnomaliesError(RuntimeError):
  """The validated data broke the schema; the message lists the anomalies."""


def load_split_anomalies(anomalies: types.Artifact,
                         split: str) -> anomalies_pb2.Anomalies:
  """Reads the Anomalies proto that ExampleValidator wrote for one split."""
  path = os.path.join(artifact_utils.get_split_uri([anomalies], split),
                      ANOMALIES_FILENAME)
  with fileio.open(path, 'rb') as anomalies_file:  # The URI may be a bucket.
    return anomalies_pb2.Anomalies.FromString(anomalies_file.read())


def describe_anomalies(split: str,
                       anomalies: anomalies_pb2.Anomalies) -> List[str]:
  """One line per anomaly of a split: where it is and what it says."""
  lines = [
      f'split {split!r}, feature {feature!r}: {info.short_description} '
      f'({info.description})'
      for feature, info in sorted(anomalies.anomaly_info.items())
  ]
  if anomalies.HasField('dataset_anomaly_info'):
    info = anomalies.dataset_anomaly_info
    lines.append(f'split {split!r}, dataset: {info.short_description} '
                 f'({info.description})')
  return lines


def find_problems(anomalies: types.Artifact,
                  required_splits: List[str]) -> List[str]:
  """Every reason the validated data must not be used, empty when clean."""
  validated = artifact_utils.decode_split_names(anomalies.split_names)
  problems = [
      f'split {split!r} is missing: only {validated} were validated'
      for split in required_splits if split not in validated
  ]
  for split in validated:
    problems.extend(describe_anomalies(split,
                                       load_split_anomalies(anomalies, split)))
  return problems


@component
def DataValidationGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    required_splits: Parameter[str] = 'train,eval,test'):
  """Raises DataAnomaliesError when the data has anomalies or lacks a split.

  Args:
    anomalies: ExampleValidator's output.
    required_splits: Comma-separated names of the splits that must exist.
  """
  problems = find_problems(
      anomalies, [name for name in required_splits.split(',') if name])
  if problems:
    raise DataAnomaliesError(
        'the data failed validation against its schema; nothing downstream runs:'
        '\n  ' + '\n  '.join(problems))
