"""Speed benchmark: how fast each part of the pipeline is, as ratios measured
in the same run on this machine, robust to its drift.

    python -m bench.speed [--quick] [--max-train-steps N]   (or: make bench-speed)

This machine's speed drifts by a quarter between runs minutes apart, so every
comparison is interleaved (A, B, A, B, ...) and reported as median and range,
and the end-to-end figure that matters is each side's *overhead*: wall seconds
minus its training (`fit`) seconds, which both sides share.

* end to end: cold `dae-pipeline run`s interleaved with the plain Keras script
  doing the same job (bench/plain_keras.py): `pipeline_overhead_s` (wall minus
  the Trainer's `fit`, from its training_settings.json), `plain_overhead_s`
  (wall minus the script's `fit`), peak memory, seconds per component (MLMD),
  then a re-run and a cached run;
* training images/s: the Trainer's compiled loop (Keras `fit`, its batch and
  precision policy) vs the article's eager GradientTape loop (batch 32, no
  tf.function), same architecture and data, for both architectures;
* training input: the Trainer's input pipeline (gzip TFRecords, vectorised
  parsing, fresh cache) vs the same images as in-memory arrays, one epoch of
  steps each, same model;
* noise: NoiseTransform's executor on Beam (DirectRunner in memory, and
  multi-processing with 2 workers) vs the same noise computed with numpy on
  arrays already in memory (the in-process limit);
* ingestion: TfdsExampleGen's examples/s in a cold pipeline run (from MLMD);
* SavedModel inference: batch-1 latency p50/p99, batch-256 images/s.

`--max-train-steps N` caps training on both sides: the overheads stay
comparable (they exclude `fit`), the end-to-end seconds do not.
Writes bench/results/speed.json and the table of docs/benchmarks.md (--quick:
the smoke profile and fewer steps, to speed.quick.json, docs untouched).
"""

import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

from bench import common
import pipeline_config

EAGER_BATCH = 32
# Timed repetitions of each training loop; the median is reported.
REPEATS = 3


def component_seconds(metadata_path: str) -> Dict[str, float]:
  """Wall seconds of each execution of the newest run, from MLMD."""
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  store = run_summary.open_store(metadata_path)
  records = run_summary.run_executions(store, run_summary.run_ids(store)[-1])
  return {record.node_id: round(record.seconds, 1) for record in records}


def spread(values: List[float], digits: int = 1) -> Dict[str, object]:
  """Median, lowest and highest of repeated measurements (and the values)."""
  return {'median': round(float(np.median(values)), digits),
          'min': round(float(min(values)), digits),
          'max': round(float(max(values)), digits),
          'values': [round(float(value), digits) for value in values]}


def trainer_fit_seconds(metadata_path: str) -> float:
  """The newest run's Trainer `fit` seconds (its training_settings.json)."""
  from tfx.types import standard_component_specs  # pylint: disable=g-import-not-at-top
  from components.trainer import run_fn  # pylint: disable=g-import-not-at-top
  from components.common import names  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  _, model_run = run_summary.latest_output(
      metadata_path, names.TRAINER_NODE, standard_component_specs.MODEL_RUN_KEY)
  with open(os.path.join(model_run, run_fn.SETTINGS_FILENAME)) as settings:
    return float(json.load(settings)['fit_seconds'])


