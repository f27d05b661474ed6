"""Speed benchmark: how fast each part of the pipeline is, as ratios measured
in the same run on this machine.

    python -m bench.speed [--quick]      (or: make bench-speed)

* training images/s: the Trainer's compiled loop (Keras `fit`, its batch and
  precision policy) vs the article's eager GradientTape loop (batch 32, no
  tf.function), same architecture and data, for both architectures;
* noise: NoiseTransform's executor on Beam (DirectRunner in memory, and
  multi-processing with 2 workers) vs the same noise computed with numpy on
  arrays already in memory (the in-process limit);
* ingestion: TfdsExampleGen's examples/s in a cold pipeline run (from MLMD);
* SavedModel inference: batch-1 latency p50/p99, batch-256 images/s;
* end to end: a cold `dae-pipeline run` and its cached re-run vs the plain
  Keras script doing the same job (bench/plain_keras.py), with the peak
  resident memory of each and the pipeline's time per component.

Writes bench/results/speed.json and the table of bench/README.md (--quick:
the smoke profile and fewer steps, to speed.quick.json, README untouched).
"""

import json
import os
import resource
import shutil
import subprocess
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


def _children_peak_rss_mib() -> float:
  """Peak RSS of the largest child process waited for so far (MiB)."""
  return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _timed_child(command: List[str]) -> Dict[str, object]:
  """Runs a child process alone; its wall seconds, peak RSS and stdout."""
  # getrusage(RUSAGE_CHILDREN) keeps the maximum over all children, so each
  # measured child runs in a fresh grandchild shell that reports its own.
  wrapper = [sys.executable, '-c',
             'import resource, subprocess, sys, time\n'
             't = time.perf_counter()\n'
             'p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n'
             'sys.stdout.write(p.stdout)\n'
             'print("\\n@@", time.perf_counter() - t, resource.getrusage('
             'resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)\n', *command]
  print('+ ' + ' '.join(command), flush=True)
  output = subprocess.run(wrapper, stdout=subprocess.PIPE, text=True,
                          cwd=pipeline_config.repository_root(), check=True).stdout
  body, _, tail = output.rpartition('\n@@ ')
  seconds, peak_kib, returncode = tail.split()
  if int(returncode) != 0:
    raise RuntimeError(f'{" ".join(command)} exited with {returncode}:\n{body[-3000:]}')
  return {'seconds': round(float(seconds), 1),
          'peak_rss_mib': round(int(peak_kib) / 1024.0), 'stdout': body}


def component_seconds(metadata_path: str) -> Dict[str, float]:
  """Wall seconds of each execution of the newest run, from MLMD."""
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  store = run_summary.open_store(metadata_path)
  run_id = run_summary.run_ids(store)[-1]
  context = store.get_context_by_type_and_name(run_summary.PIPELINE_RUN_CONTEXT, run_id)
  records = run_summary.run_executions(store, run_id)
  executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
  return {record.node_id: round((execution.last_update_time_since_epoch -
                                 execution.create_time_since_epoch) / 1000.0, 1)
          for record, execution in zip(records, executions)}


