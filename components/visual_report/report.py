"""The pictures of a run: clean / noisy / denoised test images and PSNR per class.

Pure functions over numpy arrays and TFMA outputs, so the component, the
`dae-pipeline report` command and the tests share them. Figures are drawn
with matplotlib's object-oriented API on the Agg canvas (no display needed).
Colour images are drawn in colour, grey ones in grey; rows and bars are
named by the dataset's class names (its DatasetInfo). A dataset without
labels has no per-class rows, PSNR chart or table.
"""

import io
import json
import math
import os
import textwrap
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from components.common import dataset_info as dataset_info_lib
from components.common import evaluation as evaluation_lib
from components.common import names

# The VisualReport component's output keys (components/visual_report/component.py):
# the report's directory, and the same report as one HTML page.
REPORT_KEY = names.REPORT_KEY
HTML_REPORT_KEY = names.HTML_REPORT_KEY
GRID_FILENAME = 'grid.png'
PSNR_CHART_FILENAME = 'psnr_by_class.png'
METRICS_FILENAME = 'metrics.json'
# Keys of metrics.json beside the evaluation's metrics and `blessed`.
NOISY_INPUT = 'noisy_input'  # {metric: value} of the noisy input vs clean.
FAILURES = 'failures'  # One line per failed gate (empty when blessed).
SPLIT_SIZES = 'split_sizes'  # {split: examples}.
# Bad images of an image folder that the ExampleGen skipped.
SKIPPED_IMAGES = 'skipped_images'
BASELINE_IS_CANDIDATE = 'baseline_is_candidate'  # The same model compared.
DATASET = 'dataset'  # The dataset's DatasetInfo, as a JSON object.
# {ThresholdSpec field: bound} of the gates the Evaluator applied (its
# EvalConfig read back: eval_config.gate_bounds).
THRESHOLDS = 'thresholds'
# The noise the examples were made with: NoiseTransform's NoiseSpec, as a
# JSON object (absent: examples that recorded none).
NOISE = 'noise'
# Rows of the grid of a dataset without labels (it has no classes to draw by).
UNLABELLED_ROWS = 3
# Characters per line of a class name beside its grid row or under its bar:
# a longer name is wrapped, never cut.
LABEL_WRAP = 14
LABEL_LINES = 5
GRID_LABEL_FONTSIZE = 11

DatasetInfo = dataset_info_lib.DatasetInfo


def select_examples(labels: np.ndarray, per_class: int) -> Dict[int, List[int]]:
  """{class: indices of its first `per_class` examples} for the classes
  present (negative labels: drawn in no row).

  Raises:
    ValueError: no examples at all, or per_class < 1.
  """
  if per_class < 1:
    raise ValueError(f'per_class must be >= 1, got {per_class}')
  rows = {int(label): [int(index) for index in
                       np.flatnonzero(labels == label)[:per_class]]
          for label in np.unique(labels) if label >= 0}
  if not rows:
    raise ValueError('no test examples of any class to draw')
  return rows


def unlabelled_rows(count: int, per_row: int) -> np.ndarray:
  """Row numbers standing in for labels of `count` examples without any:
  the first UNLABELLED_ROWS rows of `per_row` examples in order, -1 after."""
  rows = np.arange(count) // max(per_row, 1)
  return np.where(rows < UNLABELLED_ROWS, rows, -1)


def row_labels(rows: Dict[int, List[int]],
               info: Optional[DatasetInfo]) -> Dict[int, str]:
  """The name of each row: its class's (its number without an `info`); no
  names for a dataset without labels, whose rows are no class."""
  if info is not None and not info.labeled:
    return {}
  return {row: info.class_name(row) if info else str(row) for row in rows}


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


def _show(axis, image: np.ndarray) -> None:
  """Draws an [H, W, C] image in [0, 1]: RGB in colour, one channel in grey."""
  image = np.clip(image, 0.0, 1.0)
  if image.shape[-1] == 3:
    axis.imshow(image, interpolation='nearest')
  else:
    axis.imshow(image[..., 0], cmap='gray', vmin=0.0, vmax=1.0,
                interpolation='nearest')


def wrap_label(name: str) -> str:
  """A class name broken into lines (at spaces where it has them, inside a
  word where it must) of LABEL_WRAP characters, or as many more as keep it
  to about LABEL_LINES lines, so that no name is wider than the room kept
  for it, nor taller."""
  width = max(LABEL_WRAP, math.ceil(len(name) / LABEL_LINES))
  return '\n'.join(textwrap.wrap(name, width)) or name


