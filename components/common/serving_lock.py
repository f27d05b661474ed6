"""One pusher at a time per serving dir: a lock on a disk, a lease on gs://.

The Pusher holds it from the moment it re-reads which version is served to
the moment its own version is complete (components/pusher/executor.py), so
two pushers never both decide against the same served version.

* A local or POSIX path: portalocker's advisory lock (``flock``) on
  ``<serving_dir>/.push.lock``, as pipeline/run_lock.py holds a pipeline
  root: the kernel releases it when its holder dies, ``kill -9`` included.
* gs://: buckets have no locks, but every write can carry a precondition on
  the object's generation, which Cloud Storage checks atomically with the
  write ("ifGenerationMatch ... if the value is 0, the request succeeds only
  if there is no live version of the object",
  https://cloud.google.com/storage/docs/request-preconditions). The lease is
  the object ``<serving_dir>/.push-lease``, created with
  ``if_generation_match=0`` (only one creator succeeds, the others get 412
  Precondition Failed); it records its holder and an expiry. A lease whose
  expiry passed (its holder died mid-push) is taken over with
  ``if_generation_match=<its generation>`` (only one taker succeeds), and a
  lease is released by a delete under the same precondition (a holder that
  outlived its lease deletes nothing of its successor's). Expiry compares
  wall clocks of different machines: they must agree to well under
  `LEASE_TTL_S`.
* Other object stores (s3://, ...): unguarded, with a warning; a push there
  is as safe as before, but two concurrent pushers may both publish.

Neither name is numeric, so model servers and `serving_dir.versions` skip
them.
"""

import contextlib
import datetime
import json
import os
import time
from typing import Callable, Dict, Iterator, Optional, Tuple

from absl import logging
import portalocker
from tfx.dsl.io import fileio

from components.common import holder as holder_lib

LOCK_FILENAME = '.push.lock'
LEASE_NAME = '.push-lease'
# A push copies a few MB: a lease older than this belongs to a dead pusher.
LEASE_TTL_S = 600.0
# Longer than the lease's life, so a lease a killed pusher left only delays
# the next push; a live holder that keeps the lock past this is stuck.
WAIT_S = LEASE_TTL_S + 60.0
POLL_SECONDS = 0.5


class ServingDirBusy(RuntimeError):
  """Another pusher holds the serving dir's lock or lease."""

  def __init__(self, base_directory: str, holder: dict, waited_s: float):
    who = (f"{holder_lib.short(holder)}, since {holder.get('started', '?')} "
           f"({holder.get('command', '?')})" if holder else 'another process')
    expiry = (f', its lease expiring at {_local_time(holder["expires_at"])}'
              if 'expires_at' in holder else '')
    super().__init__(
        f'serving dir {base_directory} is being pushed to by {who}{expiry}; '
        f'gave up after waiting {waited_s:.0f} s. Nothing was pushed; run '
        'again once that push is done.')
    self.holder = holder


def _local_time(unix_seconds: float) -> str:
  return datetime.datetime.fromtimestamp(float(unix_seconds)).astimezone(
      ).isoformat(timespec='seconds')


@contextlib.contextmanager
def _local_lock(base_directory: str, wait_s: float,
                lease_ttl_s: float) -> Iterator[dict]:
  """The flock on `<base_directory>/.push.lock` (see the module doc)."""
  del lease_ttl_s  # The kernel releases a dead holder's lock.
  fileio.makedirs(base_directory)
  path = os.path.join(base_directory, LOCK_FILENAME)
  # 'a': a waiter must not truncate the holder's record before the lock is its.
  lock = portalocker.Lock(path, mode='a+', timeout=0, encoding='utf-8')
  started = time.monotonic()
  try:
    lock_file = lock.acquire()
  except portalocker.AlreadyLocked:
    holder = holder_lib.parse(_read_local(path))
    logging.info('Waiting up to %.0f s for the push in progress to %s (%s)',
                 wait_s, base_directory, holder_lib.short(holder))
    lock = portalocker.Lock(path, mode='a+', timeout=wait_s,
                            check_interval=POLL_SECONDS, encoding='utf-8')
    try:
      lock_file = lock.acquire()
    except portalocker.AlreadyLocked:
      raise ServingDirBusy(base_directory, holder_lib.parse(_read_local(path)),
                           time.monotonic() - started) from None
  with holder_lib.holding(lock, lock_file) as me:
    yield me


def _read_local(path: str) -> str:
  try:
    with open(path, encoding='utf-8') as lock_file:
      return lock_file.read()
  except OSError:
    return ''


