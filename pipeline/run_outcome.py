"""What a run decided, read back from MLMD: its verdict, figures and push.

The facts come from the run's own records: VisualReport's metrics.json
(the evaluation's metrics, the failed gates, the noisy input's figures),
ServingCheck's InfraBlessing (why a blessed model may not be served) and
the Pusher's PushedModel artifact (where and as which version it pushed).
`dae-pipeline run` prints them as its closing verdict and `dae-pipeline
report` shows them on its page. No TensorFlow or TFX import: both stay quick.
"""

import dataclasses
import datetime
from typing import Dict, List, Optional

from components.common import names
from components.visual_report import page as page_lib
from pipeline import run_summary


@dataclasses.dataclass(frozen=True)
class RunOutcome(page_lib.ReportFacts):
  """What one run decided: its report's facts, and what MLMD adds.

  Attributes:
    run_id: The MLMD pipeline-run id.
    pushed_path: Where the Pusher wrote the model (None: nothing pushed).
    pushed_version: That version's name.
    already_served_version: The version already serving this very model
      when the Pusher found it there (not pushed again).
    not_pushed_reason: Why a blessed model was not pushed (the serving dir
      changed after the candidate was evaluated), None otherwise.
    pipeline_name: The pipeline the run belongs to ('' where unknown).
    serving_failure: Why the serving check refused the blessed model (None:
      it passed, or did not run).
    serving_dir: The serving dir the run compared with and pushed to (its
      ServedModel's parameter; else the parent of the Pusher's push); None
      where the run recorded neither.
  """
  run_id: str = ''
  pushed_path: Optional[str] = None
  pushed_version: Optional[str] = None
  already_served_version: Optional[str] = None
  not_pushed_reason: Optional[str] = None
  pipeline_name: str = ''
  serving_failure: Optional[str] = None
  serving_dir: Optional[str] = None


def _serving_dir(records: List[run_summary.ExecutionRecord],
                 pushed_path: Optional[str]) -> Optional[str]:
  """The run's serving dir: ServedModel's parameter (recorded whether or not
  the run pushed), else the folder of the version the Pusher wrote."""
  for record in records:
    if record.node_id == names.SERVED_MODEL_NODE and record.exec_properties.get(
        names.SERVING_DIR_PARAMETER):
      return record.exec_properties[names.SERVING_DIR_PARAMETER]
  if pushed_path:
    return pushed_path.rstrip('/').rpartition('/')[0] or None
  return None


def from_records(records: List[run_summary.ExecutionRecord], run_id: str = ''
                 ) -> Optional[RunOutcome]:
  """The outcome of a run from its executions; None when it drew no report
  (it failed or stopped before the VisualReport)."""
  report = run_summary.finished_record(records, names.VISUAL_REPORT_NODE, names.REPORT_KEY)
  if report is None:
    return None
  pushed = run_summary.finished_record(records, names.PUSHER_NODE, names.PUSHED_MODEL_KEY)
  properties = pushed.output_properties.get(names.PUSHED_MODEL_KEY, {}) if pushed else {}
  was_pushed = properties.get(names.PUSHED_PROPERTY) == 1
  check = run_summary.finished_record(records, names.SERVING_CHECK_NODE,
                                      names.INFRA_BLESSING_KEY)
  check_properties = (check.output_properties.get(names.INFRA_BLESSING_KEY, {})
                      if check else {})
  serving_failure = None
  if check_properties.get(names.INFRA_BLESSED_PROPERTY) == 0:
    serving_failure = (check_properties.get(names.SERVING_FAILURE_PROPERTY)
                       or 'no reason recorded')
  facts = page_lib.read_facts(report.output_uris[names.REPORT_KEY])
  pushed_path = (properties.get(names.PUSHED_DESTINATION_PROPERTY)
                 if was_pushed else None)
  return RunOutcome(
      **{field.name: getattr(facts, field.name)
         for field in dataclasses.fields(facts)},
      run_id=run_id,
      pushed_path=pushed_path,
      pushed_version=properties.get(names.PUSHED_VERSION_PROPERTY) if was_pushed else None,
      already_served_version=properties.get(names.ALREADY_SERVED_VERSION_PROPERTY) or None,
      not_pushed_reason=properties.get(names.NOT_PUSHED_REASON_PROPERTY) or None,
      serving_failure=serving_failure,
      serving_dir=_serving_dir(records, pushed_path))


