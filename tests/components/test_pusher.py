"""The Pusher executor and the serving directory it publishes to."""

import contextlib
import os
import re
import threading
import time

import pytest
from tfx.types import standard_artifacts
from tfx.utils import proto_utils
from tfx.proto import pusher_pb2

from components.common import dataset_info
from components.common import noise
from components.common import push_records
from components.common import serving_dir
from components.common import serving_lock
from components.pusher import executor
from components.served_model import executor as served_model_executor




def _entries(serving):
  """The serving dir's entries but the push records' directory and the push
  lock file (neither is a version)."""
  return [name.rstrip('/') for name in serving_dir.fileio.listdir(str(serving))
          if name.rstrip('/') not in (push_records.RECORDS_DIRNAME,
                                      serving_lock.LOCK_FILENAME)]


def _model_dir(root, content=b'graph'):
  model = root / 'model' / 'Format-Serving'
  (model / 'variables').mkdir(parents=True)
  (model / 'saved_model.pb').write_bytes(content)
  (model / 'variables' / 'variables.index').write_bytes(b'index')
  return model


def _baseline(root, served_version):
  """ServedModel's output, recording what was served when it ran."""
  baseline = standard_artifacts.Model()
  baseline.uri = str(root / 'baseline')
  baseline.set_string_custom_property(
      served_model_executor.SERVED_VERSION_PROPERTY, served_version)
  return baseline


def _examples(root, info=None, spec=None):
  """NoiseTransform's output as the Evaluator read it: its dataset
  description and noise settings recorded (each left out when None)."""
  examples = standard_artifacts.Examples()
  examples.uri = str(root / 'examples')
  if info is not None:
    dataset_info.record(examples, info)
  if spec is not None:
    noise.record_spec(examples, spec)
  return examples