def grid_figure(rows: Dict[int, List[int]], clean: np.ndarray,
                noisy: np.ndarray, denoised: np.ndarray,
                names: Optional[Dict[int, str]] = None):
  """The figure of render_grid (see there): a matplotlib Figure whose row
  labels, wrapped, fit in a left margin made as wide as the widest."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  names = {row: str(row) for row in rows} if names is None else names
  per_row = max(len(indices) for indices in rows.values())
  columns = 3 * per_row
  images_width = max(columns * 0.9, 3.0)
  wrapped = {label: wrap_label(name) for label, name in names.items()}
  # Each row as tall as its images, or as its name's lines of text.
  heights = [max(1.0, (wrapped.get(label, '').count('\n') + 1)
                 * GRID_LABEL_FONTSIZE * 1.25 / 72 + 0.25)
             for label in sorted(rows)]
  figure = Figure(figsize=(images_width, sum(heights) + 0.5))
  axes = figure.subplots(len(rows), columns, squeeze=False,
                         gridspec_kw={'height_ratios': heights})
  for row, (label, indices) in enumerate(sorted(rows.items())):
    _draw_row(axes[row], indices, clean, noisy, denoised)
    if label in names:
      axes[row][0].set_axis_on()
      axes[row][0].set_ylabel(wrapped[label], rotation=0,
                              fontsize=GRID_LABEL_FONTSIZE, labelpad=10,
                              ha='right', va='center')
  figure.suptitle('clean | noisy | denoised (PSNR of the denoised image)',
                  fontsize=10)
  _fit_row_labels(figure, images_width)
  return figure


def _draw_row(axes, indices: List[int], clean: np.ndarray, noisy: np.ndarray,
              denoised: np.ndarray) -> None:
  """One row of the grid: a (clean, noisy, denoised) triplet per example,
  empty cells after the last."""
  for axis in axes:
    axis.set_axis_off()
  for example, index in enumerate(indices):
    psnr = image_psnr(clean[index:index + 1], denoised[index:index + 1])[0]
    panels = (('clean', clean[index]), ('noisy', noisy[index]),
              (f'{psnr:.1f} dB', denoised[index]))
    for offset, (title, image) in enumerate(panels):
      axis = axes[3 * example + offset]
      axis.set_axis_on()
      _show(axis, image)
      axis.set_xticks([])
      axis.set_yticks([])
      axis.set_title(title, fontsize=7, pad=2)


def _fit_row_labels(figure, images_width: float) -> None:
  """Widens the figure by a left margin as wide as its widest row label
  (measured as drawn), so that every label shows whole beside its row."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  canvas = FigureCanvasAgg(figure)
  renderer = canvas.get_renderer()
  labels = [axis.yaxis.label for axis in figure.axes if axis.get_ylabel()]
  widest = max((label.get_window_extent(renderer).width for label in labels),
               default=0.0) / figure.dpi
  # The label's pad (10 points) and a little air on the left edge.
  margin = (widest + 10 / 72 + 0.1) if labels else 0.05
  figure.set_size_inches(images_width + margin, figure.get_size_inches()[1])
  width = figure.get_size_inches()[0]
  figure.subplots_adjust(left=margin / width, right=1 - 0.02 / width,
                         bottom=0.01, top=0.92, wspace=0.08, hspace=0.35)


def render_grid(rows: Dict[int, List[int]], clean: np.ndarray,
                noisy: np.ndarray, denoised: np.ndarray,
                names: Optional[Dict[int, str]] = None) -> bytes:
  """PNG: one row per class of (clean, noisy, denoised) triplets.

  Args:
    rows: {class: example indices} (see select_examples); a class with fewer
      examples than the widest row leaves its last cells empty.
    clean, noisy, denoised: [N, H, W, C] images that the indices point
      into (C = 3: drawn in colour); noisy pixels are shown clipped to [0, 1].
    names: The label of each row (row_labels); None: its number; a row
      missing from it has none (a dataset without labels). A long name is
      wrapped (wrap_label), and the margin made as wide as the widest.
  """
  return _png(grid_figure(rows, clean, noisy, denoised, names))