def end_to_end(profile: str, repeats: int, max_train_steps=None) -> Dict[str, object]:
  """Cold pipeline runs interleaved with the plain script (A, B, A, B, ...),
  then a re-run and a cached run; each side's overhead is its wall seconds
  minus its training (`fit`) seconds, which drift cancels out of."""
  from components.common import serving_dir  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  root = os.path.join(common.WORK_DIR, 'speed', profile)
  cap = ([] if max_train_steps is None
         else ['--set', f'training.max_train_steps={max_train_steps}'])
  plain_cap = ([] if max_train_steps is None
               else ['--max-train-steps', str(max_train_steps)])
  serving = os.path.join(root, 'serving')
  arguments = ['--profile', profile, '--pipeline-root', os.path.join(root, 'pipeline_root'),
               '--serving-dir', serving,
               '--set', f'pipeline_name=mnist-dae-bench-speed-{profile}', *cap]
  metadata_path = os.path.join(root, 'pipeline_root', 'metadata.sqlite')
  colds, plains, pipeline_overheads, plain_overheads = [], [], [], []
  for _ in range(repeats):
    shutil.rmtree(root, ignore_errors=True)
    cold = common.timed_child([common.DAE_PIPELINE, 'run', *arguments])
    components = component_seconds(metadata_path)
    pipeline_overheads.append(cold['seconds'] - trainer_fit_seconds(metadata_path))
    plain = common.timed_child([sys.executable, '-m', 'bench.plain_keras', '--profile',
                          profile, *plain_cap])
    plain_result = json.loads(plain['stdout'].strip().splitlines()[-1])
    plain_overheads.append(plain['seconds'] - plain_result['phases']['train'])
    colds.append(cold)
    plains.append(plain)
  # The first re-run re-evaluates (the pushed model is now the baseline);
  # the one after it is served from the cache except the never-cached nodes.
  # A capped cold run may not be blessed: then nothing is served, and the
  # re-run is one more cached run (the table says which it measured).
  pushed_before_rerun = bool(serving_dir.complete_versions(serving))
  rerun = common.timed_child([common.DAE_PIPELINE, 'run', *arguments])
  cached = common.timed_child([common.DAE_PIPELINE, 'run', *arguments])
  ratios = [cold['seconds'] / plain['seconds'] for cold, plain in zip(colds, plains)]
  return {
      'repeats': repeats,
      'max_train_steps': max_train_steps,
      'pipeline_overhead_s': spread(pipeline_overheads),
      'plain_overhead_s': spread(plain_overheads),
      'pipeline_cold': {'seconds': spread([cold['seconds'] for cold in colds]),
                        'peak_rss_mib': max(cold['peak_rss_mib'] for cold in colds)},
      'pipeline_rerun_after_push': {
          **{key: rerun[key] for key in ('seconds', 'peak_rss_mib')},
          'cold_run_pushed': pushed_before_rerun},
      'pipeline_cached': {key: cached[key] for key in ('seconds', 'peak_rss_mib')},
      'pipeline_components_seconds': components,
      'plain_script': {'seconds': spread([plain['seconds'] for plain in plains]),
                       'peak_rss_mib': max(plain['peak_rss_mib'] for plain in plains),
                       'phases': plain_result['phases'],
                       'metrics': plain_result['metrics']},
      'pipeline_over_plain': spread(ratios, digits=2),
      'metadata_path': metadata_path,
      'serving_dir': serving,
      'examples_uri': run_summary.latest_output(metadata_path, 'TfdsExampleGen',
                                                'examples')[1],
      'noisy_examples_uri': run_summary.latest_output(
          metadata_path, 'NoiseTransform', 'noisy_examples')[1],
  }


def _training_data(count: int, config):
  mnist = common.load_mnist()
  images, labels = (array[:count] for array in mnist['train'])
  clean, noisy = common.noisy_copy(images, labels, config.noise)
  return noisy, clean


