"""The serving dir's versions: their history (`dae-pipeline models`) and
rollback (`dae-pipeline rollback`), from the push records beside them
(components/common/push_records.py), on a disk or a bucket, without MLMD.

Which version is served: TF Serving's default version policy, `latest`
with one version (tensorflow/serving,
`tensorflow_serving/sources/storage_path/file_system_storage_path_source.proto`,
ServableVersionPolicy.Latest: "Serve the latest versions (i.e. the ones with
the highest version numbers), among those found on disk. This is the default
policy, with the default number of versions as 1."). A version loads only
once its ``saved_model.pb`` is there, so the served one is the newest
complete version (serving_dir.newest_complete_version).

A rollback therefore publishes a copy of the older version as a new,
highest version, through serving_dir.publish (the Pusher's rules: never a
half-copied version loadable), with a record saying what it is a rollback
of. (TF Serving's `specific` policy could pin an old version instead, but
that is the model server's configuration, not the serving dir's: every
server would need it changed, and the next push would be ignored.)
"""

import dataclasses
from typing import List, Optional, Tuple

from components.common import push_records
from components.common import serving_dir
from components.common import serving_lock

SERVED_MARK = '*'
SHORT_FINGERPRINT = 7  # Hex digits of a fingerprint a listing shows.
UNKNOWN = '?'  # A cell of what an older record does not say.
NOT_COMPARABLE = 'not comparable'
# What the columns of `models` mean, below the table.
LEGEND = (
    f"{SERVED_MARK} served now: the highest complete version (TF Serving's "
    'default version policy).',
    'PSNR (dB) and SSIM: on the test split of DATASET under NOISE; figures '
    'on another dataset or noise do not compare.',
    f'VS SERVED: PSNR minus the served version\'s; "{NOT_COMPARABLE}" when '
    'measured on another dataset or noise.',
    'BEAT: the version served when it was pushed, and the gain over it, both '
    "measured on this row's DATASET and NOISE.",
    'DATA/CODE: fingerprints of the data source and the training code. '
    f'{UNKNOWN}: not recorded (an older push).')
# The columns of `models`, each as wide as its widest cell (the last unpadded).
COLUMNS = ('', 'VERSION', 'PUSHED AT (UTC)', 'DATASET', 'NOISE', 'PSNR', 'SSIM',
           'VS SERVED', 'WORST CLASS', 'BEAT', 'RUN', 'DATA/CODE')


class RollbackRefused(ValueError):
  """A rollback that would serve nothing new or nothing loadable."""


@dataclasses.dataclass(frozen=True)
class VersionEntry:
  """One version directory of the serving dir.

  Attributes:
    version: Its name (a number).
    complete: Whether a model server can load it (saved_model.pb is there).
    served: Whether it is the one served now (the newest complete version).
    record: Its push record; None for a version copied in by hand.
  """
  version: str
  complete: bool
  served: bool
  record: Optional[push_records.PushRecord]


def list_versions(base_directory: str) -> List[VersionEntry]:
  """Every version directory, newest first, with its record (records of
  versions no longer there, interrupted pushes, are left out)."""
  records = push_records.read_all(base_directory)
  served = serving_dir.newest_complete_version(base_directory)
  return [VersionEntry(
      version=version,
      complete=serving_dir.is_complete(
          serving_dir.version_path(base_directory, version)),
      served=version == served, record=records.get(version))
          for version in reversed(serving_dir.versions(base_directory))]


def _number(value: Optional[float], places: int) -> str:
  return '-' if value is None else f'{value:.{places}f}'


def _pushed_at(record: push_records.PushRecord) -> str:
  """'2026-12-02 12:41:04' of an ISO time (as it is when not ISO)."""
  return record.pushed_at.replace('T', ' ')[:19]


def _beat(record: push_records.PushRecord) -> str:
  """What the version beat and by how much, as the Evaluator measured it:
  both models on this version's test data, its row's DATASET and NOISE
  (not where the baseline's own row was measured when those differ); or
  what it is a rollback of."""
  if record.rollback_of:
    return f'rollback of {record.rollback_of}'
  if not record.baseline_version:
    return 'first push'
  if record.psnr_gain_db is None:
    return record.baseline_version
  return f'{record.baseline_version} {record.psnr_gain_db:+.2f} dB'


def measured_on(record: Optional[push_records.PushRecord]
                ) -> Optional[Tuple[str, Tuple[int, ...], str]]:
  """(dataset, image shape, noise) a record's figures were measured on;
  None when it does not say (no record, or one older than these fields):
  such figures compare with nothing."""
  if record is None or not (record.dataset and record.image_shape and record.noise):
    return None
  return record.dataset, tuple(record.image_shape), record.noise


def comparable(first: Optional[push_records.PushRecord],
               second: Optional[push_records.PushRecord]) -> bool:
  """Whether two versions' figures compare: measured on the same dataset
  (name and image shape) under the same noise, both known. PSNR on
  salt-and-pepper noise and on Gaussian noise are two scales."""
  where = measured_on(first)
  return where is not None and where == measured_on(second)


def _dataset(record: push_records.PushRecord) -> str:
  """'mnist 28x28x1'; UNKNOWN for an older record."""
  if not record.dataset:
    return UNKNOWN
  shape = 'x'.join(str(side) for side in record.image_shape)
  return f'{record.dataset} {shape}' if shape else record.dataset


