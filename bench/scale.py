"""Scale benchmark: how ingestion, training memory and batch denoising grow
with the number of images, in one run on this machine.

    python -m bench.scale [--quick]

* ingestion: TfdsExampleGen's executor, seconds per image, for the vendored
  IDX files and for the same digits written as a folder of PNG class folders
  at two sizes (the second 4x the first); DirectRunner in one process, as the
  local runner's default;
* training memory: the Trainer's run_fn in a child process on NoiseTransform-
  shaped records at the same two sizes, its memory budget below the data (it
  streams), and at the larger size with the default budget (it caches): peak
  RSS of each child;
* batch denoise: `denoise_batch` (a Beam job with RunInference) over a folder
  of PNGs against the same SavedModel called on in-memory batches;
* an estimate, from the folder's per-image time, of a million images on
  Dataflow workers.

Each measurement is a child process (its peak RSS its own); times inside the
children exclude their imports. Writes bench/results/scale.json and its table
in docs/benchmarks.md (--quick: smaller sizes, to scale.quick.json).
"""

import json
import os
import shutil
import sys
import time
from typing import Dict

import numpy as np

from bench import common

# Images of the two folder sizes (the second 4x the first), and --quick's.
SIZES = (10_000, 40_000)
QUICK_SIZES = (2_500, 10_000)
# Images of the batch denoise folder.
DENOISE_IMAGES = 2_000
QUICK_DENOISE_IMAGES = 500
# Training steps of each memory run: enough to pass the eval split in full.
TRAIN_STEPS = 100
# Dataflow workers and their vCPUs in the written estimate.
ESTIMATE_WORKERS = (10, 4)
SCRATCH = os.path.join(common.WORK_DIR, 'scale')


