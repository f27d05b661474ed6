"""The report page: one run's outcome and pictures, checked as Chromium renders it."""

import base64
import dataclasses
import html
from html import parser as html_parser
import io
import json
import pathlib
import re
import shutil
import subprocess

import numpy as np
from PIL import Image
import pytest

from components.common import dataset_info
from components.common import evaluation as evaluation_lib
from components.common import noise as noise_lib
from components.visual_report import page as page_lib
from components.visual_report import report as report_lib
from pipeline import report_page
from pipeline import run_outcome
from pipeline.run_summary import ExecutionRecord
import pipeline_config

CANDIDATE = {'psnr': 26.5, 'ssim': 0.97, 'mse': 0.0022}
BASELINE = {'psnr': 26.0, 'ssim': 0.96, 'mse': 0.0025}
NOISY_INPUT = {'psnr': 13.98, 'ssim': 0.2987, 'mse': 0.04}
SPLIT_SIZES = {'train': 80, 'eval': 30, 'test': 20}
FAILURE = 'psnr 15.20 dB, needs >= 16 dB (thresholds.min_psnr_db)'
# The bounds the Evaluator checked, as the VisualReport records them.
THRESHOLDS = {'min_psnr_db': 16.0, 'max_mse': 0.025, 'max_psnr_drop_db': 0.0,
              'max_class_psnr_drop_db': 0.5}
NOISE = noise_lib.NoiseSpec(kind='gaussian', stddev=0.3)
NOISE_ROW = ['noise', 'gaussian, stddev 0.3; unclipped; seed 42']
MNIST = dataset_info.DatasetInfo('mnist', (28, 28, 1), [str(digit) for digit in range(10)])
PETS = dataset_info.DatasetInfo('pets', (12, 10, 3), ('cat', 'dog'))
UNLABELLED = dataset_info.DatasetInfo('flat_folder', (8, 8, 1))
# What the page must show, as a reader sees it rendered: figures with units.
UNIT_TEXTS = ('dB, higher is better', 'unitless, 0..1, higher is better',
              'on [0, 1] pixels, lower is better')
# Run in the rendered page once it has loaded: its text as laid out and
# whether each image decoded, written into the DOM for --dump-dom to show.
PROBE = '''<script>
window.addEventListener('load', () => {
  const probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({
    text: document.body.innerText,
    images: Array.from(document.images, image => ({
      alt: image.alt, decoded: image.complete && image.naturalWidth > 0})),
  });
  document.body.appendChild(probe);
});
</script>'''


def _outcome(tmp_path, blessed=True, baseline=BASELINE, same=False,
             failures=(), pushed=None, info=MNIST, skipped=0,
             thresholds=THRESHOLDS, noise=NOISE):
  """A real VisualReport written on small arrays, read back as the run's
  outcome from its records (with a Pusher's PushedModel properties)."""
  rng = np.random.default_rng(0)
  clean = (rng.random((10,) + info.image_shape) > 0.8).astype(np.float32)
  noisy = clean + rng.normal(0, 0.3, clean.shape).astype(np.float32)
  denoised = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
  overall = {evaluation_lib.CANDIDATE: CANDIDATE}
  classes = range(len(info.class_names))
  by_class = {evaluation_lib.CANDIDATE: {'psnr': {label: 25.0 + label / 10
                                              for label in classes}}}
  if baseline:
    overall[evaluation_lib.BASELINE] = baseline
    by_class[evaluation_lib.BASELINE] = {'psnr': {label: 24.0 for label in classes}}
  if not info.labeled:
    by_class = {}
  context = {report_lib.NOISY_INPUT: NOISY_INPUT,
             report_lib.FAILURES: list(failures),
             report_lib.SPLIT_SIZES: SPLIT_SIZES,
             report_lib.BASELINE_IS_CANDIDATE: same,
             report_lib.SKIPPED_IMAGES: skipped}
  if thresholds is not None:
    context[report_lib.THRESHOLDS] = thresholds
  if noise is not None:
    context[report_lib.NOISE] = json.loads(noise.to_json())
  report_dir = str(tmp_path / 'report')
  labels = (np.arange(10) % len(info.class_names) if info.labeled
            else report_lib.unlabelled_rows(10, 1))
  report_lib.write_report(report_dir, report_lib.select_examples(labels, 1),
                          clean, noisy, denoised,
                          {'overall': overall, 'by_class': by_class}, blessed,
                          context, info)
  records = [ExecutionRecord('VisualReport', 'COMPLETE', {'report': report_dir})]
  if pushed is not None:
    records.append(ExecutionRecord('Pusher', 'COMPLETE', {'pushed_model': '/p'},
                                   output_properties={'pushed_model': pushed}))
  return run_outcome.from_records(records, run_id='run-2024-7')