def _versus_served(record: push_records.PushRecord,
                   served: Optional[push_records.PushRecord]) -> str:
  """The version's PSNR minus the served version's, only between figures
  measured on the same dataset and noise (NOT_COMPARABLE otherwise)."""
  if served is None or record is served:
    return '-'
  if not comparable(record, served):
    return NOT_COMPARABLE
  psnr, served_psnr = record.metrics.get('psnr'), served.metrics.get('psnr')
  if psnr is None or served_psnr is None:
    return '-'
  return f'{psnr - served_psnr:+.2f} dB'


def _worst(record: push_records.PushRecord) -> str:
  if record.worst_class is None:
    return '-'
  name = record.worst_class_name or record.worst_class
  return f'{name} ({_number(record.worst_class_psnr, 2)} dB)'


def _run(record: push_records.PushRecord) -> str:
  return f'{record.orchestrator or "?"}:{record.run_id or "?"}'


def _fingerprints(record: push_records.PushRecord) -> str:
  return '/'.join(fingerprint[:SHORT_FINGERPRINT] or '-' for fingerprint in (
      record.dataset_fingerprint, record.code_fingerprint))


def _cells(entry: VersionEntry,
           served: Optional[push_records.PushRecord]) -> Tuple[str, ...]:
  """A row's cells; `served` is the served version's record (None: nothing
  served, or it has none). An empty cell would leave a gap under its header:
  every cell says something ('-' for nothing)."""
  mark = SERVED_MARK if entry.served else ''
  if not entry.complete:
    return (mark, entry.version, 'incomplete: a push in progress or '
            'interrupted (never served)')
  record = entry.record
  if record is None:
    return (mark, entry.version, 'no push record (copied in by hand?)')
  return (mark, entry.version, _pushed_at(record) or '-', _dataset(record),
          record.noise or UNKNOWN,
          _number(record.metrics.get('psnr'), 2),
          _number(record.metrics.get('ssim'), 4),
          _versus_served(record, served), _worst(record),
          _beat(record), _run(record), _fingerprints(record))


def _line(cells: Tuple[str, ...], widths: List[int]) -> str:
  padded = [cell.ljust(width) if index < len(cells) - 1 else cell
            for index, (cell, width) in enumerate(zip(cells, widths))]
  return '  '.join(padded).rstrip()


def format_versions(base_directory: str, entries: List[VersionEntry]) -> str:
  """The `models` listing: one row per version, newest first, each column
  as wide as its widest cell (a row with a note instead of figures runs on in
  its last cell); then a blank line and the LEGEND."""
  if not entries:
    return f'no versions in {base_directory}'
  served = next((entry.record for entry in entries if entry.served), None)
  rows = [_cells(entry, served) for entry in entries]
  widths = [max(len(row[index]) for row in [COLUMNS] + rows
                if len(row) == len(COLUMNS) or index < len(row) - 1)
            for index in range(len(COLUMNS))]
  lines = [_line(COLUMNS, widths)] + [_line(row, widths) for row in rows]
  # After a blank line: a reader of the table stops at the first one.
  lines += ['', *LEGEND]
  return '\n'.join(lines)


def _older_than(entries: List[VersionEntry], version: str) -> Optional[str]:
  """The newest complete version older than `version`, or None."""
  return next((entry.version for entry in entries
               if entry.complete and int(entry.version) < int(version)), None)


def rollback_target(entries: List[VersionEntry],
                    version: Optional[str] = None) -> str:
  """The version a rollback serves again: `version`, or the one before the
  served one. When the served one is itself a rollback of N, that is the
  version before N (rolling back again goes further back, not back to what
  was rolled back).

  Raises:
    RollbackRefused: nothing is served, `version` is unknown, incomplete or
      the one served, or there is nothing older to roll back to.
  """
  served = next((entry for entry in entries if entry.served), None)
  if served is None:
    raise RollbackRefused('nothing is served: no complete version to roll back from')
  if version is None:
    start = (served.record.rollback_of if served.record and
             served.record.rollback_of else served.version)
    target = _older_than(entries, start)
    if target is None:
      raise RollbackRefused(f'no complete version older than {start} to roll back to')
    return target
  found = next((entry for entry in entries if entry.version == version), None)
  if found is None:
    known = ', '.join(entry.version for entry in entries)
    raise RollbackRefused(f'no version {version} (versions: {known})')
  if not found.complete:
    raise RollbackRefused(f'version {version} is incomplete (no saved_model.pb): '
                          'it cannot be served')
  if found.served:
    raise RollbackRefused(f'version {version} is already the one served')
  return version


def rollback(base_directory: str, version: Optional[str] = None
             ) -> Tuple[str, str]:
  """Serves an earlier version again as a new, highest version (see the
  module doc); returns (new version, the version it copies).

  Raises:
    RollbackRefused: see rollback_target, or the target holds exactly the
      model served now (serving it again would change nothing).
  """
  # Under the Pusher's lock: a push cannot land between the choice of the
  # target and its publication (components/common/serving_lock.py).
  with serving_lock.hold(base_directory):
    entries = list_versions(base_directory)
    target = rollback_target(entries, version)
    served = next(entry.version for entry in entries if entry.served)
    target_path = serving_dir.version_path(base_directory, target)
    if serving_dir.directory_digest(target_path) == serving_dir.directory_digest(
        serving_dir.version_path(base_directory, served)):
      raise RollbackRefused(f'version {target} holds the model served now (as '
                            f'version {served}): nothing to roll back')
    record = push_records.for_rollback(
        push_records.read(base_directory, target), rollback_of=target,
        rolled_back_from=served)
    published = push_records.publish_with_record(target_path, base_directory,
                                                 record)
  return published.rstrip('/').rpartition('/')[2], target
