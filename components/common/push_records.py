"""Push records: what each version of a serving dir is, kept beside it.

Every version the Pusher publishes (and every rollback) gets a small JSON
file, ``<serving_dir>/.push-records/<version>.json``: when it was pushed, its
headline test metrics, its worst class, the served version it beat and by
how much, the run that produced it (and on which orchestrator),
fingerprints of its data and code, and what its figures were measured on:
the dataset, its image shape and the noise of its test split (figures on
two noises or datasets do not compare). The records live in the serving dir, not
in MLMD, so `dae-pipeline models` and `rollback` read them wherever the
versions are (a disk or a bucket), also after a Kubeflow run whose MLMD is
the cluster's. TF Serving ignores the directory: it loads numeric version
directories only.

A record is written before any file of its version is copied
(`publish_with_record`), so a complete version never lacks the record of its
push; a failed push removes it again. Readers still tolerate both gaps: a
version copied in by hand has no record, and a push killed mid-copy leaves a
record beside an incomplete version (or none), which a push deletes once its
version is gone and older than serving_dir.INCOMPLETE_GRACE_S.
"""

import dataclasses
import datetime
import hashlib
import json
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import logging
from tfx.dsl.io import fileio

from components.common import names

from components.common import serving_dir
from components.common import evaluation as evaluation_lib

RECORDS_DIRNAME = names.PUSH_RECORDS_DIRNAME
RECORD_SUFFIX = '.json'
# The evaluation's overall metrics a record keeps.
HEADLINE_METRICS = ('psnr', 'ssim', 'mse')
# Execution properties pipeline.py adds to the Pusher: fingerprints (SHA-256)
# of the data source (of TfdsExampleGen's, digest_of) and of the code that
# trained the model (the Trainer's code_fingerprint).
DATASET_FINGERPRINT_KEY = 'dataset_fingerprint'
MODEL_CODE_FINGERPRINT_KEY = 'model_code_fingerprint'
# Where a pushed model's run ran.
LOCAL = 'local'
KUBEFLOW = 'kubeflow'


@dataclasses.dataclass(frozen=True)
class PushRecord:
  """What one version of the serving dir is.

  Attributes:
    version: The version directory's name.
    pushed_at: When it was published, UTC, ISO 8601.
    metrics: {metric: value} of the model on the test split (HEADLINE_METRICS
      that the evaluation had); {} when unknown.
    worst_class: The label of the class with the lowest PSNR (None: no
      per-class metrics).
    worst_class_psnr: That class's PSNR in dB.
    worst_class_name: That class's name in its dataset ('' when unknown).
    baseline_version: The served version the model was compared with and
      beat (None: nothing was served, or it is not known).
    psnr_gain_db: The model's PSNR minus the baseline's, in dB.
    run_id: The pipeline run that produced the model.
    orchestrator: Where that run ran: LOCAL or KUBEFLOW.
    dataset_fingerprint: Fingerprint of the data source it was trained on.
    code_fingerprint: Fingerprint of the project code that trained it.
    dataset: The name of the dataset its metrics were measured on (the
      examples' DatasetInfo name); '' when unknown (an older record).
    image_shape: [height, width, channels] of that dataset's images; []
      when unknown.
    noise: The noise of the test split its metrics (and its gain over the
      baseline) were measured on, e.g. 'gaussian stddev=0.5'
      (components.common.noise.describe); '' when unknown.
    rollback_of: For a rollback: the version this one is a copy of (its
      other fields are that version's); None for a push.
    rolled_back_from: For a rollback: the version served when it was made,
      which it took out of service (the Pusher does not push that model
      again, rolled_back_version); None for a push.
  """
  version: str
  pushed_at: str
  metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
  worst_class: Optional[int] = None
  worst_class_psnr: Optional[float] = None
  worst_class_name: str = ''
  baseline_version: Optional[str] = None
  psnr_gain_db: Optional[float] = None
  run_id: str = ''
  orchestrator: str = ''
  dataset_fingerprint: str = ''
  code_fingerprint: str = ''
  dataset: str = ''
  image_shape: List[int] = dataclasses.field(default_factory=list)
  noise: str = ''
  rollback_of: Optional[str] = None
  rolled_back_from: Optional[str] = None

  def __post_init__(self):
    # JSON gives a list, a caller may give DatasetInfo's tuple: one form.
    if not isinstance(self.image_shape, (list, tuple)):
      raise TypeError(f'image_shape {self.image_shape!r} is not a list of sides')
    object.__setattr__(self, 'image_shape', [int(side) for side in self.image_shape])

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'PushRecord':
    """A record read back; fields it lacks take their defaults, fields this
    code does not know (a newer writer's) are ignored.

    Raises:
      ValueError: not a JSON object with a version and a push time.
    """
    values = json.loads(text)
    if not isinstance(values, dict) or not {'version', 'pushed_at'} <= set(values):
      raise ValueError('not a push record (no version or pushed_at)')
    known = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in values.items() if name in known})


