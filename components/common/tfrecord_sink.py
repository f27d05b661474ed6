"""Gzipped TFRecord files written a batch of records at a time.

`beam.io.WriteToTFRecord` handles one record per element: per record it
computes two CRC32Cs with crcmod (in Python) and feeds Beam's gzip writer,
whose zlib compression at the default level runs on the thread that also
parses, noises and serializes: it costs more than the noise itself. A
component that produces records in batches can instead frame a whole batch
at once (`frame_records`, hardware CRC32C) and write it with
`WriteFramedTFRecords`, whose writer compresses on a second thread:
CPython's zlib releases the GIL while it deflates, so compression overlaps
the next batch's work.

Kept rather than `WriteToTFRecord` because it makes NoiseTransform's Beam
step faster by far more than the 10% that would justify custom code:
`python -m bench.libraries` measures both (bench/results/libraries.json,
`noise_transform_step`: `tfx_bsl_and_hand_written_sink` against
`libraries`; the table in docs/benchmarks.md).

The files hold what WriteToTFRecord writes: the same framing
(https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details),
gzipped (at zlib's fastest level, `COMPRESSION_LEVEL`), named
`PREFIX-SSSSS-of-NNNNN.gz`, and produced through Beam's FileBasedSink
(temporary files, then renamed on finalisation), so any Beam filesystem
(local, gs://, s3://) and runner works.
"""

import collections
import concurrent.futures
import struct
import zlib
from typing import Deque, Iterable

import apache_beam as beam
from apache_beam.io import filebasedsink
from apache_beam.io import filesystem
import google_crc32c

# zlib's fastest level: the noisy float32 records hardly compress, so the
# default level's extra effort buys almost no bytes.
COMPRESSION_LEVEL = zlib.Z_BEST_SPEED
# Compressed batches waiting to be written; bounds the memory in flight.
_MAX_PENDING_BATCHES = 4
_GZIP_WBITS = zlib.MAX_WBITS | 16
_CRC_MASK_DELTA = 0xA282EAD8


def _masked_crc32c(data: bytes) -> bytes:
  """TFRecord's masked CRC32C of `data`, little-endian."""
  crc = google_crc32c.value(data)
  masked = (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF
  return struct.pack('<I', masked)


def frame_records(records: Iterable[bytes]) -> bytes:
  """The TFRecord file bytes of `records`: per record its length (uint64),
  the length's masked CRC32C, the record, the record's masked CRC32C."""
  frames = []
  for record in records:
    length = struct.pack('<Q', len(record))
    frames += (length, _masked_crc32c(length), record, _masked_crc32c(record))
  return b''.join(frames)


class _BackgroundGzipWriter:
  """A file handle that gzips what it is given on a second thread, in order."""

  def __init__(self, raw_file):
    self._raw_file = raw_file
    self._compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED,
                                        _GZIP_WBITS)
    # One worker: the compressor's calls run one at a time, in submission order.
    self._worker = concurrent.futures.ThreadPoolExecutor(
        1, thread_name_prefix='tfrecord-gzip')
    self._pending: Deque[concurrent.futures.Future] = collections.deque()

  def write(self, data: bytes) -> None:
    self._pending.append(self._worker.submit(self._compressor.compress, data))
    while (len(self._pending) > _MAX_PENDING_BATCHES or
           (self._pending and self._pending[0].done())):
      self._raw_file.write(self._pending.popleft().result())

  def close(self) -> None:
    try:
      while self._pending:
        self._raw_file.write(self._pending.popleft().result())
      self._raw_file.write(self._compressor.flush())
    finally:
      self._worker.shutdown()
      self._raw_file.close()


class _FramedGzipSink(filebasedsink.FileBasedSink):
  """Writes elements that are already framed TFRecord bytes into gzip files."""

  def __init__(self, file_path_prefix: str):
    super().__init__(
        file_path_prefix, coder=beam.coders.BytesCoder(), file_name_suffix='.gz',
        num_shards=0, shard_name_template=None,
        mime_type='application/octet-stream',
        # Compressed by _BackgroundGzipWriter, not by Beam.
        compression_type=filesystem.CompressionTypes.UNCOMPRESSED)

  def open(self, temp_path):
    return _BackgroundGzipWriter(super().open(temp_path))

  def write_encoded_record(self, file_handle, encoded_value):
    file_handle.write(encoded_value)


class WriteFramedTFRecords(beam.PTransform):
  """Writes a PCollection of `frame_records` outputs as gzipped TFRecord files
  `file_path_prefix-SSSSS-of-NNNNN.gz` (shards as the runner chooses)."""

  def __init__(self, file_path_prefix: str):
    super().__init__()
    self._file_path_prefix = file_path_prefix

  def expand(self, pcoll):
    return pcoll | beam.io.Write(_FramedGzipSink(self._file_path_prefix))