def _page(tmp_path, outcome, profile='smoke'):
  output = tmp_path / 'out' / 'report.html'
  report_page.write_page(outcome, profile, str(output))
  return output.read_text()


def _cells(page, table_id):
  """The text of each row of one table of the page, cell by cell."""
  table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S).group(1)
  return [[html.unescape(re.sub(r'<[^>]+>', '', cell)).strip()
           for cell in re.findall(r'<t[hd][^>]*>(.*?)</t[hd]>', row, re.S)]
          for row in re.findall(r'<tr[^>]*>(.*?)</tr>', table, re.S)]


def test_a_pushed_run_shows_units_the_noisy_input_and_the_last_blessed_model(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, pushed={
      'pushed': 1, 'pushed_destination': '/serving/17', 'pushed_version': '17'}))
  assert 'Verdict: blessed' in page
  assert 'Push: pushed as version 17 to /serving/17' in page
  assert _cells(page, 'metrics') == [
      ['metric', 'unit', 'this model', 'noisy input (reference)',
       'last blessed model', 'change'],
      ['psnr', 'dB, higher is better', '26.50', '13.98', '26.00', '+0.50'],
      ['ssim', 'unitless, 0..1, higher is better', '0.9700', '0.2987', '0.9600',
       '+0.0100'],
      ['mse', 'on [0, 1] pixels, lower is better', '0.00220', '0.04000',
       '0.00250', '-0.00030']]
  assert _cells(page, 'run') == [['run', 'run-2024-7'], ['profile', 'smoke'],
                                 ['dataset', 'mnist, 28x28 (HxW) grey, 10 classes'],
                                 NOISE_ROW,
                                 ['data', 'train 80, eval 30, test 20 examples']]
  assert [row[0] for row in _cells(page, 'classes')] == ['class'] + [
      str(digit) for digit in range(10)]
  assert 'last blessed model (dB)' in page  # The per-class baseline row.
  assert 'http' not in page  # Opens offline: nothing to fetch.
  embedded = re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
  assert len(embedded) == 2
  for data in embedded:  # Whole PNGs: Chromium draws a truncated one too.
    Image.open(io.BytesIO(base64.b64decode(data, validate=True))).load()


def test_the_bad_images_an_image_folder_skipped_are_counted_on_the_page(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, skipped=2))
  assert ['data', 'train 80, eval 30, test 20 examples; 2 bad image(s) skipped '
          '(data.max_bad_images)'] in _cells(page, 'run')


def test_a_rerun_says_its_baseline_is_the_same_model_not_a_column_of_zeros(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, baseline=CANDIDATE, same=True,
                                  pushed={'pushed': 0,
                                          'already_served_version': '17'}))
  assert 'baseline: the same model (nothing new was trained)' in page
  assert 'already served as version 17' in page
  assert _cells(page, 'metrics')[0] == ['metric', 'unit', 'this model',
                                        'noisy input (reference)']
  assert '+0.00' not in page and 'last blessed model (dB)' not in page


def test_a_run_not_blessed_lists_each_failed_gate_and_pushes_nothing(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, blessed=False, failures=[FAILURE]))
  assert 'Verdict: not blessed' in page
  assert f'<li>{html.escape(FAILURE)}</li>' in page
  assert 'Push: nothing pushed' in page


