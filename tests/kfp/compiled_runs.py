"""What the compiled-run tests share: the smoke package compiled on tiny data
(local path or gs://), the two runs, and how a serving dir is read.

The first run pushes; the second, an untrained candidate with the value floors
out of the way, is evaluated against the first push (the served model is its
baseline), not blessed, and not pushed. tests/kfp/test_run_compiled.py runs
them on a local root, tests/kfp/test_storage_faults.py on gs:// with storage
faults injected (one run set per file: `make test` spreads files over cores).

The first run pushes for real (to the package's serving dir), or, as
`dae-pipeline run-compiled` does by default (through the CLI, its output
kept), to a scratch serving dir in its run folder. The second run is a
default pre-flight: its scratch serving dir holds a copy of what the
package's serves, which is the baseline it is evaluated against.
"""

import contextlib
import io

from html import parser as html_parser
import json
import os
import subprocess
import sys
from typing import Callable, Dict, List

import pytest

from pipeline import cli
from pipeline.kubeflow import run_compiled
from pipeline.kubeflow import compiler
import pipeline_config
from tests import idx_files

SPLITS = {'data.train_examples': 80, 'data.eval_examples': 30, 'data.test_examples': 20}
BUCKET = 'mnist-dae'
SAVED_MODEL = 'saved_model.pb'
# The Trainer's SavedModel, below its model artifact (what is pushed).
SERVING_MODEL_SUBDIR = 'Format-Serving'
LOAD_SCRIPT = ('import sys, tensorflow as tf; '
               'print(sorted(tf.saved_model.load(sys.argv[1]).signatures))')


def compile_package(tmp_path, name, storage, **overrides):
  """The smoke package on tiny data; returns (config, package path)."""
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  base = f'gs://{BUCKET}' if storage == 'gs' else str(tmp_path)
  config = pipeline_config.with_overrides(pipeline_config.load_profile('smoke'), {
      'pipeline_root': f'{base}/root', 'serving_dir': f'{base}/serving',
      'data.source_dir': tiny.directory, **SPLITS,
      'training.epochs': 32, 'training.max_train_steps': 64, **overrides})
  package = str(tmp_path / f'{name}.json')
  compiler.compile_pipeline(
      config, compiler.KubeflowOptions(gpu_count=0), package)
  return config, package


def metadata(results, task, key):
  return results[task].outputs[key][0]['metadata']


def _storage_client():
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  return storage.Client()


def files(directory: str) -> Dict[str, int]:
  """Relative path -> size of every file below `directory` (no directory
  markers), read the way a model server sees it."""
  if not directory.startswith('gs://'):
    return {os.path.relpath(os.path.join(root, name), directory):
            os.path.getsize(os.path.join(root, name))
            for root, _, names in os.walk(directory) for name in names}
  bucket, _, prefix = directory[len('gs://'):].partition('/')
  prefix = prefix.rstrip('/') + '/'
  return {blob.name[len(prefix):]: blob.size
          for blob in _storage_client().list_blobs(bucket, prefix=prefix)
          if not blob.name.endswith('/')}


def versions(serving_dir: str) -> List[str]:
  """The serving dir's versions, listed the way a model server sees them
  (numeric names: not the push records and push lock beside them)."""
  if not serving_dir.startswith('gs://'):
    names = os.listdir(serving_dir) if os.path.isdir(serving_dir) else []
  else:
    names = {name.split('/')[0] for name in files(serving_dir)}
  return sorted(name for name in names if name.isdigit())


def read_text(uri: str) -> str:
  """A file's text (gs://: through the emulator's client)."""
  if not uri.startswith('gs://'):
    with open(uri, encoding='utf-8') as local_file:
      return local_file.read()
  bucket, _, name = uri[len('gs://'):].partition('/')
  return _storage_client().bucket(bucket).blob(name).download_as_text()


class _Page(html_parser.HTMLParser):
  """A page's elements, links (src, href) and text, as an HTML parser reads it."""

  def __init__(self, page):
    super().__init__()
    self.tags, self.links, self.text = [], [], []
    self.feed(page)
    self.close()

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.links += [value for name, value in attrs if name in ('src', 'href')]

  def handle_data(self, data):
    self.text.append(data)


def load_model(directory: str) -> subprocess.CompletedProcess:
  """tf.saved_model.load of `directory` in a fresh process (gs://: through the
  environment's emulator); prints the signatures."""
  return subprocess.run([sys.executable, '-c', LOAD_SCRIPT, directory],
                        capture_output=True, text=True, check=False)


def run(package: str, run_id: str, work_dir: str, **options):
  """run_package's results, or (on a failed task) the results so far and the
  error, which names the task."""
  try:
    return run_compiled.run_package(package, run_id=run_id, work_dir=work_dir,
                                    **options), None
  except run_compiled.TaskFailed as error:
    return error.results, error


def run_command(package: str, run_id: str, work_dir: str):
  """`dae-pipeline run-compiled` as a user runs it (a default pre-flight):
  (results, error or None, its exit status, its output). The results are
  run_package's, as the command got them."""
  got = {}

  def recording(*args, **kwargs):
    try:
      got['results'] = original(*args, **kwargs)
    except run_compiled.TaskFailed as error:
      got['results'], got['error'] = error.results, error
      raise
    return got['results']

  original = run_compiled.run_package
  output = io.StringIO()
  with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
    patch.setattr(run_compiled, 'run_package', recording)
    status = cli.main(['run-compiled', package, '--run-id', run_id,
                       '--work-dir', work_dir])
  return got.get('results', {}), got.get('error'), status, output.getvalue()


