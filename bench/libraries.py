"""Libraries against the hand-written code of the data components.

Two pieces of TfdsExampleGen and NoiseTransform were hand-written for speed:
tf.Example bytes (now tfx_bsl's encoder, `components/common/example_bytes.py`) and
gzipped TFRecord framing and writing (`components/common/tfrecord_sink.py`, kept:
Beam's `WriteToTFRecord` costs more). This measures, in one process and
interleaved (A, B, A, B, ...; medians and their ratios, so that the load of
a shared machine falls on all variants alike), on 10,000 MNIST-like records:

* encode: each component's batch serialisation, hand-written vs tfx_bsl;
* step: NoiseTransform's Beam step for one split (read, parse, noise,
  encode, write: `_noise_step`, the executor's NoiseSplit without its
  progress and reshuffle) with the hand-written encoder and sink, with
  tfx_bsl and `WriteToTFRecord`, and with tfx_bsl and the hand-written sink:
  the step against which a library's cost is weighed (kept only when it
  costs more than 10% of it). The last two differ only in the sink.

The hand-written encoder is read from git (`--baseline`, a commit that still
holds it), so the comparison can be re-run after it left the tree:

  python -m bench.libraries            # ~1-2 min; writes results/libraries.json
"""

import argparse
import glob
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List

import apache_beam as beam
import numpy as np
import tensorflow as tf

from bench import common
from components.common import tfrecord_sink
from components.noise_transform import executor as noise_executor
from components.common import noise
from components.tfds_example_gen import executor as example_gen_executor
import pipeline_config

# The last commit with the hand-written example_bytes and tfrecord_sink.
HAND_WRITTEN_COMMIT = '50079e0'
RECORDS = 10_000
BATCH = noise_executor.READ_BATCH_SIZE


def load_hand_written(commit: str, name: str):
  """components/NAME.py as it was at `commit`, as a standalone module."""
  source = subprocess.run(
      ['git', 'show', f'{commit}:components/{name}.py'], check=True,
      capture_output=True, text=True, cwd=pipeline_config.repository_root()).stdout
  spec = importlib.util.spec_from_loader(f'hand_written_{name}', loader=None)
  module = importlib.util.module_from_spec(spec)
  sys.modules[module.__name__] = module  # Beam pickles its classes by module.
  exec(compile(source, f'{commit}:components/{name}.py', 'exec'), module.__dict__)  # pylint: disable=exec-used
  return module


def mnist_like(count: int, seed: int = 0):
  """uint8 images [count, 784] about as sparse as MNIST's (~19% ink), labels."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (count, common.mnist_info().pixels), dtype=np.uint8)
  images[rng.random(images.shape) > 0.19] = 0
  return images, rng.integers(0, 10, count)


def hand_noise_records(hand, clean, noisy, labels, levels) -> List[bytes]:
  """NoiseTransform's batch serialisation as it was hand-written."""
  rows = zip(hand.float32_rows(clean), hand.float32_rows(noisy),
             np.asarray(labels).tolist(), hand.float32_rows(levels))
  return [hand.example({
      'clean': hand.float_feature(clean_row), 'noisy': hand.float_feature(noisy_row),
      'label': hand.int64_feature(hand.varint(label)),
      'noise_level': hand.float_feature(level)})
          for clean_row, noisy_row, label, level in rows]


def hand_image_records(hand, images, labels) -> List[bytes]:
  """TfdsExampleGen's batch serialisation as it was hand-written."""
  pixels, lengths = hand.packed_uint8_varints(images)
  ends = np.cumsum(lengths).tolist()
  records = []
  for index, label in enumerate(np.asarray(labels).tolist()):
    start = ends[index] - int(lengths[index])
    records.append(hand.example({
        'image': hand.int64_feature(pixels[start:ends[index]]),
        'label': hand.int64_feature(hand.varint(label))}))
  return records


def interleaved(variants: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, object]:
  """Runs the variants in turn `repeats` times; their seconds and medians."""
  seconds = {name: [] for name in variants}
  for _ in range(repeats):
    for name, function in variants.items():
      started = time.perf_counter()
      function()
      seconds[name].append(round(time.perf_counter() - started, 4))
  medians = {name: round(statistics.median(values), 4) for name, values in seconds.items()}
  return {'seconds': seconds, 'median_s': medians}


def _batches(count: int):
  return [slice(start, min(start + BATCH, count)) for start in range(0, count, BATCH)]


class _NoiseAndEncode(beam.DoFn):
  """NoiseTransform's per-batch work with either encoder (and framing)."""

  def __init__(self, spec, hand_encoder, hand_sink):
    self._spec, self._hand_encoder, self._hand_sink = spec, hand_encoder, hand_sink

  def process(self, batch):
    images, labels = noise_executor.parse_batch(batch, 'train', common.mnist_info())
    clean = images.astype(np.float32) / 255.0
    noisy, levels = noise.add_noise(clean, noise.example_keys(images, labels), self._spec)
    if self._hand_encoder:
      records = hand_noise_records(self._hand_encoder, clean, noisy, labels, levels)
    else:
      records = noise_executor.serialize_examples(clean, noisy, labels, levels)
    if self._hand_sink:
      yield self._hand_sink.frame_records(records)
    else:
      yield from records