def test_a_first_run_says_there_was_no_baseline(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, baseline=None, pushed={
      'pushed': 1, 'pushed_destination': '/serving/1', 'pushed_version': '1'}))
  assert 'baseline: none (no blessed model to compare with yet)' in page
  # No column of it (the gates against it say they were not checked).
  for table in ('metrics', 'classes'):
    assert not any('last blessed model' in cell for cell in _cells(page, table)[0])


def test_classes_are_named_by_the_dataset_s_class_names(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, info=PETS))
  assert _cells(page, 'run')[2] == ['dataset', 'pets, 12x10 (HxW) colour, 2 classes']
  assert _cells(page, 'classes') == [
      ['class', 'this model (dB)', 'last blessed model (dB)', 'change (dB)'],
      ['cat', '25.00', '24.00', '+1.00'], ['dog', '25.10', '24.00', '+1.10']]


def test_a_dataset_without_labels_has_no_class_section(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, info=UNLABELLED))
  assert _cells(page, 'run')[2] == ['dataset', 'flat_folder, 8x8 (HxW) grey, no labels']
  assert 'id="classes"' not in page and 'PSNR per class' not in page
  assert len(re.findall(r'data:image/png;base64,', page)) == 1  # The grid.


def test_a_blessed_page_shows_each_threshold_it_passed_beside_the_metrics(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, pushed={
      'pushed': 1, 'pushed_destination': '/serving/17', 'pushed_version': '17'}))
  assert _cells(page, 'gates') == [
      ['push gate: the model must have', 'set by', 'this model', 'result'],
      ['psnr >= 16 dB', 'thresholds.min_psnr_db', '26.50 dB', 'passed'],
      ["psnr no lower than the last blessed model's",
       'thresholds.max_psnr_drop_db', '+0.50 dB', 'passed'],
      ["psnr at most 0.5 dB below the last blessed model's, on each class",
       'thresholds.max_class_psnr_drop_db', '+1.00 dB (worst: class 0)', 'passed'],
      ['mse <= 0.025', 'thresholds.max_mse', '0.00220', 'passed']]
  # Right after the metrics it gates.
  assert page.index('<table id="gates">') - page.index('</table>', page.index(
      '<table id="metrics">')) < 10


def test_a_page_not_blessed_marks_the_gate_that_failed(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, blessed=False, failures=[FAILURE],
                                  baseline=None))
  rows = {row[1]: row for row in _cells(page, 'gates')[1:]}
  assert rows['thresholds.min_psnr_db'][3] == 'failed'
  assert rows['thresholds.max_mse'][3] == 'passed'
  # Nothing served: the gates against it were not checked.
  assert rows['thresholds.max_psnr_drop_db'][2:] == [
      '-', 'not checked: no last blessed model to compare with']
  assert '<tr class="failed">' in page


def test_the_gates_shown_are_those_recorded_and_none_is_said_when_none_were(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, info=UNLABELLED, thresholds={
      'min_psnr_db': 24.0, 'max_mse': 0.004, 'max_psnr_drop_db': 0.25}))
  assert [row[0] for row in _cells(page, 'gates')[1:]] == [
      'psnr >= 24 dB', "psnr at most 0.25 dB below the last blessed model's",
      'mse <= 0.004']
  old = _page(tmp_path / 'old', _outcome(tmp_path / 'old', thresholds=None))
  assert 'id="gates"' not in old
  assert 'Push gate: this report did not record its thresholds.' in old


@pytest.mark.parametrize('noise,shown', [
    (noise_lib.NoiseSpec(), 'gaussian, stddev 0.2; unclipped; seed 42'),
    (noise_lib.NoiseSpec(kind='salt_and_pepper', amount=0.05, clip=True, seed=7),
     'salt_and_pepper, amount 0.05; clipped to [0, 1]; seed 7'),
    (noise_lib.NoiseSpec(kind='random_gaussian', min_stddev=0.1, max_stddev=0.4),
     'random_gaussian, min_stddev 0.1, max_stddev 0.4; unclipped; seed 42'),
    (None, 'not recorded')])
def test_the_page_names_the_noise_kind_and_level(tmp_path, noise, shown):
  page = _page(tmp_path, _outcome(tmp_path, noise=noise))
  assert ['noise', shown] in _cells(page, 'run')


