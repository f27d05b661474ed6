"""Storage faults, one client call at a time: the fault proxy itself
(tests/fault_proxy.py), the KFP entrypoint's marker clean-up retrying through
it, and TF's GCS filesystem resuming an upload after a dropped connection
(which needs the emulator to report a resumable upload's progress as GCS does).
The whole compiled run under faults is tests/kfp/test_storage_faults.py.
"""

import contextlib
import http.client
import time

import pytest

from pipeline.kubeflow import entrypoint
from tests import fault_proxy
from tests import gcs_emulator

BUCKET = 'bucket'
NO_FAULTS = {'503': 0.0, '429': 0.0, 'reset': 0.0, 'delay': 0.0}


@contextlib.contextmanager
def _faulty_storage(rates, **policy_args):
  policy = fault_proxy.FaultPolicy(seed=7, rates={**NO_FAULTS, **rates}, **policy_args)
  with fault_proxy.running(policy, delay_seconds=(0.5, 0.5)) as front, \
      gcs_emulator.running(BUCKET, front=front) as environment, \
      gcs_emulator.applied(environment):
    yield policy, int(environment['STORAGE_EMULATOR_HOST'].rsplit(':', 1)[1])


def _request(port, method, path, body=b''):
  connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
  try:
    connection.request(method, path, body=body)
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()
  finally:
    connection.close()


@pytest.mark.parametrize('kind, status', [('503', 503), ('429', 429)])
def test_the_proxy_answers_errors_with_retry_after_and_counts_them(kind, status):
  with _faulty_storage({kind: 1.0}) as (policy, port):
    answered, headers, _ = _request(port, 'GET', f'/storage/v1/b/{BUCKET}/o')
  assert answered == status and headers['Retry-After'] == '1'
  assert fault_proxy.counts_of(policy)[kind] == 1


def test_the_proxy_resets_uploads_only_and_spares_what_it_is_told():
  upload = f'/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name=x'
  with _faulty_storage({'reset': 1.0}, spared=(r'name=spared',)) as (policy, port):
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
      _request(port, 'POST', upload, body=b'x' * 100000)
    assert _request(port, 'GET', f'/storage/v1/b/{BUCKET}/o')[0] == 200  # No body.
    assert _request(port, 'POST', upload.replace('name=x', 'name=spared'), b'y')[0] == 200
  assert fault_proxy.counts_of(policy)['reset'] == 1


def test_the_proxy_delays_answers_within_its_bound():
  # Delayed by its 0.5 s at least; above, a bound no loaded machine reaches
  # on one loopback request, which still catches a delay far past its bound.
  with _faulty_storage({'delay': 1.0}) as (policy, port):
    started = time.monotonic()
    assert _request(port, 'GET', f'/storage/v1/b/{BUCKET}/o')[0] == 200
    assert 0.5 <= time.monotonic() - started < 30
  assert fault_proxy.counts_of(policy)['delay'] == 1


def test_directory_markers_are_deleted_through_503s_and_429s():
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  names = [f'root/Task/out/dir{index}/' for index in range(12)] + ['root/Task/out/file']
  with _faulty_storage({}) as (policy, _):
    client = storage.Client()
    for name in names:
      client.bucket(BUCKET).blob(name).upload_from_string(b'' if name.endswith('/') else b'data')
    # About half of the calls fail at first: without retries some delete fails.
    policy.rates.update({'503': 0.25, '429': 0.25})
    removed = entrypoint.remove_directory_markers(['gs://bucket/root/Task/out'], client)
    policy.enabled = False
    left = sorted(blob.name for blob in client.list_blobs(BUCKET))
  assert sorted(removed) == sorted(f'gs://bucket/{name}' for name in names[:-1])
  assert left == ['root/Task/out/file']
  assert policy.counts['503'] + policy.counts['429'] > 0, policy.summary()


@pytest.mark.slow
def test_tf_resumes_an_upload_after_its_connection_is_reset():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  data = bytes(range(256)) * 2000
  with _faulty_storage({'reset': 0.5}) as (policy, _):
    for index in range(4):
      with tf.io.gfile.GFile(f'gs://{BUCKET}/file{index}', 'wb') as out:
        out.write(data)
    policy.enabled = False
    read = [tf.io.gfile.GFile(f'gs://{BUCKET}/file{index}', 'rb').read() for index in range(4)]
  assert policy.counts['reset'] > 0, policy.summary()
  assert all(content == data for content in read)


def test_beams_batch_copy_retries_a_503_so_no_request_is_spared_from_faults():
  """Pins why tests/kfp/test_storage_faults.py spares no request: Beam's
  apache_beam/io/gcp/gcsio.py sends `copy_batch` (and `delete_batch`, which
  `GCSFileSystem.rename` uses when a sink finalises) through
  `_batch_with_retry`, which retries a batch whose answers are retryable
  errors. One 503 on the batch request is absorbed, as for `copy`."""
  from apache_beam.io.gcp import gcsio  # pylint: disable=g-import-not-at-top
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  with _faulty_storage({}) as (policy, _):
    client = storage.Client()
    client.bucket(BUCKET).blob('source').upload_from_string(b'data')
    beam = gcsio.GcsIO(storage_client=client)
    policy.rates['503'], policy.limit = 1.0, 1  # One 503, to the next request.
    beam.copy(f'gs://{BUCKET}/source', f'gs://{BUCKET}/single')
    assert policy.counts['503'] == 1
    policy.limit = 2
    beam.copy_batch([(f'gs://{BUCKET}/source', f'gs://{BUCKET}/batched')])
    assert policy.counts['503'] == 2
    policy.enabled = False
    names = sorted(blob.name for blob in client.list_blobs(BUCKET))
  assert names == ['batched', 'single', 'source']
