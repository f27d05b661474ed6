"""`dae-pipeline report`: one run's outcome and pictures as one offline HTML page.

The facts (verdict, failed gates, push, figures of the model, the noisy input
and the last blessed model, split sizes) come from the run's
`run_outcome.RunOutcome`, the same facts as the run's closing verdict; the
dataset, the per-class PSNR (named by the dataset's class names; none for a
dataset without labels) and the pictures from its VisualReport artifact;
the serving dir's push records add a chart of PSNR by version.
The page embeds its images (base64 data URIs) and needs no network.

The VisualReport writes the same page as its `html_report` artifact
(artifact_page): rendered from the report artifact alone, with no MLMD, it
shows what the report knows; the push, which the Pusher decides beside it,
is left to the Pusher's own artifact.
"""

import base64
import os
from typing import Dict, List, Optional

from absl import logging as absl_logging
import jinja2
import markupsafe

from components.visual_report import report as report_lib
from pipeline import run_outcome
from pipeline import run_summary

# What each figure is measured in, and which way is better.
UNITS = {
    'psnr': 'dB, higher is better',
    'mean_image_psnr': 'dB, higher is better',
    'ssim': 'unitless, 0..1, higher is better',
    'mse': 'on [0, 1] pixels, lower is better',
}
# components/push_records.RECORDS_DIRNAME (that module imports TensorFlow).
RECORDS_DIRNAME = '.push-records'
# The data splits in the order a reader expects them.
SPLIT_ORDER = ('train', 'eval', 'test')
# The push line of an artifact page: the Pusher runs beside the VisualReport,
# so what it did is not known when the page is written.
PUSH_DECIDED_LATER = ('decided by the Pusher, a separate step of this run '
                      '(see its pushed_model artifact)')

_TEMPLATE = jinja2.Template('''<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th.unit, td.unit, #run td { text-align: left; } td.unit { color: #555; }
.verdict { border-left: 0.4em solid; padding: 0.2em 1em; margin: 1em 0; }
.verdict.blessed { border-color: #1a7f37; background: #eef8f0; }
.verdict.not-blessed { border-color: #b42318; background: #fdf0ef; }
.blessed h2 { color: #1a7f37; } .not-blessed h2 { color: #b42318; }
.note { color: #555; }
img { max-width: 100%; }
</style></head><body>
<h1>{{ title }}</h1>
<section id="verdict" class="verdict {{ 'blessed' if blessed else 'not-blessed' }}">
<h2>Verdict: {{ 'blessed' if blessed else 'not blessed' }}</h2>
{% if failures %}<p>Failed gates:</p><ul>
{% for failure in failures %}<li>{{ failure }}</li>
{% endfor %}</ul>{% endif %}
<p>Push: {{ push }}</p>
</section>
<table id="run">{% if run_id %}<tr><th>run</th><td><code>{{ run_id }}</code></td></tr>
{% endif %}{% if profile %}<tr><th>profile</th><td>{{ profile }}</td></tr>
{% endif %}<tr><th>dataset</th><td>{{ dataset }}</td></tr>
<tr><th>data</th><td>{{ splits }}</td></tr></table>
<h2>Test metrics</h2>
<p class="note">{{ baseline_note }}</p>
<table id="metrics"><tr><th>metric</th><th class="unit">unit</th><th>this model</th>
<th>noisy input (reference)</th>
{% if compare %}<th>last blessed model</th><th>change</th>{% endif %}</tr>
{% for row in overall %}<tr><td>{{ row.name }}</td><td class="unit">{{ row.unit }}</td>
<td>{{ row.candidate }}</td><td>{{ row.noisy_input }}</td>
{% if compare %}<td>{{ row.baseline }}</td><td>{{ row.change }}</td>{% endif %}</tr>
{% endfor %}</table>
<p>The noisy input column scores the noisy test images against the clean
ones: what the model starts from. PSNR is 10&middot;log10(1/MSE) from the
mean MSE over all test pixels; mean_image_psnr averages per-image PSNR; SSIM
is the mean of <code>tf.image.ssim</code> (defaults, max_val 1).</p>
{% if chart %}<h2>PSNR per class</h2>
<img alt="PSNR per class" src="data:image/png;base64,{{ chart }}">
<table id="classes"><tr><th>class</th>{% for name in classes %}<th>{{ name }}</th>{% endfor %}</tr>
<tr><td>this model (dB)</td>{% for value in class_candidate %}<td>{{ value }}</td>{% endfor %}</tr>
{% if compare %}<tr><td>last blessed model (dB)</td>{% for value in class_baseline %}<td>{{ value }}</td>{% endfor %}</tr>{% endif %}
</table>{% endif %}
{% if history %}<h2>PSNR by version</h2>
<p class="note">Test PSNR of each version of the serving dir, oldest first
(red: a rollback; ringed: served now). <code>dae-pipeline models</code> lists them.</p>
<div id="history">{{ history }}</div>{% endif %}
<h2>Test images: clean, noisy, denoised</h2>
<img alt="clean, noisy and denoised test images" src="data:image/png;base64,{{ grid }}">
<p><small>Report artifact: <code>{{ report_uri }}</code></small></p>
</body></html>
''', autoescape=True)