class _Links(html_parser.HTMLParser):
  """Every src and href of a page, and its elements, as an HTML parser reads it."""

  def __init__(self):
    super().__init__()
    self.links, self.tags = [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.links += [value for name, value in attrs if name in ('src', 'href')]


def _parsed(page):
  links = _Links()
  links.feed(page)
  links.close()
  return links


def _artifact_page(tmp_path, outcome):
  """The artifact page of `outcome`'s report, written at a URI where TFX's
  local launcher has made the output's (empty) directory."""
  page_uri = tmp_path / 'html_report' / '7'
  page_uri.mkdir(parents=True)
  page_lib.write_artifact_page(outcome.report_uri, str(page_uri))
  assert page_uri.is_file()
  return page_uri.read_text()


def test_the_artifact_page_is_the_report_page_from_the_artifact_alone(tmp_path):
  # The local page of the same report once pushed, to compare with.
  outcome = _outcome(tmp_path, pushed={
      'pushed': 1, 'pushed_destination': '/serving/17', 'pushed_version': '17'})
  page = _artifact_page(tmp_path, outcome)
  assert 'Verdict: blessed' in page
  assert f'Push: {page_lib.PUSH_DECIDED_LATER}' in page
  local = _page(tmp_path, outcome)
  for table in ('metrics', 'classes'):
    assert _cells(page, table) == _cells(local, table)
  # No MLMD: no run id, no profile; the dataset and data as recorded.
  assert _cells(page, 'run') == _cells(local, 'run')[2:]
  parsed = _parsed(page)
  assert parsed.tags[:2] == ['html', 'head'] and 'table' in parsed.tags
  # Self-contained: nothing to fetch, every picture inline.
  assert len(parsed.links) == 2 and all(
      link.startswith('data:image/png;base64,') for link in parsed.links)
  assert 'http' not in page


def test_the_artifact_page_of_a_run_not_blessed_says_nothing_is_pushed(tmp_path):
  page = _artifact_page(tmp_path, _outcome(tmp_path, blessed=False,
                                           failures=[FAILURE]))
  assert 'Verdict: not blessed' in page
  assert f'<li>{html.escape(FAILURE)}</li>' in page
  assert 'Push: nothing pushed' in page


def test_the_artifact_page_never_replaces_a_directory_with_files(tmp_path):
  outcome = _outcome(tmp_path)
  page_uri = tmp_path / 'html_report'
  (page_uri / 'kept').mkdir(parents=True)
  with pytest.raises(FileExistsError, match='html_report is a directory with files'):
    page_lib.write_artifact_page(outcome.report_uri, str(page_uri))
  assert (page_uri / 'kept').is_dir()


def _chromium():
  return shutil.which('chromium') or shutil.which('chromium-browser')


def _rendered(tmp_path, page):
  """{'text': the page's rendered text, 'images': [{'alt', 'decoded'}]} as
  headless Chromium shows the page."""
  probed = tmp_path / 'probed.html'
  probed.write_text(page.replace('</body>', PROBE + '</body>'))
  result = subprocess.run(
      [_chromium(), '--headless', '--disable-gpu', '--no-sandbox',
       f'--user-data-dir={tmp_path / "chromium-profile"}', '--dump-dom',
       probed.as_uri()],
      capture_output=True, text=True, timeout=120, check=True)
  probe = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
  assert probe, f'no probe in the rendered page: {result.stderr[-2000:]}'
  return json.loads(html.unescape(probe.group(1)))


@pytest.mark.skipif(_chromium() is None,
                    reason='no chromium binary (apt-get install chromium; CI does)')
def test_chromium_renders_the_verdict_metrics_with_units_and_every_image(tmp_path):
  page = _page(tmp_path, _outcome(tmp_path, blessed=False, failures=[FAILURE]))
  rendered = _rendered(tmp_path, page)
  text = rendered['text']
  assert 'Verdict: not blessed' in text
  assert FAILURE in text and 'Push: nothing pushed' in text
  for unit in UNIT_TEXTS:
    assert unit in text
  assert '13.98' in text and 'noisy input (reference)' in text
  assert 'train 80, eval 30, test 20 examples' in text
  assert rendered['images'] == [
      {'alt': 'PSNR per class', 'decoded': True},
      {'alt': 'clean, noisy and denoised test images', 'decoded': True}]


# --- the version chart of the run's own serving dir ----------------------------

def _served(serving, count):
  """`count` pushed versions in `serving` with their push records (what
  versions.list_versions reads): complete version directories, PSNR rising."""
  from components.common import push_records  # pylint: disable=g-import-not-at-top
  for index in range(count):
    version = str(1796600000 + 1000 * index)
    (serving / version).mkdir(parents=True)
    (serving / version / 'saved_model.pb').write_bytes(b'model')
    push_records.write(str(serving), push_records.PushRecord(
        version=version, pushed_at='2026-12-07T00:00:00',
        metrics={'psnr': 22.0 + 0.3 * index}))


def _recorded_run(tmp_path, report_dir, serving):
  """An MLMD store where TFX's own execution recording (execution_lib, as
  its launcher does) wrote a run: ServedModel with its serving_dir
  parameter, and the VisualReport's output."""
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.portable.mlmd import execution_lib  # pylint: disable=g-import-not-at-top
  from tfx.types import standard_artifacts  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'metadata.sqlite')
  with metadata.Metadata(metadata.sqlite_metadata_connection_config(path)) as handle:
    def context(type_name, name):
      type_id = handle.store.put_context_type(
          metadata_store_pb2.ContextType(name=type_name))
      [context_id] = handle.store.put_contexts(
          [metadata_store_pb2.Context(type_id=type_id, name=name)])
      return handle.store.get_contexts_by_id([context_id])[0]
    run = [context('pipeline', 'photos'), context('pipeline_run', 'run-7')]
    for node, exec_properties, outputs in (
        ('ServedModel', {'serving_dir': str(serving)}, {}),
        ('VisualReport', {'examples_per_class': 3}, {'report': report_dir})):
      execution = execution_lib.prepare_execution(
          handle, metadata_store_pb2.ExecutionType(name=node),
          metadata_store_pb2.Execution.COMPLETE, exec_properties)
      artifacts = {}
      for key, uri in outputs.items():
        artifact = standard_artifacts.Model()  # Any type: the URI is read.
        artifact.uri = uri
        artifacts[key] = [artifact]
      execution_lib.put_execution(handle, execution,
                                  run + [context('node', f'photos.{node}')],
                                  output_artifacts=artifacts)
  return path