def run_both(tmp_path, storage: str, second: bool = True,
             before_second: Callable[[], None] = lambda: None,
             push_for_real: bool = True):
  """The first run (pushes: for real, else through the CLI to its scratch
  serving dir) and, if `second`, the untrained second run (`before_second`
  called just before it)."""
  # Fresh noise: the Trainer redraws noise with the settings NoiseTransform
  # records on its output, which must reach it through the artifact's metadata.
  config, good = compile_package(tmp_path, 'good', storage,
                                 **{'training.fresh_noise': True})
  _, untrained = compile_package(tmp_path, 'untrained', storage, **{
      'training.max_train_steps': 0, 'thresholds.min_psnr_db': 0.0,
      'thresholds.max_mse': 1.0})
  work_dir = str(tmp_path / 'work')
  if push_for_real:
    first, first_error = run(good, 'first', work_dir, push_for_real=True)
    pushed_to, status, output = config.serving_dir, None, None
  else:
    first, first_error, status, output = run_command(good, 'first', work_dir)
    pushed_to = os.path.join(run_compiled.run_folder(work_dir, 'first'),
                             run_compiled.SCRATCH_SERVING_DIRNAME)
  served_after_first = versions(pushed_to)
  outcome = dict(config=config, first=first, first_error=first_error, storage=storage,
                 pushed_to=pushed_to, status=status, output=output, work_dir=work_dir,
                 package_versions=versions(config.serving_dir),
                 served_after_first=served_after_first, second=None,
                 second_error=None, served_after_second=None)
  if second and first_error is None:
    before_second()
    outcome['second'], outcome['second_error'] = run(untrained, 'second', work_dir)
    outcome['served_after_second'] = versions(config.serving_dir)
  outcome['loadable'] = load_model(
      f'{pushed_to}/{served_after_first[0]}') if served_after_first else None
  from components.common import push_records  # pylint: disable=g-import-not-at-top
  outcome['record'] = push_records.read(pushed_to, served_after_first[0]) if (
      served_after_first) else None
  return outcome


def check_the_first_run(runs) -> None:
  """Every task completed, one version pushed, loadable, as the driver lays out."""
  first, config = runs['first'], runs['config']
  assert runs['first_error'] is None, f"{runs['first_error']}\n" + _log_tail(runs['first_error'])
  assert {result.state for result in first.values()} == {'COMPLETE'}, {
      name: (result.state, result.reason) for name, result in first.items()}
  assert metadata(first, 'ServedModel', 'model')['served_version'] == ''
  assert metadata(first, 'Evaluator', 'blessing')['blessed'] == 1.0
  assert len(runs['served_after_first']) == 1
  # Pushed where it was told: a pre-flight leaves the package's serving dir be.
  assert runs['package_versions'] == (runs['served_after_first'] if (
      runs['pushed_to'] == config.serving_dir) else [])
  version_dir = f"{runs['pushed_to']}/{runs['served_after_first'][0]}"
  assert metadata(first, 'Pusher', 'pushed_model')['pushed_destination'] == version_dir
  # The pushed model loads (on gs:// through the emulator).
  assert runs['loadable'].returncode == 0, runs['loadable'].stderr[-2000:]
  assert 'serving_default' in runs['loadable'].stdout
  # The Trainer drew fresh noise with the settings NoiseTransform recorded
  # (it fails when they do not reach it).
  recorded = json.loads(metadata(first, 'NoiseTransform', 'noisy_examples')['noise_spec'])
  assert (recorded['kind'], recorded['stddev'], recorded['seed']) == (
      config.noise.kind, config.noise.stddev, config.noise.seed)
  # Output URIs as the OSS driver lays them out: <root>/<pipeline>/<run>/<task>/<salt>/<key>.
  uri = first['Trainer'].outputs['model'][0]['uri']
  assert uri.startswith(f'{config.pipeline_root}/{config.pipeline_name}/first/Trainer/')
  # The report as the KFP and Vertex UIs show it: the file at the html_report
  # artifact's URI, one self-contained page with the verdict and metrics.
  page = _Page(read_text(first['VisualReport'].outputs['html_report'][0]['uri']))
  text = ' '.join(' '.join(page.text).split())
  assert page.tags[:2] == ['html', 'head'] and page.tags.count('table') >= 2
  assert 'Verdict: blessed' in text and 'Test metrics' in text and 'psnr' in text
  assert len(page.links) == 2 and all(
      link.startswith('data:image/png;base64,') for link in page.links)
  # The push record names the Kubeflow run (no MLMD needed to read it).
  assert (runs['record'].run_id, runs['record'].orchestrator) == ('first', 'kubeflow')
  assert set(runs['record'].metrics) == {'psnr', 'ssim', 'mse'}
  # And what its figures were measured on: the dataset and noise NoiseTransform
  # recorded when it ran, handed to the Pusher in its examples' metadata.
  from components.common import noise  # pylint: disable=g-import-not-at-top
  info = json.loads(metadata(first, 'NoiseTransform', 'noisy_examples')['dataset_info'])
  assert (runs['record'].dataset, runs['record'].image_shape) == (
      info['name'], list(info['image_shape']))
  assert runs['record'].noise == noise.describe(config.noise)


def _log_tail(error, characters: int = 3000) -> str:
  """The end of a failed task's log (the error names the task and the log)."""
  failed = [result for result in getattr(error, 'results', {}).values()
            if result.state == 'FAILED' and result.log]
  if not failed:
    return ''
  with open(failed[0].log, encoding='utf-8', errors='replace') as log:
    return log.read()[-characters:]
