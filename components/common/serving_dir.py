"""The serving directory: numbered SavedModel versions, on a disk or a bucket.

Layout, as TF Serving reads it: ``<base>/<version>/saved_model.pb`` (plus
``variables/`` and ``assets/``), versions being decimal numbers, the highest
served. A version is *complete* when its ``saved_model.pb`` exists: a model
server cannot load a directory without it.

Publishing a version (`publish`) is safe on both kinds of storage:

* A local or POSIX path: the SavedModel is copied into a hidden staging
  directory beside the versions (servers skip non-numeric names) and renamed
  to its version number, which is atomic there.
* An object store (any ``scheme://``): "renaming" a directory there is a copy
  and delete per object (gs://, s3://) or not supported at all (TF's modular
  GCS filesystem), so nothing is gained by staging. The files are copied
  straight into ``<base>/<version>/``, ``saved_model.pb`` last: until it
  lands, the version is incomplete and a server polling the bucket fails to
  load it and keeps serving the previous one (TF Serving retries failed loads
  and its default availability-preserving policy unloads the old version only
  once the new one is ready). A push killed mid-copy leaves an incomplete
  version, which nothing loads and the next push deletes once it is older
  than `INCOMPLETE_GRACE_S` (versions are Unix timestamps, so their names say
  their age; a push in progress elsewhere is younger than that).

All I/O goes through TFX's `fileio` (TensorFlow's filesystems), so the same
code serves local paths, gs:// and s3://.
"""

import hashlib
import os
import socket
import time
from typing import Callable, List, Optional

from absl import logging
from tfx.dsl.io import fileio

SAVED_MODEL_FILENAME = 'saved_model.pb'
# TF Serving's extras of a version (warm-up requests), not part of the model:
# the serving check's stamped copy adds them to the Trainer's model.
SERVING_EXTRAS_DIRNAME = 'assets.extra'
STAGING_PREFIX = '.staging-'
# Incomplete versions younger than this may be a push in progress (seconds).
INCOMPLETE_GRACE_S = 3600
# `served_fingerprint` of a serving dir that serves nothing.
NOTHING_SERVED = ''


def is_object_store(path: str) -> bool:
  """Whether `path` is a URI of an object store (gs://, s3://, ...)."""
  return '://' in path


def holds_model(model) -> bool:
  """Whether a Model artifact (of ServedModel or a Trainer) holds a SavedModel."""
  # Imported here: the CLI reads serving dirs without TFX's artifact types.
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  return is_complete(path_utils.serving_model_path(model.uri))


def _names(directory: str) -> List[str]:
  """Entries of a directory, without gs://'s trailing '/' on directories."""
  if not fileio.exists(directory):
    return []
  return [name.rstrip('/') for name in fileio.listdir(directory)]


def version_path(base_directory: str, version: str) -> str:
  """The directory of one version."""
  return f'{base_directory.rstrip("/")}/{version}'


def is_complete(version_directory: str) -> bool:
  """Whether a version directory holds a loadable SavedModel."""
  return fileio.exists(f'{version_directory.rstrip("/")}/{SAVED_MODEL_FILENAME}')


def versions(base_directory: str) -> List[str]:
  """The numeric version directories present, complete or not, oldest first."""
  return sorted((name for name in _names(base_directory) if name.isdigit()),
                key=int)


def complete_versions(base_directory: str) -> List[str]:
  """The versions a model server can load, oldest first."""
  return [version for version in versions(base_directory)
          if is_complete(version_path(base_directory, version))]


def newest_complete_version(base_directory: str) -> Optional[str]:
  """The version a model server serves (the highest complete one), or None."""
  complete = complete_versions(base_directory)
  return complete[-1] if complete else None


def next_version(base_directory: str) -> str:
  """A Unix-timestamp version, bumped past any version already present."""
  existing = [int(name) for name in versions(base_directory)]
  return str(max([int(time.time())] + [number + 1 for number in existing]))


