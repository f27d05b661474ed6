"""`dae-pipeline report`: the newest run's VisualReport as one offline HTML page.

The page embeds its images (base64 data URIs) and needs no network: the
run's metrics, the comparison with the last blessed model (the Evaluator's
baseline, when the run had one), the per-digit PSNR chart and the digit grid.
"""

import base64
import dataclasses
import os
from typing import Optional

import jinja2

from components.visual_report import report as report_lib
from pipeline import run_summary

REPORT_NODE = 'VisualReport'
REPORT_KEY = 'report'

_TEMPLATE = jinja2.Template('''<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.blessed { color: #1a7f37; } .not-blessed { color: #b42318; }
img { max-width: 100%; }
</style></head><body>
<h1>{{ title }}</h1>
<p>Run <code>{{ run_id }}</code>: the candidate model was
{% if blessed %}<b class="blessed">blessed</b>{% else %}<b class="not-blessed">not blessed</b>{% endif %}
by the Evaluator.
{% if has_baseline %}It is compared with the last blessed model (the baseline).
{% else %}There was no blessed model to compare with.{% endif %}</p>
<h2>Test metrics</h2>
<table><tr><th>metric</th><th>this model</th>
{% if has_baseline %}<th>last blessed model</th><th>change</th>{% endif %}</tr>
{% for row in overall %}<tr><td>{{ row.name }}</td><td>{{ row.candidate }}</td>
{% if has_baseline %}<td>{{ row.baseline }}</td><td>{{ row.change }}</td>{% endif %}</tr>
{% endfor %}</table>
<p>PSNR is 10&middot;log10(1/MSE) from the mean MSE over all test pixels; mean_image_psnr
averages per-image PSNR; SSIM is the mean of <code>tf.image.ssim</code> (defaults, max_val 1).</p>
<h2>PSNR per digit</h2>
<img alt="PSNR per digit" src="data:image/png;base64,{{ chart }}">
<table><tr><th>digit</th>{% for digit in digits %}<th>{{ digit }}</th>{% endfor %}</tr>
<tr><td>this model (dB)</td>{% for value in digit_candidate %}<td>{{ value }}</td>{% endfor %}</tr>
{% if has_baseline %}<tr><td>last blessed (dB)</td>{% for value in digit_baseline %}<td>{{ value }}</td>{% endfor %}</tr>{% endif %}
</table>
<h2>Test digits: clean, noisy, denoised</h2>
<img alt="clean, noisy and denoised test digits" src="data:image/png;base64,{{ grid }}">
<p><small>Report artifact: <code>{{ report_uri }}</code></small></p>
</body></html>
''', autoescape=True)


@dataclasses.dataclass(frozen=True)
class ReportSource:
  """Where the newest report is: its run and artifact directory."""
  run_id: str
  uri: str


def latest_report(metadata_path: str) -> ReportSource:
  """The VisualReport output of the newest run that has one."""
  return ReportSource(*run_summary.latest_output(metadata_path, REPORT_NODE,
                                                 REPORT_KEY))


def _format(name: str, value: Optional[float], signed: bool = False) -> str:
  if value is None:
    return '-'
  digits = 5 if name == 'mse' else (4 if name == 'ssim' else 2)
  return f'{value:+.{digits}f}' if signed else f'{value:.{digits}f}'


def render_html(source: ReportSource) -> str:
  """The report page of one VisualReport artifact."""
  metrics, images = report_lib.load_report(source.uri)
  overall = metrics['overall']
  candidate = overall[report_lib.CANDIDATE]
  baseline = overall.get(report_lib.BASELINE)
  rows = []
  for name in report_lib.metric_names(overall):
    value, previous = candidate.get(name), (baseline or {}).get(name)
    change = (value - previous) if value is not None and previous is not None else None
    rows.append(dict(name=name, candidate=_format(name, value),
                     baseline=_format(name, previous),
                     change=_format(name, change, signed=True)))
  by_digit = report_lib.json_digit_keys(metrics['by_digit'])
  digit_psnr = by_digit.get(report_lib.CANDIDATE, {}).get('psnr', {})
  baseline_psnr = by_digit.get(report_lib.BASELINE, {}).get('psnr', {})
  digits = sorted(digit_psnr)
  return _TEMPLATE.render(
      title='MNIST denoising autoencoder: run report',
      run_id=source.run_id, blessed=bool(metrics.get('blessed')),
      has_baseline=baseline is not None, overall=rows, digits=digits,
      digit_candidate=[_format('psnr', digit_psnr[digit]) for digit in digits],
      digit_baseline=[_format('psnr', baseline_psnr.get(digit)) for digit in digits],
      chart=base64.b64encode(images[report_lib.PSNR_CHART_FILENAME]).decode(),
      grid=base64.b64encode(images[report_lib.GRID_FILENAME]).decode(),
      report_uri=source.uri)


def write_page(metadata_path: str, output: str) -> ReportSource:
  """Writes the newest run's report page to `output`; returns its source."""
  source = latest_report(metadata_path)
  page = render_html(source)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as output_file:
    output_file.write(page)
  return source
