"""The VisualReport pictures and the metrics written beside them."""

import os

import numpy as np
import pytest

from components.common import dataset_info
from components.visual_report import report as report_lib

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
PETS = dataset_info.DatasetInfo('pets', (12, 10, 3), ('cat', 'dog'))
UNLABELLED = dataset_info.DatasetInfo('flat_folder', (8, 8, 1))


def _evaluation(with_baseline, classes=10):
  overall = {'candidate': {'psnr': 26.5, 'ssim': 0.97, 'mse': 0.0022}}
  by_class = {'candidate': {'psnr': {label: 25.0 + label / 10 for label in range(classes)}}}
  if with_baseline:
    overall['baseline'] = {'psnr': 26.0, 'ssim': 0.96, 'mse': 0.0025}
    by_class['baseline'] = {'psnr': {label: 24.0 for label in range(classes)}}
  return {'overall': overall, 'by_class': by_class}


def _images(count, seed=0, image_shape=(28, 28, 1)):
  rng = np.random.default_rng(seed)
  clean = (rng.random((count,) + image_shape) > 0.8).astype(np.float32)
  noisy = clean + rng.normal(0, 0.3, clean.shape).astype(np.float32)
  denoised = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
  return clean, noisy, denoised


def test_select_examples_takes_the_first_of_each_class_present():
  labels = np.array([3, 1, 3, 3, 1, 7, 3])
  assert report_lib.select_examples(labels, 2) == {1: [1, 4], 3: [0, 2], 7: [5]}


@pytest.mark.parametrize('labels,per_class', [(np.array([], np.int64), 2),
                                              (np.array([1, 2]), 0)])
def test_select_examples_rejects_nothing_to_draw(labels, per_class):
  with pytest.raises(ValueError):
    report_lib.select_examples(labels, per_class)


def test_image_psnr_matches_the_definition():
  clean = np.zeros((2, 28, 28, 1))
  denoised = np.full((2, 28, 28, 1), 0.1)
  denoised[1] = 0.01
  np.testing.assert_allclose(report_lib.image_psnr(clean, denoised), [20.0, 40.0])


def test_write_report_writes_pngs_and_metrics_that_load_back(tmp_path):
  clean, noisy, denoised = _images(12)
  labels = np.arange(12) % 10
  rows = report_lib.select_examples(labels, 2)
  paths = report_lib.write_report(str(tmp_path), rows, clean, noisy, denoised,
                                  _evaluation(with_baseline=True), blessed=True)
  assert len(paths) == 3
  metrics, images = report_lib.load_report(str(tmp_path))
  assert metrics['blessed'] is True
  assert metrics['overall']['baseline']['psnr'] == 26.0
  for png in images.values():
    assert png.startswith(PNG_MAGIC) and len(png) > 2000
  classes = report_lib.json_class_keys(metrics['by_class'])
  assert classes['candidate']['psnr'][9] == pytest.approx(25.9)


def test_write_report_needs_per_class_psnr(tmp_path):
  clean, noisy, denoised = _images(2)
  evaluation = {'overall': {'candidate': {'psnr': 20.0}}, 'by_class': {}}
  with pytest.raises(ValueError, match='per-class PSNR'):
    report_lib.write_report(str(tmp_path), {0: [0]}, clean, noisy, denoised,
                            evaluation, blessed=False)


@pytest.mark.parametrize('with_baseline', [True, False])
def test_psnr_chart_legend_covers_no_bar(with_baseline):
  evaluation = _evaluation(with_baseline)['by_class']
  figure = report_lib.psnr_chart_figure(
      evaluation['candidate']['psnr'],
      evaluation.get('baseline', {}).get('psnr'))
  renderer = _drawn(figure)
  axis, = figure.axes
  legends = [legend for legend in figure.legends + [axis.get_legend()]
             if legend is not None]
  assert len(legends) == (1 if with_baseline else 0)
  bars = [bar.get_window_extent(renderer) for bar in axis.patches]
  assert len(bars) == (20 if with_baseline else 10)
  for legend in legends:
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(bar) for bar in bars)