def latest(metadata_path: str) -> RunOutcome:
  """The outcome of the newest run that drew a report.

  Raises:
    FileNotFoundError: no store, or no run got as far as its report.
  """
  store = run_summary.open_store(metadata_path)
  for run_id in reversed(run_summary.run_ids(store)):
    outcome = from_records(run_summary.run_executions(store, run_id), run_id)
    if outcome is not None:
      return dataclasses.replace(
          outcome, pipeline_name=run_summary.run_pipeline_name(store, run_id))
  raise FileNotFoundError(f'no run in {metadata_path} got as far as its report; '
                          'run the pipeline first')


def _figures(metrics: Optional[Dict[str, float]]) -> str:
  """'PSNR 26.83 dB, SSIM 0.9753' (what of it exists)."""
  metrics = metrics or {}
  parts = []
  if 'psnr' in metrics:
    parts.append(f'PSNR {metrics["psnr"]:.2f} dB')
  if 'ssim' in metrics:
    parts.append(f'SSIM {metrics["ssim"]:.4f}')
  return ', '.join(parts) or 'no figures'


# Versions from this on are Unix seconds (TFX's Pusher names a version by its
# push time): from 2001 on, beyond any hand-numbered version.
_UNIX_SECONDS_FROM = 10**9


def _version_and_time(version: Optional[str]) -> str:
  """'1796605000 (2026-12-07 00:56 UTC)': a version with the time it names."""
  if not (version or '').isdigit() or int(version) < _UNIX_SECONDS_FROM:
    return str(version)
  pushed = datetime.datetime.fromtimestamp(int(version), datetime.timezone.utc)
  return f'{version} ({pushed:%Y-%m-%d %H:%M} UTC)'


def push_line(outcome: RunOutcome) -> str:
  """What the Pusher did, in words (the verdict's and the report page's)."""
  if not outcome.blessed:
    return page_lib.NOTHING_PUSHED
  if outcome.serving_failure:
    return f'NOT pushed: the serving check failed: {outcome.serving_failure}'
  if outcome.pushed_path:
    return (f'pushed as version {_version_and_time(outcome.pushed_version)} to '
            f'{outcome.pushed_path}')
  if outcome.not_pushed_reason:
    return f'not pushed: {outcome.not_pushed_reason}'
  if outcome.already_served_version:
    return (f'already served as version {outcome.already_served_version} '
            '(the same model; not pushed again)')
  return 'not pushed (the Pusher recorded no push)'


def verdict_lines(outcome: RunOutcome, report_command: str) -> List[str]:
  """The few closing lines of a run: verdict, headline figures, next step."""
  lines = [f'verdict: {"blessed" if outcome.blessed else "NOT blessed"}; '
           f'{push_line(outcome)}']
  lines += [f'  failed: {failure}' for failure in outcome.failures]
  if outcome.baseline_is_candidate:
    baseline = 'the same model (nothing new was trained)'
  elif outcome.baseline is None:
    baseline = 'none (nothing served yet)'
  else:
    baseline = _figures(outcome.baseline)
  test_size = outcome.split_sizes.get('test')
  lines.append(f'test set{f" ({test_size} images)" if test_size else ""}: '
               f'{_figures(outcome.candidate)}')
  if outcome.skipped_images:
    lines.append(f'  data: {outcome.skipped_images} bad image(s) of the folder '
                 'skipped (data.max_bad_images; the log names each)')
  lines.append(f'  noisy input: {_figures(outcome.noisy_input)}; '
               f'last blessed model: {baseline}')
  lines.append(f'next: {report_command}   (this run\'s metrics and pictures '
               'as one HTML page)')
  return lines


def closing_lines(records: List[run_summary.ExecutionRecord],
                  report_command: str) -> List[str]:
  """A finished run's verdict lines (verdict_lines), or the one line saying
  why there is none."""
  try:
    outcome = from_records(records)
  except FileNotFoundError as error:  # A cached report's files were deleted.
    return [f'verdict: unavailable ({error})']
  if outcome is None:
    return ['verdict: none (the run stopped before its evaluation)']
  return verdict_lines(outcome, report_command)