def _push(root, content=b'graph', blessed=True, name='push', serving=None,
          baseline_version=None, examples=None):
  model = standard_artifacts.Model()
  model.uri = str(_model_dir(root / name, content).parent)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(root / name / 'blessing')
  blessing.set_int_custom_property('blessed', int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(root / name / 'pushed')
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=serving or str(root / 'serving')))
  inputs = {'model': [model], 'model_blessing': [blessing]}
  if baseline_version is not None:
    inputs[executor.BASELINE_MODEL_KEY] = [_baseline(root / name, baseline_version)]
  if examples is not None:
    inputs[executor.EXAMPLES_KEY] = [examples]
  executor.Executor().Do(
      inputs, {'pushed_model': [pushed]},
      {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed


def test_blessed_model_lands_as_a_complete_numbered_version(tmp_path):
  examples = _examples(tmp_path, dataset_info.DatasetInfo('fashion_mnist', (28, 28, 1)),
                       noise.NoiseSpec(kind='salt_and_pepper', amount=0.25, seed=7))
  pushed = _push(tmp_path, examples=examples)
  versions = _entries(tmp_path / 'serving')
  assert len(versions) == 1 and versions[0].isdigit()
  served = tmp_path / 'serving' / versions[0]
  assert (served / 'saved_model.pb').read_bytes() == b'graph'
  assert (served / 'variables' / 'variables.index').exists()
  assert pushed.get_int_custom_property('pushed') == 1
  assert pushed.get_string_custom_property('pushed_destination') == str(served)
  assert pushed.get_string_custom_property('pushed_version') == versions[0]
  # Its record says what its figures were measured on: the examples' dataset
  # and the noise NoiseTransform recorded on them.
  record = push_records.read(str(tmp_path / 'serving'), versions[0])
  assert (record.dataset, record.image_shape, record.noise) == (
      'fashion_mnist', [28, 28, 1], 'salt_and_pepper amount=0.25')


def test_examples_that_record_no_dataset_or_noise_leave_them_unnamed(tmp_path):
  pushed = _push(tmp_path, examples=_examples(tmp_path))
  assert pushed.get_int_custom_property('pushed') == 1
  record = push_records.read(str(tmp_path / 'serving'),
                             pushed.get_string_custom_property('pushed_version'))
  assert (record.dataset, record.image_shape, record.noise) == ('', [], '')


def test_unblessed_model_is_not_pushed(tmp_path):
  pushed = _push(tmp_path, blessed=False)
  assert not (tmp_path / 'serving').exists()
  assert pushed.get_int_custom_property('pushed') == 0


def test_new_models_get_increasing_versions_and_no_staging_is_left(tmp_path):
  _push(tmp_path, b'first', name='a')
  _push(tmp_path, b'second', name='b')  # Same second: the version is bumped.
  versions = sorted(_entries(tmp_path / 'serving'), key=int)
  assert len(versions) == 2 and int(versions[1]) > int(versions[0])
  assert (tmp_path / 'serving' / versions[1] / 'saved_model.pb').read_bytes() == b'second'


def test_identical_model_is_not_pushed_twice(tmp_path):
  _push(tmp_path, b'same', name='a')
  again = _push(tmp_path, b'same', name='b')
  versions = _entries(tmp_path / 'serving')
  assert len(versions) == 1
  assert again.get_int_custom_property('pushed') == 0
  assert again.get_string_custom_property(executor.ALREADY_SERVED_VERSION_KEY) == versions[0]


def test_versions_of_more_digits_are_newer_and_the_newest_is_the_baseline(tmp_path):
  # As strings '10' < '2' < '9': version 9 would be taken for the one served.
  serving = tmp_path / 'serving'
  serving.mkdir()
  for version in ('10', '9', '2'):
    model = _model_dir(tmp_path / version, content=f'graph {version}'.encode())
    os.rename(model, serving / version)
  assert serving_dir.versions(str(serving)) == ['2', '9', '10']
  assert serving_dir.newest_complete_version(str(serving)) == '10'
  assert serving_dir.served_fingerprint(str(serving)).startswith('10:')
  assert int(serving_dir.next_version(str(serving))) > 10
  baseline = standard_artifacts.Model()
  baseline.uri = str(tmp_path / 'baseline')
  served_model_executor.Executor().Do(
      {}, {served_model_executor.MODEL_KEY: [baseline]},
      {served_model_executor.SERVING_DIR_KEY: str(serving)})
  assert baseline.get_string_custom_property(
      served_model_executor.SERVED_VERSION_PROPERTY) == '10'


def test_failed_copy_leaves_no_version(tmp_path, monkeypatch):
  def broken_copy(source, destination, **kwargs):
    os.makedirs(destination)
    raise OSError('disk full')
  monkeypatch.setattr(serving_dir, 'copy_tree', broken_copy)
  with pytest.raises(OSError, match='disk full'):
    _push(tmp_path)
  assert _entries(tmp_path / 'serving') == []  # No version, no staging.


def test_staging_of_dead_processes_is_removed_and_a_live_ones_kept(tmp_path):
  import socket  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  serving = tmp_path / 'serving'
  gone = subprocess.Popen(['true'])  # A pid that has exited.
  gone.wait()
  host = socket.gethostname()
  names = {'dead': f'.staging-100-{gone.pid}@{host}',
           'old_format_dead': f'.staging-101-{gone.pid}',
           'live': f'.staging-102-{os.getpid()}@{host}',
           'other_host': f'.staging-103-{gone.pid}@elsewhere.example'}
  for name in names.values():
    (serving / name / 'variables').mkdir(parents=True)
  (serving / '99').mkdir()
  (serving / '99' / 'saved_model.pb').write_bytes(b'served')
  removed = serving_dir.remove_abandoned_staging(str(serving))
  assert sorted(removed) == sorted([names['dead'], names['old_format_dead']])
  assert sorted(_entries(serving)) == sorted(['99', names['live'], names['other_host']])
  _push(tmp_path, b'new')  # A push cleans up too, and adds its version.
  assert len([name for name in os.listdir(serving) if name.isdigit()]) == 2


# On an object store (here TF's in-memory ram:// filesystem, which has no
# atomic rename either) a version is written in place, saved_model.pb last.

def _ram_serving(tmp_path):
  return f'ram://{tmp_path.name}/serving'


def test_on_an_object_store_saved_model_pb_is_written_last(tmp_path, monkeypatch):
  copied = []
  real_copy = serving_dir.fileio.copy
  def recording_copy(source, destination, overwrite=False):
    copied.append(destination)
    return real_copy(source, destination, overwrite=overwrite)
  monkeypatch.setattr(serving_dir.fileio, 'copy', recording_copy)
  serving = _ram_serving(tmp_path)
  pushed = _push(tmp_path, b'graph', serving=serving)
  version = pushed.get_string_custom_property('pushed_version')
  published = [path for path in copied if path.startswith(serving)]
  assert published[-1] == f'{serving}/{version}/saved_model.pb'
  assert len(published) == 2  # variables.index, then saved_model.pb.
  assert not any(name.startswith('.') for name in _entries(serving))
  assert serving_dir.newest_complete_version(serving) == version


def test_a_push_killed_on_an_object_store_leaves_nothing_loadable(tmp_path, monkeypatch):
  serving = _ram_serving(tmp_path)
  first = _push(tmp_path, b'first', name='a', serving=serving)
  real_copy = serving_dir.fileio.copy
  def dying_copy(source, destination, overwrite=False):
    if destination.endswith('saved_model.pb') and destination.startswith(serving):
      raise KeyboardInterrupt('killed')  # The process dies before the last file.
    return real_copy(source, destination, overwrite=overwrite)
  monkeypatch.setattr(serving_dir.fileio, 'copy', dying_copy)
  with pytest.raises(KeyboardInterrupt):
    _push(tmp_path, b'second', name='b', serving=serving)
  monkeypatch.setattr(serving_dir.fileio, 'copy', real_copy)
  incomplete = serving_dir.versions(serving)[-1]
  assert not serving_dir.is_complete(f'{serving}/{incomplete}')
  # What a server or the baseline lookup would load is still the first push.
  assert serving_dir.newest_complete_version(serving) == (
      first.get_string_custom_property('pushed_version'))
  # A young incomplete version may be a push in progress: kept ...
  assert serving_dir.remove_incomplete_versions(serving) == []
  # ... an old one is an interrupted push: the next push deletes it.
  later = time.time() + serving_dir.INCOMPLETE_GRACE_S + 5
  monkeypatch.setattr(serving_dir.time, 'time', lambda: later)
  third = _push(tmp_path, b'third', name='c', serving=serving)
  assert incomplete not in serving_dir.versions(serving)
  assert serving_dir.newest_complete_version(serving) == (
      third.get_string_custom_property('pushed_version'))


# Compare-and-push: a push happens only while the baseline is still served.

def test_a_model_evaluated_against_nothing_is_not_pushed_over_a_new_version(tmp_path):
  first = _push(tmp_path, b'first', name='a')  # Another run pushed meanwhile.
  served = first.get_string_custom_property('pushed_version')
  late = _push(tmp_path, b'late', name='b', baseline_version='')
  assert serving_dir.versions(str(tmp_path / 'serving')) == [served]
  assert late.get_int_custom_property('pushed') == 0
  reason = late.get_string_custom_property(executor.NOT_PUSHED_REASON_KEY)
  assert f'serves version {served} now, not nothing' in reason, reason
  assert late.get_string_custom_property(executor.SERVED_CHANGED_TO_KEY) == served


def test_a_model_evaluated_against_what_is_still_served_is_pushed(tmp_path):
  first = _push(tmp_path, b'first', name='a', baseline_version='')
  served = first.get_string_custom_property('pushed_version')
  second = _push(tmp_path, b'second', name='b', baseline_version=served)
  assert second.get_int_custom_property('pushed') == 1
  assert not second.has_custom_property(executor.NOT_PUSHED_REASON_KEY)
  assert serving_dir.versions(str(tmp_path / 'serving')) == [
      served, second.get_string_custom_property('pushed_version')]


def test_a_baseline_that_records_no_served_version_is_an_error(tmp_path):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'not-served-model')
  with pytest.raises(ValueError, match="records no 'served_version'"):
    executor._baseline_version({executor.BASELINE_MODEL_KEY: [model]})  # pylint: disable=protected-access


def test_the_lock_file_is_no_version_and_changes_no_fingerprint(tmp_path):
  first = _push(tmp_path, b'first', name='a', baseline_version='')
  serving = str(tmp_path / 'serving')
  assert os.path.exists(os.path.join(serving, serving_lock.LOCK_FILENAME))
  assert serving_dir.versions(serving) == [
      first.get_string_custom_property('pushed_version')]
  before = serving_dir.served_fingerprint(serving)
  with serving_lock.hold(serving):
    assert serving_dir.served_fingerprint(serving) == before


def test_a_held_local_lock_makes_a_pusher_wait_then_fail_naming_its_holder(
    tmp_path, monkeypatch):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  serving = tmp_path / 'serving'
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from components.common import '
       'serving_lock\nwith serving_lock.hold(sys.argv[1]):\n print("held", '
       'flush=True); time.sleep(3600)', str(serving)],  # Killed below.
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    monkeypatch.setattr(serving_lock, 'WAIT_S', 1.0)
    with pytest.raises(serving_lock.ServingDirBusy,
                       match=f'pid {holder.pid} on .*waiting [0-9]+ s') as busy:
      _push(tmp_path, baseline_version='')
    # The seconds it waited, rounded: 1 at least, more on a busy machine.
    assert int(re.search(r'waiting ([0-9]+) s', str(busy.value))[1]) >= 1
  finally:
    holder.kill()
    holder.wait()
  assert serving_dir.versions(str(serving)) == []
  pushed = _push(tmp_path, name='after', baseline_version='')  # Released by its death.
  assert pushed.get_int_custom_property('pushed') == 1