def digest_of(text: str) -> str:
  """SHA-256 (hex) of a fingerprint of any form ('' stays ''): one short,
  comparable name for a data source (TfdsExampleGen's source fingerprint
  lists each file's digest)."""
  return hashlib.sha256(text.encode()).hexdigest() if text else ''


def utc_now() -> str:
  """The current time, UTC, ISO 8601 to the second."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def records_directory(base_directory: str) -> str:
  return f'{base_directory.rstrip("/")}/{RECORDS_DIRNAME}'


def record_path(base_directory: str, version: str) -> str:
  return f'{records_directory(base_directory)}/{version}{RECORD_SUFFIX}'


def write(base_directory: str, record: PushRecord) -> str:
  """Writes a version's record; returns its path."""
  fileio.makedirs(records_directory(base_directory))
  path = record_path(base_directory, record.version)
  with fileio.open(path, 'w') as record_file:
    record_file.write(record.to_json())
  return path


def remove(base_directory: str, version: str) -> None:
  path = record_path(base_directory, version)
  if fileio.exists(path):
    fileio.remove(path)


def read(base_directory: str, version: str) -> Optional[PushRecord]:
  """A version's record; None when it has none or it is unreadable (logged:
  a listing goes on without it)."""
  path = record_path(base_directory, version)
  if not fileio.exists(path):
    return None
  with fileio.open(path, 'r') as record_file:
    text = record_file.read()
  try:
    return PushRecord.from_json(text)
  except (ValueError, TypeError) as error:
    logging.warning('Ignored the unreadable push record %s: %s', path, error)
    return None


def read_all(base_directory: str) -> Dict[str, PushRecord]:
  """{version: record} of every readable record, with or without a version."""
  directory = records_directory(base_directory)
  if not fileio.exists(directory):
    return {}
  records = {}
  for name in fileio.listdir(directory):
    version = name.rstrip('/')[:-len(RECORD_SUFFIX)]
    if name.endswith(RECORD_SUFFIX) and version.isdigit():
      record = read(base_directory, version)
      if record is not None:
        records[version] = record
  return records


def remove_orphan_records(base_directory: str,
                          grace_s: float = serving_dir.INCOMPLETE_GRACE_S) -> List[str]:
  """Deletes the records of versions that are gone (a push killed before its
  rename, an incomplete version deleted) once older than `grace_s`, as
  serving_dir.remove_incomplete_versions does; returns their versions."""
  present = set(serving_dir.versions(base_directory))
  now = time.time()
  orphans = [version for version in read_all(base_directory)
             if version not in present and int(version) < now - grace_s]
  for version in orphans:
    remove(base_directory, version)
  return orphans


def publish_with_record(model_path: str, base_directory: str,
                        record: PushRecord) -> str:
  """Publishes a SavedModel as a new version (serving_dir.publish) with its
  record (`record` with the version publish picks), written before any of
  the model's files; a failed publish removes it. Returns the version's
  directory."""
  remove_orphan_records(base_directory)
  written = []

  def write_record(version: str) -> None:
    write(base_directory, dataclasses.replace(record, version=version))
    written.append(version)

  try:
    return serving_dir.publish(model_path, base_directory, before_copy=write_record)
  except BaseException:
    for version in written:
      # An interruption after the version became complete keeps its record.
      if not serving_dir.is_complete(
          serving_dir.version_path(base_directory, version)):
        remove(base_directory, version)
    raise


def headline_metrics(evaluation: Dict[str, Any], model: str) -> Dict[str, float]:
  """HEADLINE_METRICS of one model ('candidate' or 'baseline') in an
  evaluation as components.common.evaluation.read_evaluation returns it."""
  overall = evaluation.get('overall', {}).get(model, {})
  return {name: overall[name] for name in HEADLINE_METRICS if name in overall}


def worst_class(evaluation: Dict[str, Any], model: str
                ) -> Tuple[Optional[int], Optional[float]]:
  """(label, PSNR) of the class where `model` has its lowest PSNR; (None,
  None) for an evaluation without per-class metrics."""
  by_class = evaluation.get('by_class', {}).get(model, {}).get('psnr', {})
  if not by_class:
    return None, None
  label = min(by_class, key=by_class.get)
  return int(label), by_class[label]


