"""The pictures of a run: clean / noisy / denoised test digits and PSNR per digit.

Pure functions over numpy arrays and TFMA outputs, so the component, the
`dae-pipeline report` command and the tests share them. Figures are drawn
with matplotlib's object-oriented API on the Agg canvas (no display needed).
"""

import io
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DIGITS = tuple(range(10))
# The VisualReport component's output key (components/visual_report/component.py).
REPORT_KEY = 'report'
GRID_FILENAME = 'grid.png'
PSNR_CHART_FILENAME = 'psnr_by_digit.png'
METRICS_FILENAME = 'metrics.json'
# Model names TFMA gives the compared models (no name without a baseline).
CANDIDATE = 'candidate'
BASELINE = 'baseline'
# Keys of metrics.json beside the evaluation's metrics and `blessed`.
NOISY_INPUT = 'noisy_input'  # {metric: value} of the noisy input vs clean.
FAILURES = 'failures'  # One line per failed gate (empty when blessed).
SPLIT_SIZES = 'split_sizes'  # {split: examples}.
BASELINE_IS_CANDIDATE = 'baseline_is_candidate'  # The same model compared.


def select_examples(labels: np.ndarray, per_digit: int) -> Dict[int, List[int]]:
  """{digit: indices of its first `per_digit` examples} for the digits present.

  Raises:
    ValueError: no examples at all, or per_digit < 1.
  """
  if per_digit < 1:
    raise ValueError(f'per_digit must be >= 1, got {per_digit}')
  rows = {digit: [int(index) for index in np.flatnonzero(labels == digit)[:per_digit]]
          for digit in DIGITS}
  rows = {digit: indices for digit, indices in rows.items() if indices}
  if not rows:
    raise ValueError('no test examples of any digit to draw')
  return rows


def image_psnr(clean: np.ndarray, denoised: np.ndarray) -> np.ndarray:
  """Per-image PSNR in dB (max value 1), as tf.image.psnr computes it."""
  axes = tuple(range(1, clean.ndim))
  mse = np.mean((clean.astype(np.float64) - denoised) ** 2, axis=axes)
  return 10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))


def _png(figure) -> bytes:
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  FigureCanvasAgg(figure)
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=100)
  return buffer.getvalue()


def render_grid(rows: Dict[int, List[int]], clean: np.ndarray,
                noisy: np.ndarray, denoised: np.ndarray) -> bytes:
  """PNG: one row per digit of (clean, noisy, denoised) triplets.

  Args:
    rows: {digit: example indices} (see select_examples); a digit with fewer
      examples than the widest row leaves its last cells empty.
    clean, noisy, denoised: [N, 28, 28, 1] images that the indices point
      into; noisy pixels are shown clipped to [0, 1].
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  per_digit = max(len(indices) for indices in rows.values())
  columns = 3 * per_digit
  figure = Figure(figsize=(max(columns * 0.9, 3.0), len(rows) * 1.0 + 0.5))
  axes = figure.subplots(len(rows), columns, squeeze=False)
  for row, (digit, indices) in enumerate(sorted(rows.items())):
    for column in range(columns):
      axes[row][column].set_axis_off()
    for example, index in enumerate(indices):
      psnr = image_psnr(clean[index:index + 1], denoised[index:index + 1])[0]
      panels = (('clean', clean[index]), ('noisy', noisy[index]),
                (f'{psnr:.1f} dB', denoised[index]))
      for offset, (title, image) in enumerate(panels):
        axis = axes[row][3 * example + offset]
        axis.set_axis_on()
        axis.imshow(np.clip(image[..., 0], 0.0, 1.0), cmap='gray',
                    vmin=0.0, vmax=1.0, interpolation='nearest')
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_title(title, fontsize=7, pad=2)
    axes[row][0].set_axis_on()
    axes[row][0].set_ylabel(str(digit), rotation=0, fontsize=11, labelpad=10,
                            va='center')
  figure.suptitle('clean | noisy | denoised (PSNR of the denoised image)',
                  fontsize=10)
  figure.subplots_adjust(left=0.04, right=0.995, bottom=0.01, top=0.92,
                         wspace=0.08, hspace=0.35)
  return _png(figure)


def psnr_chart_figure(candidate: Dict[int, float],
                      baseline: Optional[Dict[int, float]] = None):
  """The bar chart of PSNR (dB) per digit, beside the baseline's if given.

  Returns:
    A matplotlib Figure; its legend (with a baseline) sits above the axes,
    outside them, so that it covers no bar.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  # Constrained layout makes room for the legend outside the axes.
  figure = Figure(figsize=(7.0, 3.4), layout='constrained')
  axis = figure.subplots()
  digits = sorted(candidate)
  positions = np.arange(len(digits))
  width = 0.4 if baseline else 0.7
  values = [candidate[digit] for digit in digits]
  axis.bar(positions - (width / 2 if baseline else 0.0), values, width,
           label='this model', color='#3b6ea8')
  if baseline:
    axis.bar(positions + width / 2,
             [baseline.get(digit, np.nan) for digit in digits],
             width, label='last blessed model', color='#b0b0b0')
    figure.legend(loc='outside upper right', ncols=2, fontsize=8,
                  frameon=False)
  floor = min(values + list((baseline or {}).values()))
  axis.set_ylim(max(0.0, floor - 3.0), None)
  axis.set_xticks(positions, [str(digit) for digit in digits])
  axis.set_xlabel('digit')
  axis.set_ylabel('PSNR (dB)')
  axis.set_title('Test PSNR per digit (from the mean MSE of each digit)',
                 fontsize=10, loc='left')
  axis.grid(axis='y', alpha=0.3)
  return figure