# On gs:// (the test emulator, tests/gcs_emulator.py), the lock is a lease
# object created under the storage's generation preconditions.

@pytest.fixture(scope='module')
def gcs_bucket():
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  from tests import gcs_emulator  # pylint: disable=g-import-not-at-top
  with gcs_emulator.running('serving-bucket') as environment, (
      gcs_emulator.applied(environment)):
    yield storage.Client().bucket('serving-bucket')


def _lease(bucket, serving):
  return bucket.get_blob(serving_lock.lease_uri(serving)[len('gs://serving-bucket/'):])


def test_a_push_to_gs_holds_the_lease_while_it_publishes_then_deletes_it(
    tmp_path, gcs_bucket, monkeypatch):
  serving = 'gs://serving-bucket/released/serving'
  seen = []
  real_publish = serving_dir.publish
  def publish_seeing_the_lease(model_path, base_directory, **kwargs):
    seen.append(_lease(gcs_bucket, serving).download_as_bytes())
    return real_publish(model_path, base_directory, **kwargs)
  monkeypatch.setattr(serving_dir, 'publish', publish_seeing_the_lease)
  pushed = _push(tmp_path, serving=serving, baseline_version='')
  assert pushed.get_int_custom_property('pushed') == 1
  assert b'"expires_at"' in seen[0]
  assert _lease(gcs_bucket, serving) is None
  # The lease is no version: the pushed one is what is served.
  assert serving_dir.versions(serving) == [
      pushed.get_string_custom_property('pushed_version')]