def training_throughput(config, architecture: str, steps: int, noisy, clean
                        ) -> Dict[str, float]:
  """Images/s of the Trainer's loop and of the article's eager loop
  (medians of REPEATS timings of `steps` Trainer steps, and of as many
  images / 4 in eager steps, each after a warm-up)."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.trainer import architectures  # pylint: disable=g-import-not-at-top
  from components.trainer import model as model_lib  # pylint: disable=g-import-not-at-top
  from components.trainer import strategy  # pylint: disable=g-import-not-at-top
  training = config.training
  image_shape = common.mnist_info().image_shape

  # The Trainer's loop: compiled `fit`, its batch size and precision policy.
  keras.utils.set_random_seed(training.seed)
  placement = strategy.choose_placement(
      allow_mixed_precision=training.mixed_precision)
  policy = keras.mixed_precision.global_policy().name
  model = model_lib.compile_model(architectures.build_model(architecture, training.loss,
                                                          image_shape),
                                  training.loss,
                                  training.learning_rate, schedule=training.lr_schedule,
                                  total_steps=10 * steps)
  dataset = (tf.data.Dataset.from_tensor_slices((noisy, clean)).repeat()
             .batch(training.batch_size).prefetch(tf.data.AUTOTUNE))
  model.fit(dataset, steps_per_epoch=10, epochs=1, verbose=0)  # Traces, warms up.
  compiled_rates = []
  for _ in range(REPEATS):
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    compiled_rates.append(steps * training.batch_size / (time.perf_counter() - start))
  del placement

  # The article's loop: eager GradientTape, batch 32, float32.
  keras.mixed_precision.set_global_policy('float32')
  model = architectures.build_model(architecture, training.loss, image_shape)
  loss_fn = model_lib.make_loss(training.loss)
  optimizer = keras.optimizers.Adam(training.learning_rate)
  eager_steps = max(10, steps * training.batch_size // EAGER_BATCH // 4)
  batches = iter(tf.data.Dataset.from_tensor_slices((noisy, clean)).repeat()
                 .batch(EAGER_BATCH))

  def eager_steps_per_s(count):
    start = time.perf_counter()
    for _ in range(count):
      noisy_batch, clean_batch = next(batches)
      with tf.GradientTape() as tape:
        loss = loss_fn(clean_batch, model(noisy_batch, training=True))
      gradients = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return count / (time.perf_counter() - start)

  eager_steps_per_s(5)  # Warms up.
  eager_rates = [eager_steps_per_s(eager_steps) * EAGER_BATCH for _ in range(REPEATS)]
  compiled, eager = float(np.median(compiled_rates)), float(np.median(eager_rates))
  return {'trainer_images_per_s': round(compiled), 'trainer_batch': training.batch_size,
          'trainer_policy': policy, 'eager_images_per_s': round(eager),
          'eager_batch': EAGER_BATCH, 'ratio': round(compiled / eager, 2)}


def input_pipeline_ab(noisy_examples_uri: str, config, steps: int, repeats: int
                      ) -> Dict[str, object]:
  """The Trainer's input pipeline vs the same images as in-memory arrays:
  `fit` images/s of one model, `steps` steps each, interleaved A, B, A, B.

  A builds a fresh `data.make_dataset` every repeat, so its cache starts
  empty and every A reads and parses the gzip TFRecords (the Trainer's first
  epoch); B slices arrays already in memory (the plain script's way). An
  untimed quarter of an A and of a B come first.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.common import examples as examples_lib  # pylint: disable=g-import-not-at-top
  from components.trainer import architectures  # pylint: disable=g-import-not-at-top
  from components.trainer import data  # pylint: disable=g-import-not-at-top
  from components.trainer import model as model_lib  # pylint: disable=g-import-not-at-top
  from components.trainer import strategy  # pylint: disable=g-import-not-at-top
  training = config.training
  image_shape = common.mnist_info().image_shape
  keras.utils.set_random_seed(training.seed)
  strategy.choose_placement(allow_mixed_precision=training.mixed_precision)
  files = [os.path.join(noisy_examples_uri, 'Split-train', '*')]
  noisy, clean, _ = examples_lib.read_arrays(files, common.mnist_info())
  warm_up_steps = max(5, steps // 4)
  model = model_lib.compile_model(architectures.build_model(training.architecture,
                                                          training.loss,
                                                          image_shape),
                                  training.loss, training.learning_rate,
                                  schedule=training.lr_schedule,
                                  total_steps=2 * (warm_up_steps + repeats * steps))

  def in_memory():
    return (tf.data.Dataset.from_tensor_slices((noisy, clean))
            .shuffle(10_000, seed=training.seed).repeat()
            .batch(training.batch_size).prefetch(tf.data.AUTOTUNE))

  def trainer_input():
    return data.make_dataset(files, training.batch_size, common.mnist_info(),
                             shuffle_seed=training.seed, repeat=True)

  def images_per_s(dataset):
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * training.batch_size / (time.perf_counter() - start)

  # An untimed quarter pass of each first: it traces the step, and without
  # it a first timed repeat measured warm-up, not input (at 62e20a5 the
  # first in-memory repeat ran at 659 images/s, the next two 806-822).
  for warm_up in (trainer_input(), in_memory()):
    model.fit(warm_up, steps_per_epoch=warm_up_steps, epochs=1, verbose=0)
  pipeline_rates, memory_rates = [], []
  for _ in range(repeats):
    pipeline_rates.append(images_per_s(trainer_input()))
    memory_rates.append(images_per_s(in_memory()))
  return {'steps': steps, 'batch': training.batch_size, 'repeats': repeats,
          'trainer_input_images_per_s': spread(pipeline_rates, digits=0),
          'in_memory_images_per_s': spread(memory_rates, digits=0),
          'trainer_input_over_in_memory': spread(
              [a / b for a, b in zip(pipeline_rates, memory_rates)], digits=3)}


def noise_throughput(examples_uri: str, config, repeats: int) -> Dict[str, object]:
  """NoiseTransform on Beam (two runners) vs numpy in memory, examples/s,
  interleaved repeats."""
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.noise_transform import executor  # pylint: disable=g-import-not-at-top
  from components.common import noise  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  from components.common import dataset_info  # pylint: disable=g-import-not-at-top
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  dataset_info.record(examples, common.mnist_info())
  splits = sorted(name for name in os.listdir(examples_uri) if name.startswith('Split-'))
  examples.split_names = artifact_utils.encode_split_names(
      [name[len('Split-'):] for name in splits])
  count = sum(run_summary.count_records(examples_uri, name[len('Split-'):])
              for name in splits)
  spec = config.noise
  properties = executor.exec_properties_from_spec(spec)
  # As the pipeline passes them (no sdist of TFX built inside the timing).
  no_staging = pipeline_module.DIRECT_RUNNER_NO_STAGING
  runners = {
      'beam_direct_in_memory': ['--direct_running_mode=in_memory',
                                '--direct_num_workers=1', no_staging],
      'beam_multi_processing_2': ['--direct_running_mode=multi_processing',
                                  '--direct_num_workers=2', no_staging],
  }
  mnist = common.load_mnist()
  images = np.concatenate([mnist['train'][0], mnist['test'][0]])[:count].reshape(count, -1)
  labels = np.concatenate([mnist['train'][1], mnist['test'][1]])[:count]

  def beam_rate(beam_args):
    with tempfile.TemporaryDirectory() as output_dir:
      output = standard_artifacts.Examples()
      output.uri = output_dir
      context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args)
      start = time.perf_counter()
      executor.Executor(context).Do({executor.EXAMPLES_KEY: [examples]},
                                    {executor.NOISY_EXAMPLES_KEY: [output]}, properties)
      return count / (time.perf_counter() - start)

  def numpy_rate():
    start = time.perf_counter()
    noise.add_noise(images.astype(np.float32) / 255.0,
                    noise.example_keys(images, labels), spec)
    return count / (time.perf_counter() - start)

  rates = {name: [] for name in (*runners, 'numpy_in_memory')}
  for _ in range(repeats):  # Interleaved: drift hits every side alike.
    for name, beam_args in runners.items():
      rates[name].append(beam_rate(beam_args))
    rates['numpy_in_memory'].append(numpy_rate())
  result = {'examples': count, 'repeats': repeats}
  for name, values in rates.items():
    result[name] = spread(values, digits=0)
  for name in runners:
    result[f'{name}_over_numpy'] = spread(
        [a / b for a, b in zip(rates[name], rates['numpy_in_memory'])], digits=3)
  return result


def inference(model_dir: str, calls: int) -> Dict[str, float]:
  """Batch-1 latency percentiles and batch-256 throughput of a SavedModel."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.common import saved_model  # pylint: disable=g-import-not-at-top
  signature = tf.saved_model.load(model_dir).signatures[saved_model.IMAGES_SIGNATURE]
  rng = np.random.default_rng(0)
  one = tf.constant(rng.random((1, 28, 28, 1), np.float32))
  batch = tf.constant(rng.random((256, 28, 28, 1), np.float32))
  for _ in range(5):
    signature(images=one)
    signature(images=batch)
  latencies = []
  for _ in range(calls):
    start = time.perf_counter()
    signature(images=one)[saved_model.OUTPUT_KEY].numpy()
    latencies.append(time.perf_counter() - start)
  batches = max(5, calls // 20)
  start = time.perf_counter()
  for _ in range(batches):
    signature(images=batch)[saved_model.OUTPUT_KEY].numpy()
  throughput = batches * 256 / (time.perf_counter() - start)
  return {'batch1_p50_ms': round(float(np.percentile(latencies, 50)) * 1000, 2),
          'batch1_p99_ms': round(float(np.percentile(latencies, 99)) * 1000, 2),
          'batch256_images_per_s': round(throughput), 'calls': calls}


def render_table(result: Dict[str, object]) -> str:
  """The Markdown table of docs/benchmarks.md: medians with their spread."""
  e2e, noise_result = result['end_to_end'], result['noise']
  components = e2e['pipeline_components_seconds']
  example_gen_s = components.get('TfdsExampleGen')
  capped = e2e.get('max_train_steps')
  rows = [
      ('**pipeline overhead**: cold `dae-pipeline run` wall minus the Trainer\'s `fit`',
       common.median_range(e2e['pipeline_overhead_s'], ' s', 1), ''),
      ('plain script overhead: its wall minus its `fit`',
       common.median_range(e2e['plain_overhead_s'], ' s', 1), ''),
  ]
  for architecture, train in result['training'].items():
    rows.append((f'training, {architecture}: Trainer loop (batch {train["trainer_batch"]}, '
                 f'{train["trainer_policy"]}) vs eager GradientTape (batch {train["eager_batch"]})',
                 f'{train["trainer_images_per_s"]:,} vs {train["eager_images_per_s"]:,} images/s',
                 f'{train["ratio"]:.1f}x'))
  feed = result['input_pipeline']
  rows.append((f'training input: Trainer\'s input pipeline (fresh, cache empty) vs in-memory '
               f'arrays, {feed["steps"]} steps each, interleaved',
               f'{common.median_range(feed["trainer_input_images_per_s"])} vs '
               f'{common.median_range(feed["in_memory_images_per_s"])} images/s',
               common.median_range(feed['trainer_input_over_in_memory'], 'x', 2)))
  for name in ('beam_direct_in_memory', 'beam_multi_processing_2'):
    rows.append((f'noise, NoiseTransform on {name.replace("_", " ")} vs numpy in memory '
                 '(interleaved)',
                 f'{noise_result[name]["median"]:,.0f} vs '
                 f'{noise_result["numpy_in_memory"]["median"]:,.0f} examples/s',
                 common.median_range(noise_result[name + '_over_numpy'], 'x', 2)))
  if example_gen_s:
    rows.append(('ingestion, TfdsExampleGen (cold run, from MLMD)',
                 f'{result["examples"] / example_gen_s:,.0f} examples/s '
                 f'({result["examples"]:,} in {example_gen_s:.0f} s)', ''))
  inference_result = result['inference']
  rows.append(('SavedModel inference, batch 1 latency p50 / p99',
               f'{inference_result["batch1_p50_ms"]} / {inference_result["batch1_p99_ms"]} ms', ''))
  rows.append(('SavedModel inference, batch 256', f'{inference_result["batch256_images_per_s"]:,} images/s', ''))
  rows.append(('end to end: `dae-pipeline run` (cold) vs plain Keras script',
               f'{common.median_range(e2e["pipeline_cold"]["seconds"], " s")} vs '
               f'{common.median_range(e2e["plain_script"]["seconds"], " s")}',
               common.median_range(e2e['pipeline_over_plain'], 'x', 2)))
  rerun = e2e['pipeline_rerun_after_push']
  rows.append(('end to end: re-run after the first push (re-evaluates against the new baseline)'
               if rerun.get('cold_run_pushed', True) else
               'end to end: re-run after a cold run that pushed nothing (not blessed: '
               'cached like the next row)',
               f'{rerun["seconds"]:.0f} s', ''))
  rows.append(('end to end: re-run, all else cached', f'{e2e["pipeline_cached"]["seconds"]:.0f} s', ''))
  rows.append(('peak resident memory: pipeline run vs plain script',
               f'{e2e["pipeline_cold"]["peak_rss_mib"]:,} vs '
               f'{e2e["plain_script"]["peak_rss_mib"]:,} MiB', ''))
  parts = [common.provenance_line(result), '']
  if capped is not None:
    parts += [f'Training capped at {capped} steps (`--max-train-steps`) on both sides: '
              'the overheads are the figures; end-to-end seconds and ratios are not a '
              'full training run\'s.', '']
  parts += [common.markdown_table(('what', 'measured', 'ratio (median, range)'), rows), '',
            'Where the last cold pipeline run spends its time (seconds per component, '
            'from MLMD; the rest is process start-up, imports and orchestration):', '',
            common.markdown_table(('component', 's'), sorted(
                components.items(), key=lambda item: -item[1])), '',
            'Plain script phases (s): ' + ', '.join(
                f'{name} {value:.0f}' for name, value in e2e['plain_script']['phases'].items())]
  return '\n'.join(parts) + '\n'


def main(argv=None) -> int:
  parser = common.make_parser(
      __doc__, 'a few minutes: smoke-profile runs, fewer steps, results to '
      'speed.quick.json (docs untouched)')
  parser.add_argument('--repeats', type=int, default=None,
                      help='interleaved repeats of each A/B pair (default 3, '
                      '--quick 2); the cold pipeline / plain script pair: --e2e-repeats')
  parser.add_argument('--e2e-repeats', type=int, default=1,
                      help='cold pipeline runs interleaved with plain-script runs')
  parser.add_argument('--max-train-steps', type=int, default=None,
                      help='cap training on both sides (measures the overheads '
                      'without a full training run)')
  parser.add_argument('--overhead-only', action='store_true',
                      help='only the end-to-end overheads and the noise A/B, to '
                      'speed.overhead.json (docs untouched)')
  args = parser.parse_args(argv)
  if args.render:
    return common.render_recorded('speed', render_table)
  origin = common.provenance()  # Of the code that runs, taken before it runs.
  start = time.perf_counter()
  profile = 'smoke' if args.quick else 'full'
  repeats = args.repeats or (2 if args.quick else REPEATS)
  config = pipeline_config.load_profile(profile)
  e2e = end_to_end(profile, args.e2e_repeats, args.max_train_steps)
  if args.overhead_only:
    noise_result = noise_throughput(e2e.pop('examples_uri'), config, repeats)
    for key in ('noisy_examples_uri', 'serving_dir', 'metadata_path'):
      e2e.pop(key)
    result = dict(origin, profile=profile, end_to_end=e2e, noise=noise_result,
                  seconds=round(time.perf_counter() - start, 1))
    print(json.dumps(result, indent=2))
    print('wrote ' + common.write_json('speed.overhead.json', result))
    return 0
  noisy, clean = _training_data(2048 if args.quick else 8192, config)
  training = {architecture: training_throughput(
      config, architecture, 10 if args.quick else 100, noisy, clean)
              for architecture in ('unet', 'article')}
  steps_per_epoch = -(-common.split_sizes(config.data)['train'] // config.training.batch_size)
  feed = input_pipeline_ab(e2e.pop('noisy_examples_uri'), config,
                           steps_per_epoch, repeats)
  noise_result = noise_throughput(e2e.pop('examples_uri'), config, repeats)
  inference_result = inference(common.latest_version_dir(e2e.pop('serving_dir')),
                               50 if args.quick else 500)
  e2e.pop('metadata_path')
  result = dict(origin, quick=args.quick, profile=profile,
                examples=noise_result['examples'], end_to_end=e2e, training=training,
                input_pipeline=feed, noise=noise_result, inference=inference_result,
                seconds=round(time.perf_counter() - start, 1))
  common.publish('speed', result, render_table(result), args.quick)
  return 0


if __name__ == '__main__':
  sys.exit(main())
