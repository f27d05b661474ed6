"""A run's report as one offline HTML page: verdict, figures and pictures.

The facts (verdict, failed gates, figures of the model, the noisy input and
the last blessed model, split sizes) are the VisualReport artifact's
metrics.json (`read_facts`); the dataset, the per-class PSNR (named by the
dataset's class names; none for a dataset without labels) and the pictures
are its files. The page embeds its images (base64 data URIs) and needs no
network.

The VisualReport writes the page as its `html_report` artifact
(`write_artifact_page`): from the report artifact alone, it shows what the
report knows; the push, which the Pusher decides beside it, is left to the
Pusher's own artifact. `dae-pipeline report` renders the same page with
what only MLMD and the serving dir know: the push, the run, the history.
"""

import base64
import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

import jinja2
import markupsafe

from components.common import evaluation as evaluation_lib
from components.common import gates as gates_lib
from components.common.noise import kinds as noise_kinds
from components.visual_report import report as report_lib

# What each figure is measured in, and which way is better.
UNITS = {
    'psnr': 'dB, higher is better',
    'mean_image_psnr': 'dB, higher is better',
    'ssim': 'unitless, 0..1, higher is better',
    'mse': 'on [0, 1] pixels, lower is better',
}
# The data splits in the order a reader expects them.
SPLIT_ORDER = ('train', 'eval', 'test')
# The push line of an artifact page: the Pusher runs beside the VisualReport,
# so what it did is not known when the page is written.
PUSH_DECIDED_LATER = ('decided by the Pusher, a separate step of this run '
                      '(see its pushed_model artifact)')
NOTHING_PUSHED = 'nothing pushed'  # The push line of a run not blessed.


@dataclasses.dataclass(frozen=True)
class ReportFacts:
  """What a VisualReport artifact records of its run.

  Attributes:
    report_uri: The VisualReport artifact's directory.
    blessed: Whether the Evaluator blessed the candidate.
    failures: One line per failed gate (empty when blessed).
    candidate: {metric: value} of the candidate on the test split.
    baseline: The same of the last blessed model, None without one.
    noisy_input: The same of the noisy input against the clean images.
    baseline_is_candidate: The baseline is the candidate itself (a re-run
      that trained nothing new).
    split_sizes: {split: examples} of the run's data.
    skipped_images: Bad images of an image folder that the ExampleGen
      skipped (data.max_bad_images).
    thresholds: {ThresholdSpec field: bound} of the gates the Evaluator
      checked ({}: not recorded).
    noise: The noise settings the examples were made with (a NoiseSpec as
      a dict; None: not recorded).
  """
  report_uri: str
  blessed: bool
  failures: List[str]
  candidate: Dict[str, float]
  baseline: Optional[Dict[str, float]]
  noisy_input: Optional[Dict[str, float]]
  baseline_is_candidate: bool
  split_sizes: Dict[str, int]
  skipped_images: int = 0
  thresholds: Dict[str, float] = dataclasses.field(default_factory=dict)
  noise: Optional[Dict[str, Any]] = None


def read_facts(report_uri: str) -> ReportFacts:
  """The facts of the VisualReport artifact at `report_uri` (its metrics.json)."""
  metrics, _ = report_lib.load_report(report_uri, images=False)
  overall = metrics['overall']
  return ReportFacts(
      report_uri=report_uri,
      blessed=bool(metrics.get('blessed')),
      failures=list(metrics.get(report_lib.FAILURES, [])),
      candidate=overall[evaluation_lib.CANDIDATE],
      baseline=overall.get(evaluation_lib.BASELINE),
      noisy_input=metrics.get(report_lib.NOISY_INPUT),
      baseline_is_candidate=bool(metrics.get(report_lib.BASELINE_IS_CANDIDATE)),
      split_sizes=dict(metrics.get(report_lib.SPLIT_SIZES, {})),
      skipped_images=int(metrics.get(report_lib.SKIPPED_IMAGES, 0)),
      thresholds=dict(metrics.get(report_lib.THRESHOLDS, {})),
      noise=metrics.get(report_lib.NOISE))


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
/* A class name of any length shows whole: wrapped inside its cell. */
td.class-name { max-width: 24em; overflow-wrap: anywhere; }
#gates tr.failed td { color: #b42318; } #gates tr.passed td:last-child { color: #1a7f37; }
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
<tr><th>noise</th><td>{{ noise }}</td></tr>
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
{% if gates %}<table id="gates"><tr><th>push gate: the model must have</th>
<th class="unit">set by</th><th>this model</th><th class="unit">result</th></tr>
{% for row in gates %}<tr class="{{ row.result_class }}"><td>{{ row.gate }}</td>
<td class="unit"><code>{{ row.setting }}</code></td><td>{{ row.value }}</td>
<td class="unit">{{ row.result }}</td></tr>
{% endfor %}</table>
{% else %}<p class="note">Push gate: this report did not record its thresholds.</p>{% endif %}
<p>The noisy input column scores the noisy test images against the clean
ones: what the model starts from. PSNR is 10&middot;log10(1/MSE) from the
mean MSE over all test pixels; mean_image_psnr averages per-image PSNR; SSIM
is the mean of <code>tf.image.ssim</code> (defaults, max_val 1).</p>
{% if chart %}<h2>PSNR per class</h2>
<img alt="PSNR per class" src="data:image/png;base64,{{ chart }}">
<table id="classes"><tr><th>class</th><th>this model (dB)</th>
{% if compare %}<th>last blessed model (dB)</th><th>change (dB)</th>{% endif %}</tr>
{% for row in classes %}<tr><td class="class-name">{{ row.name }}</td><td>{{ row.candidate }}</td>
{% if compare %}<td>{{ row.baseline }}</td><td>{{ row.change }}</td>{% endif %}</tr>
{% endfor %}</table>{% endif %}
{% if history %}<h2>PSNR by version</h2>
<p class="note">Test PSNR of each version of the serving dir, oldest first
(red: a rollback; ringed: served now; hollow, off the line: measured on another
dataset or noise than the served version). <code>dae-pipeline models</code> lists them.</p>
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


