"""What the benchmarks share: MNIST as arrays, the pipeline's noise, pipeline
runs, the record of where a figure came from, and the tables of
docs/benchmarks.md."""

import contextlib
import datetime
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from components.trainer import cpu_info
import pipeline_config

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(BENCH_DIR, 'results')
# The page whose marked sections the benchmarks' tables are rendered into.
RESULTS_PAGE = os.path.join(pipeline_config.repository_root(), 'docs',
                            'benchmarks.md')
WORK_DIR = os.path.join(pipeline_config.repository_root(), 'build', 'bench')
DAE_PIPELINE = os.path.join(os.path.dirname(sys.executable), 'dae-pipeline')


def git_commit() -> str:
  """HEAD's short hash, with '-dirty' when tracked files have changes."""
  root = pipeline_config.repository_root()
  def git(*args):
    return subprocess.run(['git', *args], cwd=root, capture_output=True,
                          text=True, check=False).stdout.strip()
  commit = git('rev-parse', '--short=10', 'HEAD') or 'unknown'
  return commit + ('-dirty' if git('status', '--porcelain', '--untracked-files=no') else '')


# /proc/cpuinfo flags that change how fast this project trains (oneDNN picks
# its kernels by them), and how a table names them: two machines with the same
# model name can train at very different speeds.
CPU_FEATURES = {'avx512f': 'AVX-512', 'avx512_bf16': 'bfloat16', 'amx_bf16': 'AMX'}


def cpu_features(flags: List[str]) -> List[str]:
  """The names of the `CPU_FEATURES` among a CPU's flags, in that order."""
  return [name for flag, name in CPU_FEATURES.items() if flag in flags]


def _features_text(box: Dict[str, object]) -> str:
  """'AVX-512, bfloat16', 'no AVX-512', or '' when not recorded."""
  features = box.get('cpu_features')
  if features is None:
    return ''
  return ', '.join(features) or 'no AVX-512'


def describe_cpu(box: Dict[str, object]) -> str:
  """'AMD EPYC (AVX-512, bfloat16)', 'AMD EPYC (no AVX-512)', or just the
  model when its features were not recorded."""
  features = _features_text(box)
  return f"{box['cpu']} ({features})" if features else str(box['cpu'])


def machine() -> Dict[str, object]:
  """CPU model and features, cores, memory and Python: the machine a figure
  belongs to."""
  model_name, flags = cpu_info.read()
  cpu = model_name or platform.processor() or platform.machine()
  memory_gib = None
  with contextlib.suppress(OSError, ValueError, IndexError):
    with open('/proc/meminfo') as meminfo:
      memory_gib = round(int(meminfo.readline().split()[1]) / 2**20, 1)
  return {'cpu': cpu, 'cpu_features': cpu_features(flags),
          'cores': os.cpu_count(), 'memory_gib': memory_gib,
          'python': platform.python_version(), 'platform': platform.platform()}