def render_psnr_chart(candidate: Dict[int, float],
                      baseline: Optional[Dict[int, float]] = None) -> bytes:
  """PNG of psnr_chart_figure."""
  return _png(psnr_chart_figure(candidate, baseline))


def read_evaluation(evaluation_uri: str) -> dict:
  """Metrics of a TFMA evaluation: overall and per digit, per model.

  Returns:
    {'overall': {model: {metric: value}}, 'by_digit': {model: {metric:
    {digit: value}}}} where model is 'candidate' or 'baseline' ('candidate'
    also when the run had no baseline); change metrics are left out.
  """
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  overall, by_digit = {}, {}
  for slice_metrics in tfma.load_metrics(evaluation_uri):
    columns = {key.column: key for key in slice_metrics.slice_key.single_slice_keys}
    for entry in slice_metrics.metric_keys_and_values:
      if entry.key.is_diff:
        continue
      model = entry.key.model_name or CANDIDATE
      value = entry.value.double_value.value
      if not columns:
        overall.setdefault(model, {})[entry.key.name] = value
      elif len(columns) == 1:
        digit = int(next(iter(columns.values())).int64_value)
        by_digit.setdefault(model, {}).setdefault(entry.key.name, {})[digit] = value
  if not overall:
    raise ValueError(f'no overall metrics in the evaluation at {evaluation_uri}')
  return {'overall': overall, 'by_digit': by_digit}


def write_report(output_dir: str, rows: Dict[int, List[int]],
                 clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray,
                 evaluation: dict, blessed: Optional[bool],
                 context: Optional[dict] = None) -> Tuple[str, ...]:
  """Writes the grid, the PSNR chart and metrics.json; returns their paths.

  `context` ({NOISY_INPUT: ..., FAILURES: ..., ...}) goes into metrics.json
  beside the evaluation.
  """
  by_digit = evaluation['by_digit']
  if 'psnr' not in by_digit.get(CANDIDATE, {}):
    raise ValueError('the evaluation has no per-digit PSNR (slice by label)')
  candidate = by_digit[CANDIDATE]['psnr']
  # A baseline that is the candidate itself would draw every bar twice.
  baseline = None if (context or {}).get(BASELINE_IS_CANDIDATE) else (
      by_digit.get(BASELINE, {}).get('psnr'))
  # The artifact URI may be a bucket: TFX's filesystem layer, imported here
  # (the component has TFX loaded) so that `dae-pipeline report` stays light.
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  fileio.makedirs(output_dir)
  outputs = {
      GRID_FILENAME: render_grid(rows, clean, noisy, denoised),
      PSNR_CHART_FILENAME: render_psnr_chart(candidate, baseline),
      METRICS_FILENAME: json.dumps(
          dict(evaluation, blessed=blessed, **(context or {})), indent=2,
          sort_keys=True).encode(),
  }
  paths = []
  for name, content in outputs.items():
    path = os.path.join(output_dir, name)
    with fileio.open(path, 'wb') as output_file:
      output_file.write(content)
    paths.append(path)
  return tuple(paths)


def _read_bytes(path: str) -> bytes:
  """A file's bytes; a bucket URI through TFX's filesystem layer (imported
  only then, so that `dae-pipeline report` on a local root stays light)."""
  if '://' in path:
    from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
    with fileio.open(path, 'rb') as remote_file:
      return remote_file.read()
  with open(path, 'rb') as local_file:
    return local_file.read()


def load_report(report_dir: str, images: bool = True
                ) -> Tuple[dict, Dict[str, bytes]]:
  """(metrics, {filename: PNG bytes}) of a written report (a path or a URI);
  no images read when `images` is False."""
  metrics = json.loads(_read_bytes(os.path.join(report_dir, METRICS_FILENAME)))
  pictures = {name: _read_bytes(os.path.join(report_dir, name))
              for name in (GRID_FILENAME, PSNR_CHART_FILENAME)} if images else {}
  return metrics, pictures


def json_digit_keys(by_digit: Dict[str, Dict[str, Dict]]) -> Dict[str, Dict[str, Dict[int, float]]]:
  """by_digit read back from JSON (digit keys are strings there) as ints."""
  return {model: {metric: {int(digit): value for digit, value in values.items()}
                  for metric, values in metrics.items()}
          for model, metrics in by_digit.items()}


def metric_names(overall: Dict[str, Dict[str, float]]) -> Sequence[str]:
  """Metric names in a stable, readable order."""
  order = ('psnr', 'ssim', 'mse', 'mean_image_psnr')
  names = {name for metrics in overall.values() for name in metrics}
  return [name for name in order if name in names] + sorted(names - set(order))