def _baseline_note(facts: ReportFacts) -> str:
  """What the model is compared with, in words."""
  if facts.baseline_is_candidate:
    return 'baseline: the same model (nothing new was trained)'
  if facts.baseline is None:
    return 'baseline: none (no blessed model to compare with yet)'
  return 'baseline: the last blessed model'


def _splits(split_sizes: Dict[str, int], skipped_images: int = 0) -> str:
  """'train 80, eval 30, test 20 examples' (the splits the run recorded),
  and how many bad images were skipped, if any."""
  names = [name for name in SPLIT_ORDER if name in split_sizes]
  names += sorted(set(split_sizes) - set(SPLIT_ORDER))
  if not names:
    return 'sizes not recorded'
  sizes = ', '.join(f'{name} {split_sizes[name]}' for name in names) + ' examples'
  return sizes + (f'; {skipped_images} bad image(s) skipped (data.max_bad_images)'
                  if skipped_images else '')


def _dataset(info: Optional[report_lib.DatasetInfo]) -> str:
  """'mnist, 28x28 (HxW) grey, 10 classes' (what the report recorded of it)."""
  if info is None:
    return 'not recorded'
  height, width, channels = info.image_shape
  colour = 'grey' if channels == 1 else 'colour'
  classes = (f'{len(info.class_names)} classes' if info.labeled
             else 'no labels')
  return f'{info.name}, {height}x{width} (HxW) {colour}, {classes}'


def _metric_rows(facts: ReportFacts) -> List[dict]:
  """One row per metric: unit, the model, the noisy input, the baseline."""
  baseline, noisy_input = facts.baseline or {}, facts.noisy_input or {}
  rows = []
  for name in report_lib.metric_names(
      {evaluation_lib.CANDIDATE: facts.candidate, evaluation_lib.BASELINE: baseline}):
    value, previous = facts.candidate.get(name), baseline.get(name)
    change = (value - previous) if value is not None and previous is not None else None
    rows.append(dict(name=name, unit=UNITS.get(name, ''),
                     candidate=_format(name, value),
                     noisy_input=_format(name, noisy_input.get(name)),
                     baseline=_format(name, previous),
                     change=_format(name, change, signed=True)))
  return rows


def _noise(spec: Optional[Dict[str, Any]]) -> str:
  """'gaussian, stddev 0.2; unclipped; seed 42': the noise's kind and the
  settings of its level (kinds.NoiseKind.parameters; a stddev on the [0, 1]
  pixel scale, an amount a fraction of the pixels)."""
  if not spec:
    return 'not recorded'
  kind = spec.get('kind', '?')
  if kind in noise_kinds.REGISTRY.names():
    levels = noise_kinds.REGISTRY[kind].parameters
  else:  # A kind this code does not know: every numeric setting but the seed.
    levels = tuple(name for name, value in sorted(spec.items()) if name != 'seed'
                   and isinstance(value, (int, float)) and not isinstance(value, bool))
  settings = ', '.join(f'{name} {spec[name]:g}' for name in levels if name in spec)
  clipped = 'clipped to [0, 1]' if spec.get('clip') else 'unclipped'
  return (f'{kind}' + (f', {settings}' if settings else '')
          + f'; {clipped}; seed {spec.get("seed", "?")}')


def _class_psnr(metrics: dict) -> Tuple[Dict[int, float], Dict[int, float]]:
  """({label: PSNR} of the model, the same of the baseline) of a report."""
  by_class = report_lib.json_class_keys(metrics['by_class'])
  return tuple(by_class.get(model, {}).get('psnr', {}) for model in (
      evaluation_lib.CANDIDATE, evaluation_lib.BASELINE))