def _write_folder(directory: str, count: int) -> None:
  """The first `count` MNIST digits (train, then test) as PNG class folders."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  splits = common.load_mnist()
  images = np.concatenate([splits['train'][0], splits['test'][0]])[:count]
  labels = np.concatenate([splits['train'][1], splits['test'][1]])[:count]
  for index, (image, label) in enumerate(zip(images, labels)):
    folder = os.path.join(directory, str(label))
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(image[:, :, 0]).save(os.path.join(folder, f'{index:06d}.png'))


def _step_ingest(source: str, count: int, out_dir: str) -> Dict[str, float]:
  """Runs the ExampleGen's executor on `count` images; its seconds."""
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.tfds_example_gen import component  # pylint: disable=g-import-not-at-top
  from components.tfds_example_gen import executor  # pylint: disable=g-import-not-at-top
  from components.tfds_example_gen import settings  # pylint: disable=g-import-not-at-top
  if source == 'idx':
    data = settings.DataSpec(train_examples=count * 8 // 10,
                             eval_examples=count // 10, test_examples=count // 10)
  else:
    data = settings.DataSpec(image_dir=source)
  examples = standard_artifacts.Examples()
  examples.uri = out_dir
  start = time.perf_counter()
  executor.Executor().Do({}, {'examples': [examples]},
                         component.TfdsExampleGen(data).exec_properties)
  return {'seconds': time.perf_counter() - start}


def _records_path(work_dir: str, count: int) -> str:
  return os.path.join(work_dir, f'records-{count}.gz')


def _write_records(path: str, count: int) -> None:
  """NoiseTransform-shaped records (float32 noisy and clean) of MNIST digits."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.common import example_bytes  # pylint: disable=g-import-not-at-top
  from components.common import examples as examples_lib  # pylint: disable=g-import-not-at-top
  splits = common.load_mnist()
  images = np.concatenate([splits['train'][0], splits['test'][0]])
  images = np.resize(images, (count,) + images.shape[1:])  # Repeats past 70k.
  clean = images.reshape(count, -1).astype(np.float32) / 255.0
  noisy = clean + np.random.default_rng(0).normal(0, 0.5, clean.shape).astype(np.float32)
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for start in range(0, count, 4096):
      for record in example_bytes.serialize({
          examples_lib.NOISY_FEATURE: noisy[start:start + 4096],
          examples_lib.CLEAN_FEATURE: clean[start:start + 4096]}):
        writer.write(record)


def _step_train(count: int, budget_mb: str, work_dir: str) -> Dict[str, float]:
  """run_fn on `count` examples (train and eval alike) with a memory budget."""
  from components.trainer import run_fn as run_fn_lib  # pylint: disable=g-import-not-at-top
  from components.trainer import settings as training_settings  # pylint: disable=g-import-not-at-top
  records = _records_path(work_dir, count)

  class FnArgs:  # The FnArgs fields run_fn reads.
    train_files = [records]
    eval_files = [records]
    serving_model_dir = os.path.join(work_dir, f'model-{count}-{budget_mb}')
    model_run_dir = os.path.join(work_dir, f'run-{count}-{budget_mb}')
    custom_config = {
        run_fn_lib.TRAINING_KEY: training_settings.TrainingSpec(
            max_train_steps=TRAIN_STEPS, epochs=1,
            cache_budget_mb=None if budget_mb == 'default' else int(budget_mb)
        ).to_json(),
        run_fn_lib.TRAIN_EXAMPLES_KEY: count,
        run_fn_lib.EVAL_EXAMPLES_KEY: count,
        run_fn_lib.DATASET_INFO_KEY: common.mnist_info().to_json()}

  start = time.perf_counter()
  run_fn_lib.run_fn(FnArgs)
  with open(os.path.join(FnArgs.model_run_dir, run_fn_lib.SETTINGS_FILENAME)) as f:
    cached = json.load(f)['input_cached']
  return {'seconds': time.perf_counter() - start, 'cached': cached}


def _step_denoise(count: int, work_dir: str) -> Dict[str, float]:
  """denoise_batch over `count` PNGs against in-memory batches, images/s."""
  import keras  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from components.common import saved_model  # pylint: disable=g-import-not-at-top
  from components.trainer import model as model_lib  # pylint: disable=g-import-not-at-top
  from pipeline import batch_denoise  # pylint: disable=g-import-not-at-top
  model_dir = os.path.join(work_dir, 'model')
  if not os.path.exists(model_dir):
    keras.utils.set_random_seed(0)
    saved_model.export_saved_model(
        model_lib.build_model('unet', 'mse', (28, 28, 1)), model_dir)
  images = common.load_mnist()['test'][0][:count]
  inputs = os.path.join(work_dir, 'inputs')
  shutil.rmtree(inputs, ignore_errors=True)
  os.makedirs(inputs)
  for index, image in enumerate(images):
    Image.fromarray(image[:, :, 0]).save(os.path.join(inputs, f'{index:05d}.png'))
  denoiser = saved_model.Denoiser(model_dir)
  batch = images.astype(np.float32) / 255.0
  denoiser(batch[:batch_denoise.MAX_BATCH_SIZE])  # Warm-up.
  start = time.perf_counter()
  for first in range(0, count, batch_denoise.MAX_BATCH_SIZE):
    denoiser(batch[first:first + batch_denoise.MAX_BATCH_SIZE])
  in_memory = count / (time.perf_counter() - start)
  output = os.path.join(work_dir, 'outputs')
  shutil.rmtree(output, ignore_errors=True)
  start = time.perf_counter()
  summary = batch_denoise.denoise_batch(os.path.join(inputs, '*.png'), output,
                                        model_dir)
  batch_seconds = time.perf_counter() - start
  assert summary.written == count, summary.line()
  return {'batch_images_per_s': count / batch_seconds,
          'in_memory_images_per_s': in_memory}


# The steps a child runs (`--step NAME ARGUMENTS...`), their arguments as text.
STEPS = {
    'ingest': lambda source, count, out_dir: _step_ingest(source, int(count), out_dir),
    'train': lambda count, budget_mb, work_dir: _step_train(int(count), budget_mb,
                                                           work_dir),
    'denoise': lambda count, work_dir: _step_denoise(int(count), work_dir),
    # Apart from the training steps, so that their peaks hold none of it.
    'records': lambda count, work_dir: _write_records(
        _records_path(work_dir, int(count)), int(count)) or {},
}


def _child(*arguments: str) -> Dict[str, object]:
  """Runs one step in a child process: its JSON result and peak RSS."""
  measured = common.timed_child([sys.executable, '-m', 'bench.scale', '--step',
                                 *arguments])
  result = json.loads(measured['stdout'].strip().splitlines()[-1])
  result['peak_rss_mib'] = measured['peak_rss_mib']
  return result


def measure(quick: bool) -> Dict[str, object]:
  """Every figure of the benchmark, in one run."""
  small, large = QUICK_SIZES if quick else SIZES
  shutil.rmtree(SCRATCH, ignore_errors=True)
  os.makedirs(SCRATCH)
  ingestion = {'idx': _child('ingest', 'idx', str(large),
                             os.path.join(SCRATCH, 'idx-out'))}
  ingestion['idx']['images'] = large
  for count in (small, large):
    folder = os.path.join(SCRATCH, f'folder-{count}')
    _write_folder(folder, count)
    ingestion[f'folder_{count}'] = dict(
        _child('ingest', folder, str(count), os.path.join(SCRATCH, f'out-{count}')),
        images=count)
  for entry in ingestion.values():
    entry['ms_per_image'] = 1000 * entry['seconds'] / entry['images']
  for count in (small, large):
    _child('records', str(count), SCRATCH)
  training = {f'stream_{count}': _child('train', str(count), '1', SCRATCH)
              for count in (small, large)}
  training[f'cache_{large}'] = _child('train', str(large), 'default', SCRATCH)
  denoising = _child('denoise', str(QUICK_DENOISE_IMAGES if quick
                                    else DENOISE_IMAGES), SCRATCH)
  return {'sizes': [small, large], 'ingestion': ingestion, 'training': training,
          'denoise': denoising}


def render(record: Dict[str, object]) -> str:
  """The table of docs/benchmarks.md, its targets and the estimate."""
  small, large = record['sizes']
  ingestion, training = record['ingestion'], record['training']
  idx = ingestion['idx']
  folder_small, folder_large = (ingestion[f'folder_{small}'],
                                ingestion[f'folder_{large}'])
  stream_small, stream_large = (training[f'stream_{small}'],
                                training[f'stream_{large}'])
  cached = training[f'cache_{large}']
  denoise = record['denoise']
  rows = [
      ['ingestion, vendored IDX files', f'{large:,} images',
       f'{idx["ms_per_image"]:.2f} ms/image', ''],
      ['ingestion, PNG folder', f'{small:,} images',
       f'{folder_small["ms_per_image"]:.2f} ms/image', ''],
      ['ingestion, PNG folder', f'{large:,} images',
       f'{folder_large["ms_per_image"]:.2f} ms/image',
       f'{folder_large["ms_per_image"] / idx["ms_per_image"]:.2f}x IDX per image '
       f'(target <= 2x); {folder_large["seconds"] / folder_small["seconds"]:.2f}x '
       'the time for 4x the images (target <= 4.5x)'],
      ['Trainer peak RSS, streaming', f'{small:,} images',
       f'{stream_small["peak_rss_mib"]:,} MiB', ''],
      ['Trainer peak RSS, streaming', f'{large:,} images',
       f'{stream_large["peak_rss_mib"]:,} MiB',
       f'{stream_large["peak_rss_mib"] / stream_small["peak_rss_mib"]:.2f}x at 4x '
       'the data (target <= 1.2x)'],
      ['Trainer peak RSS, cached (default budget)', f'{large:,} images',
       f'{cached["peak_rss_mib"]:,} MiB', 'cached' if cached['cached'] else 'streamed'],
      ['batch denoise (Beam, RunInference)', 'images/s',
       f'{denoise["batch_images_per_s"]:,.0f}',
       f'{denoise["batch_images_per_s"] / denoise["in_memory_images_per_s"]:.2f}x '
       f'in-memory batches ({denoise["in_memory_images_per_s"]:,.0f}/s; '
       'target >= 0.5x)'],
  ]
  workers, cpus = ESTIMATE_WORKERS
  core_minutes = 1e6 * folder_large['ms_per_image'] / 1000 / 60
  table = common.markdown_table(['what', 'size', 'figure', 'against'], rows)
  return (f'{table}\n\n{common.provenance_line(record)}\n\nA million images of '
          f'this size: about {core_minutes:,.0f} core-minutes of ingestion at the '
          'folder\'s time per image here, so about '
          f'{core_minutes / (workers * cpus):,.1f} min on {workers} Dataflow workers '
          f'of {cpus} vCPUs (linear in workers), plus the workers\' start-up and '
          'the listing.')


def main(argv=None) -> int:
  if argv is None:
    argv = sys.argv[1:]
  if argv[:1] == ['--step']:
    print(json.dumps(STEPS[argv[1]](*argv[2:])))
    return 0
  args = common.make_parser(__doc__, 'smaller sizes, to scale.quick.json').parse_args(argv)
  if args.render:
    return common.render_recorded('scale', render)
  start = time.perf_counter()
  result = dict(common.provenance(), **measure(args.quick))
  result['seconds'] = round(time.perf_counter() - start, 1)
  common.publish('scale', result, render(result), args.quick)
  return 0


if __name__ == '__main__':
  sys.exit(main())
