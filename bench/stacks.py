"""Stack comparison: the pipeline on this checkout's stack and on another's.

    python -m bench.stacks --old DIR [--repeats N]
    python -m bench.stacks --render

DIR is a checkout of the project at another commit with its own `.venv` set
up, e.g. the last commit on an older stack:

    git worktree add /var/tmp/old-stack COMMIT && make -C /var/tmp/old-stack setup

Each repeat measures both stacks in turn, the order alternating (old, new;
new, old; ...) so that the machine's drift falls on both alike, each figure
in a fresh process of that stack:

* `import tfx.v1`: wall seconds;
* a cold smoke run (`dae-pipeline run --profile smoke`, a fresh root): wall seconds;
* a cold full run with one training epoch (fresh root): its **overhead**
  (wall minus the Trainer's `fit`, from its training_settings.json) and the
  epoch's `fit` seconds.

Reported per stack as median and range, and as new/old ratios taken pair by
pair. Writes bench/results/stacks.json and the stacks table of
docs/benchmarks.md.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

from bench import common
from bench import speed

IMPORT_SCRIPT = ('import time; start = time.perf_counter(); import tfx.v1; '
                 'print(time.perf_counter() - start)')
VERSIONS_SCRIPT = ('import json, platform, sys, tfx, tensorflow, apache_beam, keras; '
                   'print(json.dumps({"python": platform.python_version(), '
                   '"glibc": platform.libc_ver()[1], "tfx": tfx.__version__, '
                   '"tensorflow": tensorflow.__version__, "beam": apache_beam.__version__, '
                   '"keras": keras.__version__}))')
# Each measurement: (result key, what the table calls it).
MEASURES = (('import_tfx_s', '`import tfx.v1`'),
            ('smoke_cold_s', 'cold smoke run, wall'),
            ('full_overhead_s', 'cold full run (1 epoch): wall minus the Trainer\'s `fit`'),
            ('full_epoch_fit_s', 'one training epoch on full MNIST (the Trainer\'s `fit`)'))


def _output(command: List[str], cwd: str) -> str:
  """A child's stdout (its stderr shown on failure)."""
  done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
  if done.returncode != 0:
    raise RuntimeError(f'{" ".join(command)} exited with {done.returncode}:\n'
                       f'{done.stderr[-3000:]}')
  return done.stdout


class Stack:
  """A checkout and its .venv: what runs the measurements of one side."""

  def __init__(self, name: str, checkout: str):
    self.name = name
    self.checkout = os.path.abspath(checkout)
    self.python = os.path.join(self.checkout, '.venv', 'bin', 'python')
    self.dae_pipeline = os.path.join(self.checkout, '.venv', 'bin', 'dae-pipeline')
    for program in (self.python, self.dae_pipeline):
      if not os.access(program, os.X_OK):
        raise FileNotFoundError(f'{program} is missing: run `make setup` in {self.checkout}')

  def describe(self) -> Dict[str, object]:
    commit = subprocess.run(['git', 'rev-parse', '--short=10', 'HEAD'], cwd=self.checkout,
                            capture_output=True, text=True, check=False).stdout.strip()
    versions = json.loads(_output([self.python, '-c', VERSIONS_SCRIPT], self.checkout)
                          .strip().splitlines()[-1])
    return {'commit': commit, **versions}

  def import_seconds(self) -> float:
    return float(_output([self.python, '-c', IMPORT_SCRIPT], self.checkout).split()[-1])

  def cold_run(self, profile: str, root: str, *settings: str) -> Dict[str, float]:
    """A run on a fresh root: its wall seconds and its Trainer's fit seconds."""
    shutil.rmtree(root, ignore_errors=True)
    arguments = ['run', '--profile', profile, '--quiet',
                 '--pipeline-root', os.path.join(root, 'pipeline_root'),
                 '--serving-dir', os.path.join(root, 'serving'),
                 '--set', f'pipeline_name=mnist-dae-bench-stacks-{profile}']
    for setting in settings:
      arguments += ['--set', setting]
    print(f'+ [{self.name}] dae-pipeline {" ".join(arguments)}', flush=True)
    start = time.perf_counter()
    _output([self.dae_pipeline, *arguments], self.checkout)
    wall = time.perf_counter() - start
    metadata = os.path.join(root, 'pipeline_root', 'metadata.sqlite')
    fit = float(_output([self.python, '-c', 'import sys; from bench import speed; '
                         'print(speed.trainer_fit_seconds(sys.argv[1]))', metadata],
                        self.checkout).split()[-1])
    shutil.rmtree(root, ignore_errors=True)
    return {'wall': wall, 'fit': fit}

  def measure(self, work_dir: str) -> Dict[str, float]:
    """One repeat of every measurement, on this stack."""
    root = os.path.join(work_dir, self.name)
    smoke = self.cold_run('smoke', root)
    full = self.cold_run('full', root, 'training.epochs=1')
    return {'import_tfx_s': self.import_seconds(), 'smoke_cold_s': smoke['wall'],
            'full_overhead_s': full['wall'] - full['fit'], 'full_epoch_fit_s': full['fit']}