def _class_rows(metrics: dict, info: Optional[report_lib.DatasetInfo]
                ) -> List[dict]:
  """One row per class: its name, its PSNR under the model, the last blessed
  model and the change."""
  candidate, baseline = _class_psnr(metrics)
  rows = []
  for label in sorted(candidate):
    before = baseline.get(label)
    rows.append(dict(
        name=info.class_name(label) if info else str(label),
        candidate=_format('psnr', candidate[label]),
        baseline=_format('psnr', before),
        change=_format('psnr', None if before is None
                       else candidate[label] - before, signed=True)))
  return rows


def _worst_class_change(metrics: dict, info: Optional[report_lib.DatasetInfo]
                        ) -> Optional[Tuple[float, str]]:
  """(change, class name) of the class whose PSNR fell most against the
  baseline (None: no per-class figures of both models)."""
  candidate, baseline = _class_psnr(metrics)
  changes = [(candidate[label] - baseline[label], label)
             for label in candidate if label in baseline]
  if not changes:
    return None
  change, label = min(changes)
  return change, info.class_name(label) if info else str(label)


def _gate_value(gate: gates_lib.Gate, facts: ReportFacts,
                worst_class: Optional[Tuple[float, str]]) -> Optional[str]:
  """What the model scored on the gate's measure, in words (None: the gate
  compares with a baseline the run did not have)."""
  unit = gates_lib.UNITS.get(gate.metric_key, '')
  if not gate.is_change:
    return _format(gate.metric_key, facts.candidate.get(gate.metric_key)) + unit
  if facts.baseline is None:
    return None
  if facts.baseline_is_candidate:  # Every change is 0 by construction.
    return 'no change (the same model)'
  if gate.per_class:
    if worst_class is None:
      return None
    change, name = worst_class
    return f'{_format(gate.metric_key, change, signed=True)}{unit} (worst: class {name})'
  now, before = (facts.candidate.get(gate.metric_key),
                 facts.baseline.get(gate.metric_key))
  change = None if now is None or before is None else now - before
  return _format(gate.metric_key, change, signed=True) + unit


def _gate_rows(facts: ReportFacts, worst_class: Optional[Tuple[float, str]]
               ) -> List[dict]:
  """One row per gate the Evaluator checked (gates.GATES, as recorded):
  what it asks, the setting, the model's figure and whether it passed."""
  rows = []
  for gate in gates_lib.GATES:
    if gate.field not in facts.thresholds:
      continue
    setting = gates_lib.setting(gate)
    value = _gate_value(gate, facts, worst_class)
    if any(f'({setting})' in failure for failure in facts.failures):
      result = 'failed'
    elif value is None:
      result = 'not checked: no last blessed model to compare with'
    else:
      result = 'passed'
    rows.append(dict(gate=gates_lib.describe_bound(gate, facts.thresholds[gate.field]),
                     setting=setting, value=value or '-', result=result,
                     result_class=result.split(':')[0].replace(' ', '-')))
  return rows


def render_html(facts: ReportFacts, push: str, run_id: str = '',
                profile: Optional[str] = None,
                history_svg: Optional[str] = None) -> str:
  """The report page of one run.

  Args:
    facts: The run's report (its verdict and figures); its artifact gives
      the pictures.
    push: What the page says of the push.
    run_id: The run's id (empty: not known, no row).
    profile: The configuration profile the run used (None: not known, no
      row).
    history_svg: A chart of PSNR by version of the serving dir, as SVG
      built from numbers and escaped titles (None: no chart).
  """
  metrics, images = report_lib.load_report(facts.report_uri)
  # A baseline that is the candidate itself would show a column of +0.00.
  compare = facts.baseline is not None and not facts.baseline_is_candidate
  info = report_lib.report_info(metrics)
  chart = images.get(report_lib.PSNR_CHART_FILENAME)
  return _TEMPLATE.render(
      title='Denoising autoencoder: run report',
      dataset=_dataset(info), noise=_noise(facts.noise),
      blessed=facts.blessed, failures=facts.failures,
      push=push, run_id=run_id,
      profile=profile, splits=_splits(facts.split_sizes, facts.skipped_images),
      baseline_note=_baseline_note(facts), compare=compare,
      overall=_metric_rows(facts),
      gates=_gate_rows(facts, _worst_class_change(metrics, info)),
      classes=_class_rows(metrics, info),
      chart=base64.b64encode(chart).decode() if chart else None,
      grid=base64.b64encode(images[report_lib.GRID_FILENAME]).decode(),
      history=markupsafe.Markup(history_svg) if history_svg else None,
      report_uri=facts.report_uri)


def artifact_page(report_uri: str) -> str:
  """The report page of a VisualReport artifact alone (a path or a URI), read
  with no MLMD: what the VisualReport itself knows."""
  facts = read_facts(report_uri)
  return render_html(facts, PUSH_DECIDED_LATER if facts.blessed else NOTHING_PUSHED)


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