def test_psnr_chart_of_a_baseline_that_is_the_candidate_draws_it_once(tmp_path):
  clean, noisy, denoised = _images(10)
  evaluation = _evaluation(with_baseline=True)
  report_lib.write_report(str(tmp_path), {0: [0]}, clean, noisy, denoised,
                          evaluation, blessed=True,
                          context={report_lib.BASELINE_IS_CANDIDATE: True})
  _, images = report_lib.load_report(str(tmp_path))
  alone = report_lib.render_psnr_chart(evaluation['by_class']['candidate']['psnr'])
  assert images[report_lib.PSNR_CHART_FILENAME] == alone


def _drawn(figure):
  """The renderer of `figure` drawn once on the Agg canvas (final layout)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  canvas = FigureCanvasAgg(figure)
  canvas.draw()
  return canvas.get_renderer()


def test_write_report_writes_through_tfs_filesystems(tmp_path):
  # ram:// stands in for a bucket: only TF's filesystem layer reaches it.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  clean, noisy, denoised = _images(12)
  rows = report_lib.select_examples(np.arange(12) % 10, 1)
  paths = report_lib.write_report('ram://visual-report/report', rows, clean, noisy,
                                  denoised, _evaluation(with_baseline=False),
                                  blessed=False)
  assert all(tf.io.gfile.exists(path) for path in paths)
  assert not os.path.exists('ram:')
  metrics, images = report_lib.load_report('ram://visual-report/report')  # And back.
  assert metrics['blessed'] is False
  assert images[report_lib.GRID_FILENAME].startswith(b'\x89PNG')


# --- datasets other than MNIST ------------------------------------------------

def _labels_drawn(figure):
  """The row labels of a grid figure, top to bottom."""
  return [axis.get_ylabel() for axis in figure.axes if axis.get_ylabel()]


def test_colour_images_are_drawn_in_colour_and_rows_named_by_class(tmp_path):
  clean, noisy, denoised = _images(6, image_shape=PETS.image_shape)
  clean[:, :, :, 1:] = 0.0  # Pure red images: grey would have no red.
  denoised = clean.copy()
  rows = report_lib.select_examples(np.arange(6) % 2, 2)
  report_lib.write_report(str(tmp_path), rows, clean, noisy, denoised,
                          _evaluation(with_baseline=True, classes=2), True,
                          info=PETS)
  metrics, images = report_lib.load_report(str(tmp_path))
  assert report_lib.report_info(metrics) == PETS
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  grid = np.asarray(Image.open(io.BytesIO(images[report_lib.GRID_FILENAME])).convert('RGB'))
  red = (grid[..., 0] > 200) & (grid[..., 1] < 60) & (grid[..., 2] < 60)
  assert red.sum() > 500, red.sum()
  assert report_lib.row_labels(rows, PETS) == {0: 'cat', 1: 'dog'}
  chart = report_lib.psnr_chart_figure(
      report_lib.json_class_keys(metrics['by_class'])['candidate']['psnr'], None, PETS)
  _drawn(chart)
  axis, = chart.axes
  assert [tick.get_text() for tick in axis.get_xticklabels()] == ['cat', 'dog']


def test_grid_rows_carry_the_class_names(monkeypatch):
  clean, noisy, denoised = _images(4, image_shape=PETS.image_shape)
  rows = report_lib.select_examples(np.array([0, 1, 0, 1]), 1)
  figures = []
  monkeypatch.setattr(report_lib, '_png', figures.append)
  report_lib.render_grid(rows, clean, noisy, denoised, report_lib.row_labels(rows, PETS))
  assert _labels_drawn(figures[0]) == ['cat', 'dog']
  report_lib.render_grid(rows, clean, noisy, denoised,
                         report_lib.row_labels(rows, UNLABELLED))
  assert _labels_drawn(figures[1]) == []


def test_a_dataset_without_labels_gets_rows_of_images_and_no_class_chart(tmp_path):
  clean, noisy, denoised = _images(20, image_shape=UNLABELLED.image_shape)
  labels = report_lib.unlabelled_rows(20, 3)
  rows = report_lib.select_examples(labels, 3)
  assert rows == {0: [0, 1, 2], 1: [3, 4, 5], 2: [6, 7, 8]}
  evaluation = {'overall': _evaluation(False)['overall'], 'by_class': {}}
  paths = report_lib.write_report(str(tmp_path), rows, clean, noisy, denoised,
                                  evaluation, True, info=UNLABELLED)
  assert sorted(os.path.basename(path) for path in paths) == [
      report_lib.GRID_FILENAME, report_lib.METRICS_FILENAME]
  metrics, images = report_lib.load_report(str(tmp_path))
  assert set(images) == {report_lib.GRID_FILENAME}
  assert report_lib.report_info(metrics) == UNLABELLED


# --- labels whole, bars from 0 -------------------------------------------------

LONG_NAMES = ('a', 'Ankle boot', 'pneumonoultramicroscopicsilicovolcanoconiosis',
              'tropical rainforest canopy at dusk, photographed from the forest '
              'floor looking up',
              'dog')
LONG = dataset_info.DatasetInfo('long_names', (12, 12, 1), LONG_NAMES)


def _whole(drawn: str, name: str) -> bool:
  """Whether a drawn label is all of `name` (wrapped onto lines at most)."""
  return ''.join(drawn.split()) == ''.join(name.split())


def _inside(box, figure_box) -> bool:
  return (box.x0 >= figure_box.x0 - 0.5 and box.x1 <= figure_box.x1 + 0.5 and
          box.y0 >= figure_box.y0 - 0.5 and box.y1 <= figure_box.y1 + 0.5)


def test_every_grid_row_label_shows_whole_inside_the_picture():
  clean, noisy, denoised = _images(10, image_shape=LONG.image_shape)
  rows = report_lib.select_examples(np.arange(10) % len(LONG_NAMES), 2)
  figure = report_lib.grid_figure(rows, clean, noisy, denoised,
                                  report_lib.row_labels(rows, LONG))
  renderer = _drawn(figure)
  labels = [axis.yaxis.label for axis in figure.axes if axis.get_ylabel()]
  assert [label.get_text().count('\n') > 0 for label in labels] == [
      False, False, True, True, False]  # The long ones wrapped.
  for label, name in zip(labels, LONG_NAMES):
    assert _whole(label.get_text(), name), (label.get_text(), name)
    assert _inside(label.get_window_extent(renderer), figure.bbox), name
  # Nor into the label above or below it.
  boxes = [label.get_window_extent(renderer) for label in labels]
  assert all(upper.y0 >= lower.y1 for upper, lower in zip(boxes, boxes[1:]))
  # Nor does a label run into the images of its row.
  first_images = min(axis.get_window_extent(renderer).x0 for axis in figure.axes)
  assert max(label.get_window_extent(renderer).x1 for label in labels) < first_images


@pytest.mark.parametrize('names', [LONG_NAMES, tuple(f'class number {index}'
                                                     for index in range(20))])
def test_every_bar_name_shows_whole_and_apart_from_the_others(names):
  info = dataset_info.DatasetInfo('named', (12, 12, 1), names)
  figure = report_lib.psnr_chart_figure(
      {label: 20.0 + label for label in range(len(names))},
      {label: 19.0 for label in range(len(names))}, info)
  renderer = _drawn(figure)
  axis, = figure.axes
  ticks = axis.get_xticklabels()
  boxes = [tick.get_window_extent(renderer) for tick in ticks]
  for tick, box, name in zip(ticks, boxes, names):
    assert _whole(tick.get_text(), name)
    assert _inside(box, figure.bbox), name
  # Neighbours do not overlap (text boxes of aslant names are their bounds:
  # compared along the baseline, by their right ends).
  ends = [box.x1 for box in boxes]
  assert ends == sorted(ends) and len(set(ends)) == len(ends)
  if ticks[0].get_rotation() == 0:
    assert all(left.x1 <= right.x0 for left, right in zip(boxes, boxes[1:]))


def test_psnr_bars_start_at_0_db():
  evaluation = _evaluation(with_baseline=True)['by_class']
  figure = report_lib.psnr_chart_figure(evaluation['candidate']['psnr'],
                                        evaluation['baseline']['psnr'])
  _drawn(figure)
  axis, = figure.axes
  assert axis.get_ylim()[0] == 0.0
  assert all(bar.get_y() == 0.0 for bar in axis.patches)
  assert 0.0 in axis.get_yticks()
  # The tallest bar is drawn whole.
  assert axis.get_ylim()[1] > max(bar.get_height() for bar in axis.patches)