def test_a_held_lease_makes_a_second_pusher_wait_then_fail_naming_its_holder(
    tmp_path, gcs_bucket, monkeypatch):
  serving = 'gs://serving-bucket/held/serving'
  monkeypatch.setattr(serving_lock, 'WAIT_S', 1.0)
  with serving_lock.hold(serving) as holder:
    with pytest.raises(serving_lock.ServingDirBusy,
                       match=f"pid {holder['pid']} on {holder['host']}.*expiring"):
      _push(tmp_path, serving=serving, baseline_version='')
  assert serving_dir.versions(serving) == []
  pushed = _push(tmp_path, name='after', serving=serving, baseline_version='')
  assert pushed.get_int_custom_property('pushed') == 1


def test_an_expired_lease_is_taken_over_and_its_late_release_spares_the_new_one(
    tmp_path, gcs_bucket):
  serving = 'gs://serving-bucket/expired/serving'
  with contextlib.ExitStack() as dead, contextlib.ExitStack() as successor:
    # A pusher that stopped while holding a lease, which has expired.
    dead.enter_context(serving_lock.hold(serving, lease_ttl_s=-1))
    pushed = _push(tmp_path, serving=serving, baseline_version='')
    assert pushed.get_int_custom_property('pushed') == 1
    assert _lease(gcs_bucket, serving) is None
    successor_holds = successor.enter_context(serving_lock.hold(serving))
    dead.close()  # It wakes and releases: under its generation, not the successor's.
    assert successor_holds['pid'] == os.getpid()
    assert _lease(gcs_bucket, serving) is not None
  assert _lease(gcs_bucket, serving) is None