def _format(name: str, value: Optional[float], signed: bool = False) -> str:
  if value is None:
    return '-'
  places = 5 if name == 'mse' else (4 if name == 'ssim' else 2)
  return f'{value:+.{places}f}' if signed else f'{value:.{places}f}'


def _baseline_note(outcome: run_outcome.RunOutcome) -> str:
  """What the model is compared with, in words."""
  if outcome.baseline_is_candidate:
    return 'baseline: the same model (nothing new was trained)'
  if outcome.baseline is None:
    return 'baseline: none (no blessed model to compare with yet)'
  return 'baseline: the last blessed model'


def _splits(split_sizes: Dict[str, int]) -> str:
  """'train 80, eval 30, test 20 examples' (the splits the run recorded)."""
  names = [name for name in SPLIT_ORDER if name in split_sizes]
  names += sorted(set(split_sizes) - set(SPLIT_ORDER))
  if not names:
    return 'sizes not recorded'
  return ', '.join(f'{name} {split_sizes[name]}' for name in names) + ' examples'


def _dataset(info: Optional[report_lib.DatasetInfo]) -> str:
  """'mnist, 28x28 (HxW) grey, 10 classes' (what the report recorded of it)."""
  if info is None:
    return 'not recorded'
  height, width, channels = info.image_shape
  colour = 'grey' if channels == 1 else 'colour'
  classes = (f'{len(info.class_names)} classes' if info.labeled
             else 'no labels')
  return f'{info.name}, {height}x{width} (HxW) {colour}, {classes}'


def _metric_rows(outcome: run_outcome.RunOutcome) -> List[dict]:
  """One row per metric: unit, the model, the noisy input, the baseline."""
  baseline, noisy_input = outcome.baseline or {}, outcome.noisy_input or {}
  rows = []
  for name in report_lib.metric_names(
      {report_lib.CANDIDATE: outcome.candidate, report_lib.BASELINE: baseline}):
    value, previous = outcome.candidate.get(name), baseline.get(name)
    change = (value - previous) if value is not None and previous is not None else None
    rows.append(dict(name=name, unit=UNITS.get(name, ''),
                     candidate=_format(name, value),
                     noisy_input=_format(name, noisy_input.get(name)),
                     baseline=_format(name, previous),
                     change=_format(name, change, signed=True)))
  return rows


def _history(serving_dir: Optional[str]) -> Optional[markupsafe.Markup]:
  """The serving dir's chart of PSNR by version (pipeline/versions.py);
  None without a serving dir or push records."""
  if not serving_dir or ('://' not in serving_dir and not os.path.isdir(
      os.path.join(serving_dir, RECORDS_DIRNAME))):
    # Checked without TensorFlow's filesystems (whose import takes seconds):
    # a page of a run on a local disk without records stays quick.
    return None
  # The records are read through TensorFlow's filesystems (buckets too):
  # its start-up noise is filtered as for the other follow-up commands.
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)
  from pipeline import versions  # pylint: disable=g-import-not-at-top
  try:
    chart = versions.psnr_chart_svg(versions.list_versions(serving_dir))
  except Exception as error:  # pylint: disable=broad-except
    # The chart is an extra: a serving dir that cannot be read (a bucket
    # without credentials) leaves it out, not the page.
    absl_logging.warning('No version history on the report page: %s cannot be '
                         'read (%s)', serving_dir, error)
    return None
  # Built from numbers and escaped titles: safe to embed as markup.
  return markupsafe.Markup(chart) if chart else None