def directory_digest(directory: str) -> str:
  """SHA-256 over the relative paths and bytes of every file below `directory`
  but TF Serving's extras (`SERVING_EXTRAS_DIRNAME`): a model and its copy
  stamped with warm-up requests digest alike."""
  digest = hashlib.sha256()
  root_length = len(directory.rstrip('/')) + 1
  for root, _, files in sorted(fileio.walk(directory)):
    for name in sorted(files):
      path = f'{root.rstrip("/")}/{name}'
      if path[root_length:].split('/')[0] == SERVING_EXTRAS_DIRNAME:
        continue
      digest.update(path[root_length:].encode() + b'\0')
      with fileio.open(path, 'rb') as model_file:
        digest.update(model_file.read())
  return digest.hexdigest()


def version_fingerprint(version: str, directory: str) -> str:
  """What identifies a served model: its version and the SHA-256 of its files
  (`directory`: the version's directory, or a copy of it)."""
  return f'{version}:sha256={directory_digest(directory)}'


def served_fingerprint(base_directory: str) -> str:
  """The `version_fingerprint` of the version served now (the newest complete
  one), or NOTHING_SERVED."""
  version = newest_complete_version(base_directory)
  if version is None:
    return NOTHING_SERVED
  return version_fingerprint(version, version_path(base_directory, version))


def _process_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # Alive, and another user's.
  return True


def remove_abandoned_staging(base_directory: str) -> List[str]:
  """Deletes staging directories of dead processes of this host; returns them."""
  removed = []
  for name in _names(base_directory):
    if not name.startswith(STAGING_PREFIX):
      continue
    owner = name[len(STAGING_PREFIX):].partition('-')[2]
    pid, _, host = owner.partition('@')
    if (host in ('', socket.gethostname()) and pid.isdigit()
        and not _process_alive(int(pid))):
      fileio.rmtree(version_path(base_directory, name))
      removed.append(name)
  if removed:
    logging.warning('Removed staging directories of interrupted pushes: %s',
                    removed)
  return removed


def remove_incomplete_versions(base_directory: str,
                               grace_s: float = INCOMPLETE_GRACE_S) -> List[str]:
  """Deletes incomplete versions older than `grace_s`; returns them."""
  now = time.time()
  removed = [version for version in versions(base_directory)
             if int(version) < now - grace_s
             and not is_complete(version_path(base_directory, version))]
  for version in removed:
    fileio.rmtree(version_path(base_directory, version))
  if removed:
    logging.warning('Removed incomplete versions of interrupted pushes: %s',
                    removed)
  return removed


def remove_interrupted_pushes(base_directory: str) -> List[str]:
  """Deletes what interrupted pushes left (staging dirs, incomplete versions)."""
  return (remove_abandoned_staging(base_directory)
          + remove_incomplete_versions(base_directory))


def copy_tree(source: str, destination: str, last: Optional[str] = None) -> None:
  """Copies every file below `source` to `destination`; the file named `last`
  (relative to `source`) is copied after all others."""
  root_length = len(source.rstrip('/')) + 1
  relative_paths = []
  for root, _, files in fileio.walk(source):
    relative_paths.extend(f'{root.rstrip("/")}/{name}'[root_length:]
                          for name in files)
  relative_paths.sort(key=lambda relative: (relative == last, relative))
  for relative in relative_paths:
    target = f'{destination.rstrip("/")}/{relative}'
    fileio.makedirs(os.path.dirname(target))
    fileio.copy(f'{source.rstrip("/")}/{relative}', target, overwrite=True)


def publish(model_path: str, base_directory: str,
            before_copy: Optional[Callable[[str], None]] = None) -> str:
  """Publishes a SavedModel as a new version (see the module doc); returns
  the version's directory.

  Args:
    model_path: The SavedModel directory to copy.
    base_directory: The serving dir.
    before_copy: Called with the version number before any file of it is
      copied (the push record is written there: a version is never complete
      without it).
  """
  fileio.makedirs(base_directory)
  remove_interrupted_pushes(base_directory)
  version = next_version(base_directory)
  serving_path = version_path(base_directory, version)
  if before_copy is not None:
    before_copy(version)
  if is_object_store(base_directory):
    copy_tree(model_path, serving_path, last=SAVED_MODEL_FILENAME)
    return serving_path
  staging = version_path(
      base_directory,
      f'{STAGING_PREFIX}{version}-{os.getpid()}@{socket.gethostname()}')
  try:
    copy_tree(model_path, staging)
    fileio.rename(staging, serving_path)
  finally:
    if fileio.exists(staging):
      fileio.rmtree(staging)
  return serving_path