def end_to_end(profile: str) -> Dict[str, object]:
  """Cold and cached pipeline runs, and the plain script, on one profile."""
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  root = os.path.join(common.WORK_DIR, 'speed', profile)
  shutil.rmtree(root, ignore_errors=True)
  arguments = ['--profile', profile, '--pipeline-root', os.path.join(root, 'pipeline_root'),
               '--serving-dir', os.path.join(root, 'serving'),
               '--set', f'pipeline_name=mnist-dae-bench-speed-{profile}']
  cold = _timed_child([common.DAE_PIPELINE, 'run', *arguments])
  metadata_path = os.path.join(root, 'pipeline_root', 'metadata.sqlite')
  components = component_seconds(metadata_path)
  # The first re-run re-evaluates (the pushed model is now the baseline);
  # the one after it is served from the cache entirely.
  rerun = _timed_child([common.DAE_PIPELINE, 'run', *arguments])
  cached = _timed_child([common.DAE_PIPELINE, 'run', *arguments])
  plain = _timed_child([sys.executable, '-m', 'bench.plain_keras', '--profile', profile])
  plain_result = json.loads(plain['stdout'].strip().splitlines()[-1])
  return {
      'pipeline_cold': {key: cold[key] for key in ('seconds', 'peak_rss_mib')},
      'pipeline_rerun_after_push': {key: rerun[key] for key in ('seconds', 'peak_rss_mib')},
      'pipeline_cached': {key: cached[key] for key in ('seconds', 'peak_rss_mib')},
      'pipeline_components_seconds': components,
      'plain_script': {'seconds': plain['seconds'], 'peak_rss_mib': plain['peak_rss_mib'],
                       'phases': plain_result['phases'],
                       'metrics': plain_result['metrics']},
      'pipeline_over_plain': round(cold['seconds'] / plain['seconds'], 2),
      'metadata_path': metadata_path,
      'serving_dir': os.path.join(root, 'serving'),
      'examples_uri': run_summary.latest_output(metadata_path, 'TfdsExampleGen',
                                                'examples')[1],
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
  from components.trainer import model as model_lib  # pylint: disable=g-import-not-at-top
  from components.trainer import strategy  # pylint: disable=g-import-not-at-top
  training = config.training

  # The Trainer's loop: compiled `fit`, its batch size and precision policy.
  keras.utils.set_random_seed(training.seed)
  placement = strategy.choose_placement(
      allow_mixed_precision=training.mixed_precision)
  policy = keras.mixed_precision.global_policy().name
  model = model_lib.compile_model(model_lib.build_model(architecture), training.loss,
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
  model = model_lib.build_model(architecture)
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


def noise_throughput(examples_uri: str, config) -> Dict[str, object]:
  """NoiseTransform on Beam (two runners) vs numpy in memory, examples/s."""
  from tfx.dsl.components.base import base_beam_executor  # pylint: disable=g-import-not-at-top
  from tfx.types import artifact_utils  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from components.noise_transform import executor  # pylint: disable=g-import-not-at-top
  from components.noise_transform import noise  # pylint: disable=g-import-not-at-top
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  splits = sorted(name for name in os.listdir(examples_uri) if name.startswith('Split-'))
  examples.split_names = artifact_utils.encode_split_names(
      [name[len('Split-'):] for name in splits])
  count = sum(run_summary.count_records(examples_uri, name[len('Split-'):])
              for name in splits)
  spec = config.noise
  properties = executor.exec_properties_from_spec(spec)
  runners = {
      'beam_direct_in_memory': ['--direct_running_mode=in_memory',
                                '--direct_num_workers=1'],
      'beam_multi_processing_2': ['--direct_running_mode=multi_processing',
                                  '--direct_num_workers=2'],
  }
  result = {'examples': count}
  for name, beam_args in runners.items():
    with tempfile.TemporaryDirectory() as output_dir:
      output = standard_artifacts.Examples()
      output.uri = output_dir
      context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args)
      start = time.perf_counter()
      executor.Executor(context).Do({executor.EXAMPLES_KEY: [examples]},
                                    {executor.NOISY_EXAMPLES_KEY: [output]}, properties)
      result[name] = round(count / (time.perf_counter() - start))
  mnist = common.load_mnist()
  images = np.concatenate([mnist['train'][0], mnist['test'][0]])[:count].reshape(count, -1)
  labels = np.concatenate([mnist['train'][1], mnist['test'][1]])[:count]
  start = time.perf_counter()
  noise.add_noise(images.astype(np.float32) / 255.0, noise.example_keys(images, labels), spec)
  result['numpy_in_memory'] = round(count / (time.perf_counter() - start))
  for name in runners:
    result[f'{name}_over_numpy'] = round(result[name] / result['numpy_in_memory'], 3)
  return result


def inference(model_dir: str, calls: int) -> Dict[str, float]:
  """Batch-1 latency percentiles and batch-256 throughput of a SavedModel."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.trainer import export  # pylint: disable=g-import-not-at-top
  signature = tf.saved_model.load(model_dir).signatures[export.IMAGES_SIGNATURE]
  rng = np.random.default_rng(0)
  one = tf.constant(rng.random((1, 28, 28, 1), np.float32))
  batch = tf.constant(rng.random((256, 28, 28, 1), np.float32))
  for _ in range(5):
    signature(images=one)
    signature(images=batch)
  latencies = []
  for _ in range(calls):
    start = time.perf_counter()
    signature(images=one)[export.OUTPUT_KEY].numpy()
    latencies.append(time.perf_counter() - start)
  batches = max(5, calls // 20)
  start = time.perf_counter()
  for _ in range(batches):
    signature(images=batch)[export.OUTPUT_KEY].numpy()
  throughput = batches * 256 / (time.perf_counter() - start)
  return {'batch1_p50_ms': round(float(np.percentile(latencies, 50)) * 1000, 2),
          'batch1_p99_ms': round(float(np.percentile(latencies, 99)) * 1000, 2),
          'batch256_images_per_s': round(throughput), 'calls': calls}


def render_table(result: Dict[str, object]) -> str:
  """The Markdown table of bench/README.md."""
  e2e, noise_result = result['end_to_end'], result['noise']
  components = e2e['pipeline_components_seconds']
  example_gen_s = components.get('TfdsExampleGen')
  rows = []
  for architecture, train in result['training'].items():
    rows.append((f'training, {architecture}: Trainer loop (batch {train["trainer_batch"]}, '
                 f'{train["trainer_policy"]}) vs eager GradientTape (batch {train["eager_batch"]})',
                 f'{train["trainer_images_per_s"]:,} vs {train["eager_images_per_s"]:,} images/s',
                 f'{train["ratio"]:.1f}x'))
  for name in ('beam_direct_in_memory', 'beam_multi_processing_2'):
    rows.append((f'noise, {name.replace("_", " ")} vs numpy in memory',
                 f'{noise_result[name]:,} vs {noise_result["numpy_in_memory"]:,} examples/s',
                 f'{noise_result[name + "_over_numpy"]:.2f}x'))
  if example_gen_s:
    rows.append(('ingestion, TfdsExampleGen (cold run, from MLMD)',
                 f'{result["examples"] / example_gen_s:,.0f} examples/s '
                 f'({result["examples"]:,} in {example_gen_s:.0f} s)', ''))
  inference_result = result['inference']
  rows.append(('SavedModel inference, batch 1 latency p50 / p99',
               f'{inference_result["batch1_p50_ms"]} / {inference_result["batch1_p99_ms"]} ms', ''))
  rows.append(('SavedModel inference, batch 256', f'{inference_result["batch256_images_per_s"]:,} images/s', ''))
  rows.append(('end to end: `dae-pipeline run` (cold) vs plain Keras script',
               f'{e2e["pipeline_cold"]["seconds"]:.0f} s vs {e2e["plain_script"]["seconds"]:.0f} s',
               f'{e2e["pipeline_over_plain"]:.2f}x'))
  rows.append(('end to end: re-run after the first push (re-evaluates against the new baseline)',
               f'{e2e["pipeline_rerun_after_push"]["seconds"]:.0f} s', ''))
  rows.append(('end to end: re-run with everything cached', f'{e2e["pipeline_cached"]["seconds"]:.0f} s', ''))
  rows.append(('peak resident memory: pipeline run vs plain script',
               f'{e2e["pipeline_cold"]["peak_rss_mib"]:,} vs '
               f'{e2e["plain_script"]["peak_rss_mib"]:,} MiB', ''))
  parts = [common.provenance_line(result), '',
           common.markdown_table(('what', 'measured', 'ratio'), rows), '',
           'Where the cold pipeline run spends its time (seconds per component, from MLMD; '
           'the rest is process start-up, imports and orchestration):', '',
           common.markdown_table(('component', 's'), sorted(
               components.items(), key=lambda item: -item[1])), '',
           'Plain script phases (s): ' + ', '.join(
               f'{name} {value:.0f}' for name, value in e2e['plain_script']['phases'].items())]
  return '\n'.join(parts) + '\n'


def main(argv=None) -> int:
  parser = common.make_parser(
      __doc__, 'a few minutes: smoke-profile runs, fewer steps, results to '
      'speed.quick.json (README untouched)')
  args = parser.parse_args(argv)
  if args.render:
    return common.render_recorded('speed', render_table)
  origin = common.provenance()  # Of the code that runs, taken before it runs.
  start = time.perf_counter()
  profile = 'smoke' if args.quick else 'full'
  config = pipeline_config.load_profile(profile)
  e2e = end_to_end(profile)
  noisy, clean = _training_data(2048 if args.quick else 8192, config)
  training = {architecture: training_throughput(
      config, architecture, 10 if args.quick else 100, noisy, clean)
              for architecture in ('unet', 'article')}
  noise_result = noise_throughput(e2e.pop('examples_uri'), config)
  inference_result = inference(common.latest_version_dir(e2e.pop('serving_dir')),
                               50 if args.quick else 500)
  e2e.pop('metadata_path')
  result = dict(origin, quick=args.quick, profile=profile,
                examples=noise_result['examples'], end_to_end=e2e, training=training,
                noise=noise_result, inference=inference_result,
                seconds=round(time.perf_counter() - start, 1))
  common.publish('speed', result, render_table(result), args.quick)
  return 0


if __name__ == '__main__':
  sys.exit(main())