def render_html(outcome: run_outcome.RunOutcome, profile: Optional[str],
                push: Optional[str] = None,
                serving_dir: Optional[str] = None) -> str:
  """The report page of one run's outcome.

  Args:
    outcome: The run's outcome; its report artifact gives the pictures.
    profile: The configuration profile the run used (None: not known, no
      row); likewise no run row for an outcome without a run id.
    push: What the page says of the push (None: what the outcome records).
    serving_dir: Its push records' PSNR by version is charted, when it has
      records (None: no chart).
  """
  metrics, images = report_lib.load_report(outcome.report_uri)
  # A baseline that is the candidate itself would show a column of +0.00.
  compare = outcome.baseline is not None and not outcome.baseline_is_candidate
  info = report_lib.report_info(metrics)
  by_class = report_lib.json_class_keys(metrics['by_class'])
  class_psnr = by_class.get(report_lib.CANDIDATE, {}).get('psnr', {})
  baseline_psnr = by_class.get(report_lib.BASELINE, {}).get('psnr', {})
  labels = sorted(class_psnr)
  chart = images.get(report_lib.PSNR_CHART_FILENAME)
  return _TEMPLATE.render(
      title='Denoising autoencoder: run report',
      dataset=_dataset(info),
      blessed=outcome.blessed, failures=outcome.failures,
      push=push or run_outcome.push_line(outcome), run_id=outcome.run_id,
      profile=profile, splits=_splits(outcome.split_sizes),
      baseline_note=_baseline_note(outcome), compare=compare,
      overall=_metric_rows(outcome),
      classes=[info.class_name(label) if info else str(label) for label in labels],
      class_candidate=[_format('psnr', class_psnr[label]) for label in labels],
      class_baseline=[_format('psnr', baseline_psnr.get(label)) for label in labels],
      chart=base64.b64encode(chart).decode() if chart else None,
      grid=base64.b64encode(images[report_lib.GRID_FILENAME]).decode(),
      history=_history(serving_dir),
      report_uri=outcome.report_uri)


def write_page(outcome: run_outcome.RunOutcome, profile: str,
               output: str, serving_dir: Optional[str] = None) -> None:
  """Writes the report page of `outcome` to the local file `output`."""
  page = render_html(outcome, profile, serving_dir=serving_dir)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as output_file:
    output_file.write(page)


def artifact_page(report_uri: str) -> str:
  """The report page of a VisualReport artifact alone (a path or a URI), read
  with no MLMD: the outcome of a run whose only finished record is that
  report's, which is all the VisualReport itself knows."""
  outcome = run_outcome.from_records([run_summary.ExecutionRecord(
      run_outcome.REPORT_NODE, 'COMPLETE', {run_outcome.REPORT_KEY: report_uri})])
  return render_html(outcome, profile=None,
                     push=PUSH_DECIDED_LATER if outcome.blessed else None)


def write_artifact_page(report_uri: str, page_uri: str) -> None:
  """Writes artifact_page(report_uri) as the file `page_uri` (may be gs://).

  KFP's HTML artifacts are the file at their URI (the UI reads that file,
  frontend/src/components/viewers/MetricsVisualizations.tsx,
  getHtmlViewerConfig), while TFX's local launcher makes every output
  artifact's URI a directory before the executor runs
  (tfx/orchestration/portable/outputs_utils.py, make_output_dirs): that
  empty directory gives way to the file.
  """
  # The URI may be a bucket: TFX's filesystem layer (the component has TFX
  # loaded; imported here so that `dae-pipeline report` stays light).
  from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
  page = artifact_page(report_uri)
  if fileio.isdir(page_uri):
    if fileio.listdir(page_uri):
      raise FileExistsError(f'{page_uri} is a directory with files in it; '
                            'the HTML report must be written as that file')
    fileio.rmtree(page_uri)
  fileio.makedirs(os.path.dirname(page_uri))
  with fileio.open(page_uri, 'w') as page_file:
    page_file.write(page)