def test_of_two_takers_of_one_expired_lease_only_one_holds_it(gcs_bucket, monkeypatch):
  """Both read the expired lease before either writes (they meet at a barrier
  after their first read), so both try to take it over at once: the write
  under the lease's generation lets one of them through; the other's gets 412
  and it finds the winner's live lease (no wait here: it gives up at once)."""
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  serving = 'gs://serving-bucket/contended/serving'
  dead = contextlib.ExitStack()
  dead.enter_context(serving_lock.hold(serving, lease_ttl_s=-1))  # Expired at once.
  both_read = threading.Barrier(2, timeout=120)
  have_read = set()
  real_download = storage.Blob.download_as_text

  def download_then_meet_the_other(blob, *args, **kwargs):
    text = real_download(blob, *args, **kwargs)
    if threading.get_ident() not in have_read:  # Its first read: the dead lease.
      have_read.add(threading.get_ident())
      both_read.wait()
    return text

  monkeypatch.setattr(storage.Blob, 'download_as_text', download_then_meet_the_other)
  outcomes, decided, let_go = [], threading.Condition(), threading.Event()

  def contend():
    try:
      with serving_lock.hold(serving, wait_s=0) as holder:
        with decided:
          outcomes.append(('held', holder))
          decided.notify_all()
        let_go.wait(120)  # Holds it while the other tries.
    except serving_lock.ServingDirBusy as busy:
      with decided:
        outcomes.append(('busy', busy.holder))
        decided.notify_all()

  contenders = [threading.Thread(target=contend) for _ in range(2)]
  for contender in contenders:
    contender.start()
  with decided:
    decided.wait_for(lambda: len(outcomes) == 2, timeout=120)
  let_go.set()
  for contender in contenders:
    contender.join()
  dead.close()  # Its late release spares the winner's (see the test above).
  assert sorted(kind for kind, _ in outcomes) == ['busy', 'held'], outcomes
  held, busy = dict(outcomes)['held'], dict(outcomes)['busy']
  assert busy['expires_at'] == held['expires_at']  # The loser saw the winner's lease.
  assert _lease(gcs_bucket, serving) is None


def test_a_lease_released_while_a_waiter_reads_it_is_taken_not_a_crash(
    tmp_path, gcs_bucket, monkeypatch):
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  serving = 'gs://serving-bucket/handover/serving'
  holder = contextlib.ExitStack()
  holder.enter_context(serving_lock.hold(serving))
  real_download = storage.Blob.download_as_text

  def release_then_download(blob, *args, **kwargs):
    holder.close()  # Between the waiter's look at the lease and its read.
    return real_download(blob, *args, **kwargs)

  monkeypatch.setattr(storage.Blob, 'download_as_text', release_then_download)
  pushed = _push(tmp_path, serving=serving, baseline_version='')
  assert pushed.get_int_custom_property('pushed') == 1
  assert _lease(gcs_bucket, serving) is None