def provenance() -> Dict[str, object]:
  """Date, commit and machine, for every result file."""
  return {'date': datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%d %H:%M UTC'), 'commit': git_commit(), 'machine': machine()}


def load_mnist(source_dir: Optional[str] = None) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
  """MNIST's 'train' and 'test' splits through the pipeline's TFDS builder.

  Returns:
    {split: (uint8 images [N, 28, 28, 1], int64 labels [N])}, in source order
    (the order the pipeline's `train[:N]` / `train[-M:]` specs slice).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from components.tfds_example_gen import sources  # pylint: disable=g-import-not-at-top
  source_dir = source_dir or pipeline_config.default_source_dir()
  fingerprint = sources.fingerprint_source_dir(source_dir)[:16]
  builder = sources.make_builder(
      pipeline_config.DataSpec(source_dir=source_dir),
      os.path.join(WORK_DIR, 'tfds', fingerprint))
  with tempfile.TemporaryDirectory() as download_dir:
    sources.prepare(builder, download_dir)
  splits = {}
  for split in ('train', 'test'):
    dataset = builder.as_dataset(split=split, batch_size=-1, shuffle_files=False,
                                 read_config=tfds.ReadConfig(interleave_cycle_length=1))
    arrays = tfds.as_numpy(dataset)
    splits[split] = (arrays['image'], arrays['label'].astype(np.int64))
  return splits


def idx_images_header(source_dir: Optional[str] = None, split: str = 'test'
                      ) -> Tuple[int, int, int]:
  """(count, rows, columns) of a split's gzipped IDX image file, as its header
  says (magic, count, rows, columns as big-endian int32): numpy alone, for
  the benchmarks that run where TensorFlow is not installed."""
  from components.tfds_example_gen import settings as example_gen_settings  # pylint: disable=g-import-not-at-top
  path = os.path.join(source_dir or pipeline_config.default_source_dir(),
                      example_gen_settings.SOURCE_FILENAMES[f'{split}_data'])
  with gzip.open(path, 'rb') as idx_file:
    header = idx_file.read(example_gen_settings.IDX_IMAGES_HEADER_BYTES)
  _, count, rows, columns = np.frombuffer(header, '>i4')
  return int(count), int(rows), int(columns)


def mnist_info(source_dir: Optional[str] = None):
  """MNIST's DatasetInfo, as the pipeline records it (the benchmarks are
  MNIST's): the image shape of its IDX files, TFDS's names of its classes."""
  from components.common import dataset_info  # pylint: disable=g-import-not-at-top
  _, rows, columns = idx_images_header(source_dir)
  return dataset_info.DatasetInfo('mnist', (rows, columns, 1),
                                  [str(label) for label in range(10)])


def split_sizes(data, source_dir: Optional[str] = None) -> Dict[str, int]:
  """The images of each split the pipeline makes of MNIST with the data
  settings `data` (the ExampleGen's one split plan over the IDX files' counts)."""
  from components.tfds_example_gen import settings  # pylint: disable=g-import-not-at-top
  lengths = {split: idx_images_header(source_dir, split)[0]
             for split in ('train', 'test')}
  return {split: planned.size for split, planned in
          settings.plan_splits(data, lengths, 'mnist').items()}


def noisy_copy(images: np.ndarray, labels: np.ndarray,
               noise_config: pipeline_config.NoiseSpec
               ) -> Tuple[np.ndarray, np.ndarray]:
  """(clean, noisy) float32 [N, 28, 28, 1]: the pipeline's own noise.

  The noise of an example depends only on its pixels, label and the noise
  settings (see components/common/noise/__init__.py), so these are the
  images the pipeline's Evaluator sees for the same settings.
  """
  from components.common import noise  # pylint: disable=g-import-not-at-top
  flat = images.reshape(len(images), -1)
  clean = flat.astype(np.float32) / 255.0
  noisy, _ = noise.add_noise(clean, noise.example_keys(flat, labels),
                             noise_config)
  shape = (-1,) + mnist_info().image_shape
  return clean.reshape(shape), noisy.reshape(shape)


def run_pipeline(arguments: Sequence[str]) -> float:
  """Runs `dae-pipeline run ARGUMENTS` in a child process; its wall seconds.

  Raises:
    RuntimeError: the run failed (its output was shown).
  """
  command = [DAE_PIPELINE, 'run', *arguments]
  print('+ ' + ' '.join(command), flush=True)
  start = time.perf_counter()
  completed = subprocess.run(command, cwd=pipeline_config.repository_root(),
                             check=False)
  elapsed = time.perf_counter() - start
  if completed.returncode != 0:
    raise RuntimeError(f'{" ".join(command)} exited with {completed.returncode}')
  return elapsed


def timed_child(command: List[str]) -> Dict[str, object]:
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


def latest_version_dir(serving_dir: str) -> str:
  """The newest pushed version of a serving directory."""
  versions = sorted((name for name in os.listdir(serving_dir) if name.isdigit()),
                    key=int) if os.path.isdir(serving_dir) else []
  if not versions:
    raise FileNotFoundError(f'no pushed model in {serving_dir}')
  return os.path.join(serving_dir, versions[-1])


def write_json(name: str, payload: Dict[str, object]) -> str:
  """Writes bench/results/NAME (indented JSON); returns its path."""
  os.makedirs(RESULTS_DIR, exist_ok=True)
  path = os.path.join(RESULTS_DIR, name)
  with open(path, 'w') as output:
    json.dump(payload, output, indent=2, sort_keys=False)
    output.write('\n')
  return path


def median_range(value: Dict[str, object], unit: str = '', digits: int = 0) -> str:
  """'median (min-max over N)' of a spread, e.g. '1,234 (1,200-1,300 over 3) images/s'."""
  if len(value['values']) == 1:
    return f'{value["median"]:,.{digits}f}{unit} (one measurement)'
  return (f'{value["median"]:,.{digits}f}{unit} ({value["min"]:,.{digits}f}-'
          f'{value["max"]:,.{digits}f} over {len(value["values"])})')


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  """A GitHub Markdown table."""
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
  return '\n'.join(lines)


def replace_section(name: str, text: str, page_path: str = RESULTS_PAGE) -> None:
  """Replaces what is between `<!-- NAME:begin -->` and `<!-- NAME:end -->`."""
  with open(page_path) as page:
    content = page.read()
  pattern = re.compile(rf'(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)', re.S)
  if not pattern.search(content):
    raise ValueError(f'{page_path} has no {name} section markers')
  content = pattern.sub(lambda match: match.group(1) + text.rstrip('\n') + '\n'
                        + match.group(2), content)
  with open(page_path, 'w') as page:
    page.write(content)


def make_parser(doc: str, quick_help: str):
  """An argument parser described by the module docstring, with --quick and
  --render."""
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=doc.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help=quick_help)
  parser.add_argument('--render', action='store_true',
                      help='measure nothing: rewrite its section of '
                      'docs/benchmarks.md from the recorded results file')
  return parser


def read_recorded(name: str) -> Optional[Dict[str, object]]:
  """results/NAME.json, or None when there is none."""
  path = os.path.join(RESULTS_DIR, f'{name}.json')
  if not os.path.exists(path):
    return None
  with open(path) as results:
    return json.load(results)


def render_recorded(name: str, render) -> int:
  """Rewrites section NAME of docs/benchmarks.md from results/NAME.json with
  `render`."""
  recorded = read_recorded(name)
  if recorded is None:
    raise FileNotFoundError(f'no {name}.json in {RESULTS_DIR}')
  markdown = render(recorded)
  replace_section(name, markdown)
  print(markdown)
  return 0


def publish(name: str, result: Dict[str, object], markdown: str,
            quick: bool) -> str:
  """Writes results/NAME.json and section NAME of docs/benchmarks.md
  (--quick: only results/NAME.quick.json); prints the tables. Returns the
  JSON path."""
  path = write_json(f'{name}.quick.json' if quick else f'{name}.json', result)
  if not quick:
    replace_section(name, markdown)
  print(markdown)
  print(f'wrote {path} in {result["seconds"]:.0f} s')
  return path


def provenance_line(record: Dict[str, object]) -> str:
  """'Measured on <cpu> (<cores> cores, <GiB> GiB, <features>), Python
  <version>.' (no features where none were recorded).

  The date and commit stay in the results file: the rendered page changes
  only when a figure does.
  """
  box = record['machine']
  features = _features_text(box)
  return (f"Measured on {box['cpu']} ({box['cores']} cores, {box['memory_gib']} GiB"
          f"{', ' + features if features else ''}), Python {box['python']}; date "
          'and commit in the results file.')