def _noise_step(input_pattern, prefix, spec, hand_encoder, hand_sink) -> None:
  """NoiseTransform's Beam step for one split (see executor.NoiseSplit)."""
  with beam.Pipeline() as pipeline:
    noised = (pipeline | beam.Create(sorted(glob.glob(input_pattern)))
              | beam.ParDo(noise_executor._ReadRecordBatches(BATCH))  # pylint: disable=protected-access
              | beam.ParDo(_NoiseAndEncode(spec, hand_encoder, hand_sink)))
    if hand_sink:
      _ = noised | hand_sink.WriteFramedTFRecords(prefix)
    else:
      _ = noised | beam.io.WriteToTFRecord(prefix, file_name_suffix='.gz')


def _parsed(records: List[bytes]) -> List[bytes]:
  """Records in protobuf's deterministic serialisation (comparable bytes)."""
  return [tf.train.Example.FromString(record).SerializeToString(deterministic=True)
          for record in records]


def measure(commit: str, work_dir: str) -> Dict[str, object]:
  """All three comparisons; {name: {seconds, median_s, ratio}}."""
  hand_bytes = load_hand_written(commit, 'example_bytes')
  images, labels = mnist_like(RECORDS)
  clean = images.astype(np.float32) / 255.0
  noisy, levels = noise.add_noise(clean, noise.example_keys(images, labels),
                                  pipeline_config.NoiseSpec())
  slices = _batches(RECORDS)

  def noise_records(hand):
    return [record for part in slices for record in (
        hand_noise_records(hand_bytes, clean[part], noisy[part], labels[part], levels[part])
        if hand else noise_executor.serialize_examples(
            clean[part], noisy[part], labels[part], levels[part]))]

  def image_records(hand):
    return [record for part in slices for record in (
        hand_image_records(hand_bytes, images[part], labels[part]) if hand else
        example_gen_executor.serialize_examples(
            images[part].reshape(-1, 28, 28, 1), labels[part]))]

  # The library writes the same examples (map entries in another order).
  assert _parsed(noise_records(False)[:50]) == noise_records(True)[:50]
  assert _parsed(image_records(False)[:50]) == image_records(True)[:50]
  print('encode', flush=True)
  results = {
      'encode_noise_transform': interleaved(
          {'hand_written': lambda: noise_records(True),
           'tfx_bsl': lambda: noise_records(False)}, repeats=5),
      'encode_tfds_example_gen': interleaved(
          {'hand_written': lambda: image_records(True),
           'tfx_bsl': lambda: image_records(False)}, repeats=5),
  }
  started = time.perf_counter()
  for image, label in zip(images[:1000], labels[:1000]):
    example_gen_executor.to_example({'image': image.reshape(28, 28, 1), 'label': label}
                                    ).SerializeToString(deterministic=True)
  results['encode_tfds_example_gen']['one_proto_per_image_s'] = round(
      (time.perf_counter() - started) * RECORDS / 1000, 3)

  runs = iter(range(10**6))
  # The step's input: what TfdsExampleGen writes, 4 files.
  input_dir = os.path.join(work_dir, 'input')
  os.makedirs(input_dir)
  image_records_all = image_records(False)
  for index, part in enumerate(np.array_split(np.arange(RECORDS), 4)):
    with tf.io.TFRecordWriter(os.path.join(input_dir, f'data-{index}.gz'),
                              'GZIP') as writer:
      for record_index in part:
        writer.write(image_records_all[record_index])
  spec = pipeline_config.NoiseSpec()
  pattern = os.path.join(input_dir, '*.gz')
  print('step', flush=True)
  results['noise_transform_step'] = interleaved({
      'hand_written': lambda: _noise_step(
          pattern, os.path.join(work_dir, f'step{next(runs)}', 'out'), spec,
          hand_bytes, tfrecord_sink),
      'libraries': lambda: _noise_step(
          pattern, os.path.join(work_dir, f'step{next(runs)}', 'out'), spec, None, None),
      'tfx_bsl_and_hand_written_sink': lambda: _noise_step(
          pattern, os.path.join(work_dir, f'step{next(runs)}', 'out'), spec, None,
          tfrecord_sink),
  }, repeats=3)
  for result in results.values():
    medians = list(result['median_s'].values())
    result['ratio_to_first'] = [round(value / medians[0], 3) for value in medians]
  return results


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--baseline', default=HAND_WRITTEN_COMMIT,
                      help='a commit that holds the hand-written code')
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory(prefix='bench-libraries-') as work_dir:
    results = measure(args.baseline, work_dir)
  payload = {**common.provenance(), 'baseline_commit': args.baseline,
             'records': RECORDS, 'batch': BATCH, 'results': results}
  print(common.write_json('libraries.json', payload))
  for name, result in results.items():
    print(name, result['median_s'], 'ratio', result['ratio_to_first'])
  return 0


if __name__ == '__main__':
  sys.exit(main())