def _split_gcs(uri: str) -> Tuple[str, str]:
  """('bucket', 'path/in/bucket') of gs://bucket/path/in/bucket."""
  bucket, _, path = uri[len('gs://'):].partition('/')
  return bucket, path.strip('/')


def lease_uri(base_directory: str) -> str:
  """The lease object of a gs:// serving dir."""
  return f'{base_directory.rstrip("/")}/{LEASE_NAME}'


def _storage_client():
  # Imported here: a local push needs none of google-cloud-storage.
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  return storage.Client()


def _take_lease(blob, record: dict, generation: int) -> Optional[int]:
  """Writes the lease if the object's generation is still `generation` (0:
  absent); its new generation, or None when another writer came first."""
  from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
  try:
    blob.upload_from_string(json.dumps(record), content_type='application/json',
                            if_generation_match=generation)
  except exceptions.PreconditionFailed:
    return None
  return int(blob.generation)


@contextlib.contextmanager
def _gcs_lease(base_directory: str, wait_s: float,
               lease_ttl_s: float) -> Iterator[dict]:
  """The lease object `<base_directory>/.push-lease` (see the module doc)."""
  from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
  bucket_name, prefix = _split_gcs(lease_uri(base_directory))
  bucket = _storage_client().bucket(bucket_name)
  blob = bucket.blob(prefix)
  started = time.monotonic()
  logged_wait = False
  while True:
    me = dict(holder_lib.record(), expires_at=time.time() + lease_ttl_s)
    generation = _take_lease(blob, me, 0)
    if generation is not None:
      break
    current = bucket.get_blob(prefix)
    if current is None:
      continue  # Released meanwhile: try again at once.
    # Before the download, which resets `generation` from headers a server
    # may not send.
    seen_generation = int(current.generation)
    try:
      holder = holder_lib.parse(current.download_as_text())
    except exceptions.NotFound:
      continue  # Released (or taken over) since the listing: try again.
    if float(holder.get('expires_at', 0)) < time.time():
      logging.warning('Taking over the expired push lease of %s (%s)',
                      base_directory, holder)
      generation = _take_lease(blob, me, seen_generation)
      if generation is not None:
        break
      continue
    waited_s = time.monotonic() - started
    if waited_s >= wait_s:
      raise ServingDirBusy(base_directory, holder, waited_s)
    if not logged_wait:
      logging.info('Waiting up to %.0f s for the push in progress to %s (%s)',
                   wait_s, base_directory, holder_lib.short(holder))
      logged_wait = True
    time.sleep(POLL_SECONDS)
  try:
    yield me
  finally:
    try:
      blob.delete(if_generation_match=generation)
    except (exceptions.PreconditionFailed, exceptions.NotFound):
      logging.warning('The push lease of %s expired during this push and was '
                      'taken over; left it to its new holder', base_directory)


@contextlib.contextmanager
def _unguarded(base_directory: str, wait_s: float,
               lease_ttl_s: float) -> Iterator[dict]:
  del wait_s, lease_ttl_s
  logging.warning('No push lock on %s (only local paths and gs:// have one): '
                  'a concurrent push from another run may publish too',
                  base_directory)
  yield {}


# How each kind of serving dir is guarded, by URI scheme ('' for a path).
_GUARDS: Dict[str, Callable[..., contextlib.AbstractContextManager]] = {
    '': _local_lock,
    'gs': _gcs_lease,
}


def _scheme(base_directory: str) -> str:
  return base_directory.partition('://')[0] if '://' in base_directory else ''


@contextlib.contextmanager
def hold(base_directory: str, wait_s: Optional[float] = None,
         lease_ttl_s: Optional[float] = None) -> Iterator[dict]:
  """Holds the serving dir's push lock (or lease) for the `with` block.

  Args:
    base_directory: The serving dir (a path or a bucket URI).
    wait_s: Seconds to wait for another pusher's lock (None: WAIT_S).
    lease_ttl_s: On gs://, how long the lease stays valid should this process
      die while holding it (None: LEASE_TTL_S).

  Yields:
    What the lock records of this holder ({} where nothing guards the dir).

  Raises:
    ServingDirBusy: another pusher still holds it after `wait_s`.
  """
  guard = _GUARDS.get(_scheme(base_directory), _unguarded)
  with guard(base_directory, WAIT_S if wait_s is None else wait_s,
             LEASE_TTL_S if lease_ttl_s is None else lease_ttl_s) as me:
    yield me