def test_the_page_charts_the_serving_dir_the_run_used_not_the_profile_s(tmp_path):
  # An image folder's run, with its own --serving-dir: `report` is given
  # the profile's serving dir, where nothing was pushed.
  serving = tmp_path / 'photos' / 'serving'
  _served(serving, 3)
  report_dir = _outcome(tmp_path).report_uri
  outcome = run_outcome.latest(_recorded_run(tmp_path, report_dir, serving))
  assert outcome.serving_dir == str(serving)
  output = tmp_path / 'report.html'
  report_page.write_page(outcome, 'smoke', str(output),
                         serving_dir=str(tmp_path / 'profile-serving'))
  page = output.read_text()
  assert 'PSNR by version' in page and page.count('<circle') == 3


def test_the_serving_dir_of_a_run_without_served_model_is_its_push_s(tmp_path):
  outcome = _outcome(tmp_path, pushed={'pushed': 1, 'pushed_version': '17',
                                       'pushed_destination': '/srv/photos/17'})
  assert outcome.serving_dir == '/srv/photos'
  assert _outcome(tmp_path / 'unpushed').serving_dir is None


# --- as Chromium lays the page out: every label whole, the chart there --------

# Where the screenshots go: CI keeps build/report-screenshots/ (.ci/run).
SCREENSHOTS = pathlib.Path(pipeline_config.repository_root()) / 'build' / 'report-screenshots'
WINDOW = (1100, 3400)  # Pixels: a laptop's width, tall enough for the page.
LONG_NAMES = dataset_info.DatasetInfo('long_names', (12, 12, 1), (
    'Ankle boot', 'pneumonoultramicroscopicsilicovolcanoconiosis',
    'tropical rainforest canopy at dusk, photographed from the ground', 'dog',
    # A folder's name nobody shortened: one word wider than the page.
    'scanned_invoices_from_the_accounts_department_archive_' * 3))
