"""components/common/tfrecord_sink.py: framed TFRecord blocks and their gzip writer."""

import glob
import gzip
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf

from components.common import tfrecord_sink


def _records(count, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.bytes(int(size)) for size in rng.integers(0, 9000, size=count)]


def test_frames_are_the_bytes_tensorflows_writer_writes(tmp_path):
  records = [b'', b'x', *_records(20)]
  path = str(tmp_path / 'reference.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(record)
  assert tfrecord_sink.frame_records(records) == tf.io.gfile.GFile(path, 'rb').read()


@pytest.mark.parametrize('blocks', [1, 13])  # 13: more than the writer keeps pending.
def test_written_files_are_gzipped_tfrecords_in_block_order(tmp_path, blocks):
  batches = [_records(7, seed) for seed in range(blocks)]
  prefix = str(tmp_path / 'out' / 'noisy_examples')
  with beam.Pipeline() as pipeline:
    _ = (pipeline | beam.Create([tfrecord_sink.frame_records(batch) for batch in batches])
         | tfrecord_sink.WriteFramedTFRecords(prefix))
  files = sorted(glob.glob(prefix + '-*'))
  assert files and all(name.endswith('.gz') and '-of-' in name for name in files)
  # Finalised: the shards alone, no beam-temp-* directory left.
  assert sorted(os.listdir(tmp_path / 'out')) == [os.path.basename(name) for name in files]
  read = [record.numpy() for record in
          tf.data.TFRecordDataset(files, compression_type='GZIP')]  # Checks CRCs.
  assert sorted(read) == sorted(record for batch in batches for record in batch)
  for name in files:  # Each file: whole blocks, each block's records in order.
    contents = gzip.open(name).read()
    position = 0
    while position < len(contents):
      block = next(tfrecord_sink.frame_records(batch) for batch in batches
                   if contents.startswith(tfrecord_sink.frame_records(batch), position))
      position += len(block)


def test_a_corrupted_frame_is_caught_by_tensorflows_reader(tmp_path):
  framed = bytearray(tfrecord_sink.frame_records(_records(3)))
  framed[20] ^= 0xFF  # A byte of the first record's payload.
  path = tmp_path / 'bad.tfrecord'
  path.write_bytes(bytes(framed))
  with pytest.raises(tf.errors.DataLossError):
    list(tf.data.TFRecordDataset([str(path)]))