def compare(old: Stack, new: Stack, repeats: int) -> Dict[str, object]:
  """Interleaved repeats; per stack the spread, and new/old ratios pair by pair."""
  work_dir = os.path.join(common.WORK_DIR, 'stacks')
  values = {stack.name: {key: [] for key, _ in MEASURES} for stack in (old, new)}
  for repeat in range(repeats):
    order = (old, new) if repeat % 2 == 0 else (new, old)
    for stack in order:
      for key, value in stack.measure(work_dir).items():
        values[stack.name][key].append(value)
  ratios = {key: speed.spread([n / o for n, o in zip(values[new.name][key],
                                                      values[old.name][key])], digits=2)
            for key, _ in MEASURES}
  return {'repeats': repeats,
          'stacks': {stack.name: {'checkout': stack.describe(),
                                  **{key: speed.spread(series)
                                     for key, series in values[stack.name].items()}}
                     for stack in (old, new)},
          'new_over_old': ratios}


def _stack_title(stack: Dict[str, object]) -> str:
  versions = stack['checkout']
  return (f'TFX {versions["tfx"]}, TF {versions["tensorflow"]}, Beam {versions["beam"]}, '
          f'Python {versions["python"]}')


def render_table(result: Dict[str, object]) -> str:
  """The stacks table of docs/benchmarks.md: medians, ranges and ratios."""
  old, new = result['stacks']['old'], result['stacks']['new']
  rows = [(label, common.median_range(old[key], ' s', 1), common.median_range(new[key], ' s', 1),
           f'{result["new_over_old"][key]["median"]:.2f}x '
           f'({result["new_over_old"][key]["min"]:.2f}-{result["new_over_old"][key]["max"]:.2f})')
          for key, label in MEASURES]
  table = common.markdown_table(
      ('what (median, range)', f'old: {_stack_title(old)}', f'new: {_stack_title(new)}',
       'new / old'), rows)
  return (f'{table}\n\n{result["repeats"]} interleaved repeats. '
          f'{common.provenance_line(result)}\n')


def main(argv=None) -> int:
  parser = common.make_parser(__doc__, 'one repeat, results to stacks.quick.json '
                              '(docs untouched)')
  parser.add_argument('--old', help='a checkout of the older stack, with its .venv set up')
  parser.add_argument('--repeats', type=int, default=2,
                      help='interleaved repeats of both stacks (default 2)')
  args = parser.parse_args(argv)
  if args.render:
    return common.render_recorded('stacks', render_table)
  if not args.old:
    parser.error('--old DIR is required (a checkout of the older stack)')
  origin = common.provenance()
  start = time.perf_counter()
  old = Stack('old', args.old)
  new = Stack('new', os.path.dirname(common.BENCH_DIR))
  result = dict(origin, **compare(old, new, 1 if args.quick else args.repeats),
                seconds=round(time.perf_counter() - start, 1))
  common.publish('stacks', result, render_table(result), args.quick)
  return 0


if __name__ == '__main__':
  sys.exit(main())