# Run once the page has loaded: every label, text cell and chart text as laid
# out, whether it shows whole (nothing scrolled out of its box, nothing past
# the chart's edges), written into the DOM for --dump-dom to show.
LAYOUT_PROBE = '''<script>
window.addEventListener('load', () => {
  const cut = element => element.scrollWidth > element.clientWidth + 1;
  const cells = Array.from(document.querySelectorAll('th, td, h1, h2, p, li'));
  const svg = document.querySelector('#history svg');
  const box = svg ? svg.getBoundingClientRect() : null;
  const texts = svg ? Array.from(svg.querySelectorAll('text'), text => {
    const bounds = text.getBoundingClientRect();
    return {text: text.textContent,
            inside: bounds.left >= box.left - 0.5 && bounds.right <= box.right + 0.5 &&
                    bounds.top >= box.top - 0.5 && bounds.bottom <= box.bottom + 0.5};
  }) : [];
  const probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({
    cut: cells.filter(cut).map(element => element.textContent),
    overflow: document.documentElement.scrollWidth > window.innerWidth,
    chart: svg ? {width: box.width, circles: svg.querySelectorAll('circle').length,
                  texts: texts} : null,
    classes: Array.from(document.querySelectorAll('td.class-name'), cell => cell.textContent),
  });
  document.body.appendChild(probe);
});
</script>'''


def _chromium_run(tmp_path, page_file, *flags):
  return subprocess.run(
      [_chromium(), '--headless', '--disable-gpu', '--no-sandbox',
       '--hide-scrollbars', f'--window-size={WINDOW[0]},{WINDOW[1]}',
       f'--user-data-dir={tmp_path / "chromium-profile"}', *flags,
       page_file.as_uri()],
      capture_output=True, text=True, timeout=120, check=True)


def _laid_out(tmp_path, page, screenshot):
  """The layout probe's findings on `page` in headless Chromium; the page's
  screenshot is written to SCREENSHOTS/`screenshot`."""
  page_file = tmp_path / 'page.html'
  page_file.write_text(page)
  SCREENSHOTS.mkdir(parents=True, exist_ok=True)
  _chromium_run(tmp_path, page_file, f'--screenshot={SCREENSHOTS / screenshot}')
  assert Image.open(SCREENSHOTS / screenshot).size == WINDOW
  probed = tmp_path / 'probed.html'
  probed.write_text(page.replace('</body>', LAYOUT_PROBE + '</body>'))
  result = _chromium_run(tmp_path, probed, '--dump-dom')
  probe = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
  assert probe, f'no probe in the rendered page: {result.stderr[-2000:]}'
  return json.loads(html.unescape(probe.group(1)))


@pytest.mark.skipif(_chromium() is None,
                    reason='no chromium binary (apt-get install chromium; CI does)')
@pytest.mark.parametrize('versions', [1, 2, 50])
def test_chromium_shows_every_label_whole_and_the_version_chart(tmp_path, versions):
  serving = tmp_path / 'serving'
  _served(serving, versions)
  outcome = dataclasses.replace(
      _outcome(tmp_path, info=LONG_NAMES, pushed={
          'pushed': 1, 'pushed_version': '1796600000',
          'pushed_destination': f'{serving}/1796600000'}),
      serving_dir=str(serving))
  laid_out = _laid_out(tmp_path, _page(tmp_path, outcome),
                       f'report-{versions}-version{"s" if versions > 1 else ""}.png')
  assert laid_out['cut'] == [] and not laid_out['overflow']
  assert laid_out['classes'] == list(LONG_NAMES.class_names)
  chart = laid_out['chart']
  assert chart and chart['circles'] == versions and chart['width'] > 300
  assert [text['text'] for text in chart['texts'] if not text['inside']] == []
  shown = [text['text'] for text in chart['texts']]
  assert '1796600000' in shown and str(1796600000 + 1000 * (versions - 1)) in shown
  assert 'PSNR (dB)' in shown