def run_identity(pipeline_run_id: Optional[str], pushed_model_uri: str
                 ) -> Tuple[str, str]:
  """(run id, orchestrator) of the Pusher's run.

  TFX's portable launcher (LocalDagRunner) gives executors the run id in
  their context; its Kubeflow v2 entrypoint does not
  (tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py
  builds a Context without pipeline_run_id). There the run is named by the
  output's URI, which KFP's driver lays out as
  ``<root>/<pipeline>/<run>/<task>/<salt>/<key>`` (tests/kfp checks this).
  """
  if pipeline_run_id:
    return pipeline_run_id, LOCAL
  parts = pushed_model_uri.rstrip('/').split('/')
  return (parts[-4] if len(parts) >= 5 else ''), KUBEFLOW


def for_push(evaluation: Optional[Dict[str, Any]], baseline: Optional[str],
             run_id: str, orchestrator: str,
             dataset_fingerprint: str = '', code_fingerprint: str = '',
             dataset: str = '', image_shape: Sequence[int] = (),
             noise: str = '', class_names: Sequence[str] = (),
             pushed_at: Optional[str] = None) -> PushRecord:
  """The record of a push (its version filled in by publish_with_record).

  Args:
    evaluation: The Evaluator's metrics (read_evaluation), None if unknown.
    baseline: The served version the model beat (None: nothing was served).
    run_id: See run_identity.
    orchestrator: See run_identity.
    dataset_fingerprint: Of the data source.
    code_fingerprint: Of the code that trained the model.
    dataset: The name of the dataset the evaluation ran on.
    image_shape: Its images' [height, width, channels].
    noise: The noise of the test split the evaluation ran on (both the
      candidate's and the baseline's figures are on it).
    class_names: The dataset's class names, by label (names the worst class).
    pushed_at: The push time (default: now).
  """
  evaluation = evaluation or {}
  metrics = headline_metrics(evaluation, evaluation_lib.CANDIDATE)
  label, label_psnr = worst_class(evaluation, evaluation_lib.CANDIDATE)
  beaten = headline_metrics(evaluation, evaluation_lib.BASELINE)
  gain = (metrics['psnr'] - beaten['psnr']
          if baseline and 'psnr' in metrics and 'psnr' in beaten else None)
  return PushRecord(
      version='', pushed_at=pushed_at or utc_now(), metrics=metrics,
      worst_class=label, worst_class_psnr=label_psnr,
      worst_class_name=(str(class_names[label]) if label is not None
                        and 0 <= label < len(class_names) else ''),
      baseline_version=baseline, psnr_gain_db=gain, run_id=run_id,
      orchestrator=orchestrator, dataset_fingerprint=dataset_fingerprint,
      code_fingerprint=code_fingerprint, dataset=dataset,
      image_shape=list(image_shape), noise=noise)


def for_rollback(original: Optional[PushRecord], rollback_of: str,
                 rolled_back_from: Optional[str] = None,
                 pushed_at: Optional[str] = None) -> PushRecord:
  """The record of a rollback to version `rollback_of` from the served
  version `rolled_back_from`: its model, metrics, run, fingerprints and what
  the metrics were measured on (`original`, its record; None: it has none), a new push time, and no
  baseline (it beat nothing)."""
  kept = original or PushRecord(version='', pushed_at='')
  return dataclasses.replace(kept, version='', pushed_at=pushed_at or utc_now(),
                             baseline_version=None, psnr_gain_db=None,
                             rollback_of=rollback_of,
                             rolled_back_from=rolled_back_from)


def rolled_back_version(base_directory: str, model_path: str
                        ) -> Optional[Tuple[str, str]]:
  """(version, rollback) when the model at `model_path` has the files of a
  version that a rollback took out of service; None otherwise.

  A run after a rollback may bless that very model again (its Trainer from
  cache, the same data and code): pushing it would undo the rollback without
  a word, so the Pusher refuses it (`dae-pipeline rollback VERSION` serves it
  again on purpose).
  """
  rollbacks = [(record.rolled_back_from, version)
               for version, record in read_all(base_directory).items()
               if record.rolled_back_from]
  if not rollbacks:
    return None
  digest = serving_dir.directory_digest(model_path)
  for rolled_back, rollback in sorted(rollbacks, key=lambda pair: int(pair[1])):
    version_path = serving_dir.version_path(base_directory, rolled_back)
    if serving_dir.is_complete(version_path) and (
        serving_dir.directory_digest(version_path) == digest):
      return rolled_back, rollback
  return None
