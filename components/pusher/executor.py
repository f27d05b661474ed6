"""A Pusher executor whose filesystem pushes appear atomically.

TFX's stock Pusher copies the SavedModel file by file into
``<base>/<version>/`` (saved_model.pb last), so a model server scanning the
directory can see a half-written version, and two pushes within a second
share a version and the second is silently skipped. This executor copies into
a hidden staging directory beside the target (model servers ignore
non-numeric names), then renames it to the first free version number, which
is atomic on a local or POSIX file system. The destination and version are
recorded on the PushedModel artifact in MLMD, as the stock Pusher does.

A model byte-identical to the newest served version is not pushed again (a
re-run whose Evaluator re-blesses the same model against itself as baseline
must not add a version): the artifact records `pushed = 0` and the version
already serving it. The pipeline never serves the Pusher from cache, so a
re-run pushes the blessed model again when the serving dir lost it, and only
then.

A push killed mid-copy leaves its staging directory (never a version). Each
staging directory is named after its process (`.staging-<version>-<pid>@<host>`);
before pushing, the executor deletes those of processes of this host that are
gone.
"""

import hashlib
import os
import socket
import time
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

STAGING_PREFIX = '.staging-'
ALREADY_SERVED_VERSION_KEY = 'already_served_version'


def directory_digest(directory: str) -> str:
  """SHA-256 over the relative paths and bytes of every file below `directory`."""
  digest = hashlib.sha256()
  for root, _, files in sorted(fileio.walk(directory)):
    for name in sorted(files):
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, directory).encode() + b'\0')
      with fileio.open(path, 'rb') as model_file:
        digest.update(model_file.read())
  return digest.hexdigest()


def served_versions(base_directory: str) -> list:
  """The numeric version directories present, oldest first."""
  if not fileio.exists(base_directory):
    return []
  names = (name.strip('/') for name in fileio.listdir(base_directory))
  return sorted((name for name in names if name.isdigit()), key=int)


def next_version(base_directory: str) -> str:
  """A Unix-timestamp version, bumped past any version already present."""
  existing = [int(name) for name in served_versions(base_directory)]
  return str(max([int(time.time())] + [number + 1 for number in existing]))


def _process_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # Alive, and another user's.
  return True


def remove_abandoned_staging(base_directory: str) -> list:
  """Deletes staging directories of dead processes of this host; returns them."""
  if not fileio.exists(base_directory):
    return []
  removed = []
  for name in (entry.strip('/') for entry in fileio.listdir(base_directory)):
    if not name.startswith(STAGING_PREFIX):
      continue
    owner = name[len(STAGING_PREFIX):].partition('-')[2]
    pid, _, host = owner.partition('@')
    if (host in ('', socket.gethostname()) and pid.isdigit()
        and not _process_alive(int(pid))):
      fileio.rmtree(os.path.join(base_directory, name))
      removed.append(name)
  if removed:
    logging.warning('Removed staging directories of interrupted pushes: %s',
                    removed)
  return removed


def push_atomically(model_path: str, base_directory: str) -> str:
  """Copies a SavedModel to `<base>/<version>/` atomically; returns that path."""
  fileio.makedirs(base_directory)
  remove_abandoned_staging(base_directory)
  version = next_version(base_directory)
  staging = os.path.join(
      base_directory,
      f'{STAGING_PREFIX}{version}-{os.getpid()}@{socket.gethostname()}')
  try:
    io_utils.copy_dir(model_path, staging)
    serving_path = os.path.join(base_directory, version)
    fileio.rename(staging, serving_path)
  finally:
    if fileio.exists(staging):
      fileio.rmtree(staging)
  return serving_path


class Executor(pusher_executor.Executor):
  """Pushes a blessed model to a filesystem serving directory atomically."""

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
    versions = served_versions(base_directory)
    if versions and directory_digest(model_path) == directory_digest(
        os.path.join(base_directory, versions[-1])):
      logging.info('The model is already served as version %s; not pushed again',
                   versions[-1])
      self._MarkNotPushed(model_push)
      model_push.set_string_custom_property(ALREADY_SERVED_VERSION_KEY,
                                            versions[-1])
      return
    serving_path = push_atomically(model_path, base_directory)
    logging.info('Model pushed to %s', serving_path)
    io_utils.copy_dir(model_path, model_push.uri)  # The archive copy in MLMD.
    self._MarkPushed(model_push, pushed_destination=serving_path,
                     pushed_version=os.path.basename(serving_path))