def psnr_chart_figure(candidate: Dict[int, float],
                      baseline: Optional[Dict[int, float]] = None,
                      info: Optional[DatasetInfo] = None):
  """The bar chart of PSNR (dB) per class, beside the baseline's if given;
  bars named by `info`'s class names (by number without it).

  Returns:
    A matplotlib Figure; its legend (with a baseline) sits above the axes,
    outside them, so that it covers no bar.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  # Constrained layout makes room for the legend outside the axes.
  figure = Figure(figsize=(7.0, 3.4), layout='constrained')
  axis = figure.subplots()
  classes = sorted(candidate)
  positions = np.arange(len(classes))
  width = 0.4 if baseline else 0.7
  values = [candidate[label] for label in classes]
  axis.bar(positions - (width / 2 if baseline else 0.0), values, width,
           label='this model', color='#3b6ea8')
  if baseline:
    axis.bar(positions + width / 2,
             [baseline.get(label, np.nan) for label in classes],
             width, label='last blessed model', color='#b0b0b0')
    figure.legend(loc='outside upper right', ncols=2, fontsize=8,
                  frameon=False)
  # From 0 dB: a bar's height is its value, so bars compare by their lengths
  # (the table below the chart gives the figures to 0.01 dB).
  axis.set_ylim(0.0, max(values + list((baseline or {}).values())) * 1.08)
  _name_bars(axis, positions, [info.class_name(label) if info else str(label)
                               for label in classes])
  axis.set_xlabel('class')
  axis.set_ylabel('PSNR (dB)')
  axis.set_title('Test PSNR per class (from the mean MSE of each class)',
                 fontsize=10, loc='left')
  axis.grid(axis='y', alpha=0.3)
  return figure


def _name_bars(axis, positions: np.ndarray, names: List[str]) -> None:
  """Names the bars, each name whole: wrapped (wrap_label), and turned
  aslant when there are more than fit side by side (constrained layout then
  makes room for them below the axes)."""
  wrapped = [wrap_label(name) for name in names]
  widest = max((len(line) for name in wrapped for line in name.split('\n')),
               default=1)
  # About 7 characters of 10-point text per inch, over the axes' ~6 inches.
  aslant = widest * len(names) > 6.0 * 7
  if aslant:  # Taller, so that the bars keep their height above the names.
    axis.figure.set_size_inches(7.0, 3.4 + 0.15 * (max(
        name.count('\n') for name in wrapped) + 1) + 0.05 * widest)
  axis.set_xticks(positions, wrapped, rotation=30 if aslant else 0,
                  ha='right' if aslant else 'center',
                  rotation_mode='anchor' if aslant else 'default')


def render_psnr_chart(candidate: Dict[int, float],
                      baseline: Optional[Dict[int, float]] = None,
                      info: Optional[DatasetInfo] = None) -> bytes:
  """PNG of psnr_chart_figure."""
  return _png(psnr_chart_figure(candidate, baseline, info))


def write_report(output_dir: str, rows: Dict[int, List[int]],
                 clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray,
                 evaluation: dict, blessed: Optional[bool],
                 context: Optional[dict] = None,
                 info: Optional[DatasetInfo] = None) -> Tuple[str, ...]:
  """Writes the grid, the PSNR chart and metrics.json; returns their paths.

  `context` ({NOISY_INPUT: ..., FAILURES: ..., ...}) goes into metrics.json
  beside the evaluation, and `info` (the dataset: its classes name the rows
  and bars) under DATASET. A dataset without labels gets no chart.
  """
  labelled = info is None or info.labeled
  by_class = evaluation['by_class']
  if labelled and 'psnr' not in by_class.get(evaluation_lib.CANDIDATE, {}):
    raise ValueError('the evaluation has no per-class PSNR (slice by label)')
  candidate = by_class.get(evaluation_lib.CANDIDATE, {}).get('psnr')
  # A baseline that is the candidate itself would draw every bar twice.
  baseline = None if (context or {}).get(BASELINE_IS_CANDIDATE) else (
      by_class.get(evaluation_lib.BASELINE, {}).get('psnr'))
  written = dict(evaluation, blessed=blessed, **(context or {}))
  if info is not None:
    written[DATASET] = json.loads(info.to_json())
  # The artifact URI may be a bucket: TFX's filesystem layer, imported here
  # (the component has TFX loaded) so that `dae-pipeline report` stays light.
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  fileio.makedirs(output_dir)
  outputs = {
      GRID_FILENAME: render_grid(rows, clean, noisy, denoised,
                                 row_labels(rows, info)),
      METRICS_FILENAME: json.dumps(written, indent=2, sort_keys=True).encode(),
  }
  if labelled:
    outputs[PSNR_CHART_FILENAME] = render_psnr_chart(candidate, baseline, info)
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
  no images read when `images` is False; no chart for a dataset without
  labels."""
  metrics = json.loads(_read_bytes(os.path.join(report_dir, METRICS_FILENAME)))
  info = report_info(metrics)
  names = (GRID_FILENAME,) + (
      (PSNR_CHART_FILENAME,) if info is None or info.labeled else ())
  pictures = {name: _read_bytes(os.path.join(report_dir, name))
              for name in names} if images else {}
  return metrics, pictures


def report_info(metrics: dict) -> Optional[DatasetInfo]:
  """The dataset a report's metrics.json records; None when it records
  none (written without one: rows and bars named by their numbers)."""
  if DATASET not in metrics:
    return None
  return DatasetInfo.from_json(json.dumps(metrics[DATASET]))


def json_class_keys(by_class: Dict[str, Dict[str, Dict]]) -> Dict[str, Dict[str, Dict[int, float]]]:
  """by_class read back from JSON (label keys are strings there) as ints."""
  return {model: {metric: {int(label): value for label, value in values.items()}
                  for metric, values in metrics.items()}
          for model, metrics in by_class.items()}


def metric_names(overall: Dict[str, Dict[str, float]]) -> Sequence[str]:
  """Metric names in a stable, readable order."""
  order = ('psnr', 'ssim', 'mse', 'mean_image_psnr')
  names = {name for metrics in overall.values() for name in metrics}
  return [name for name in order if name in names] + sorted(names - set(order))
