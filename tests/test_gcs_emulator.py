"""The test GCS emulator honours generation preconditions, as Cloud Storage
does (https://cloud.google.com/storage/docs/request-preconditions): the push
lease's tests (tests/components/test_pusher.py) rely on it."""

import pytest

from tests import gcs_emulator


@pytest.fixture(scope='module')
def bucket():
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  with gcs_emulator.running('bucket') as environment, gcs_emulator.applied(environment):
    yield storage.Client().bucket('bucket')


def test_an_upload_if_generation_0_creates_once_only(bucket):
  from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
  blob = bucket.blob('create-once')
  blob.upload_from_string(b'first', if_generation_match=0)
  with pytest.raises(exceptions.PreconditionFailed):
    bucket.blob('create-once').upload_from_string(b'second', if_generation_match=0)
  assert bucket.blob('create-once').download_as_bytes() == b'first'


def test_an_upload_or_delete_on_another_generation_is_refused(bucket):
  from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
  blob = bucket.blob('replace')
  blob.upload_from_string(b'one')
  first = blob.generation
  with pytest.raises(exceptions.PreconditionFailed):
    bucket.blob('replace').upload_from_string(b'x', if_generation_match=first + 1)
  with pytest.raises(exceptions.PreconditionFailed):
    bucket.blob('replace').upload_from_string(b'x', if_generation_not_match=first)
  blob.upload_from_string(b'two', if_generation_match=first)
  second = blob.generation
  assert second != first
  with pytest.raises(exceptions.PreconditionFailed):
    bucket.blob('replace').delete(if_generation_match=first)
  assert bucket.get_blob('replace').download_as_bytes() == b'two'
  bucket.blob('replace').delete(if_generation_match=second)
  assert bucket.get_blob('replace') is None


def test_writes_without_preconditions_are_unconditional(bucket):
  bucket.blob('plain').upload_from_string(b'one')
  bucket.blob('plain').upload_from_string(b'two')
  bucket.blob('plain').delete()
  assert bucket.get_blob('plain') is None


def test_each_block_takes_its_own_metadata_server_whatever_came_before():
  # Tests share processes: a block after another one (whose fake metadata
  # server is stopped) must still get credentials, for Beam's gcsio and for
  # google-cloud-storage alike.
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  for round_ in range(2):
    with gcs_emulator.running('bucket') as environment, gcs_emulator.applied(environment):
      if round_ == 0:
        # The first import of google-auth's metadata module, in this block.
        from google.auth.compute_engine import _metadata  # pylint: disable=g-import-not-at-top,unused-import
        storage.Client().bucket('bucket').blob('first').upload_from_string(b'x')
        continue
      with FileSystems.create('gs://bucket/second') as second:
        second.write(b'y')
      assert storage.Client().bucket('bucket').blob('second').download_as_bytes() == b'y'
