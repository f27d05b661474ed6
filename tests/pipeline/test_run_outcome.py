"""The run's verdict: read from its records and report, printed in a few lines."""

import json

from components.common import evaluation as evaluation_lib
from components.visual_report import report as report_lib
from pipeline import run_outcome
from pipeline.run_summary import ExecutionRecord

CANDIDATE = {'psnr': 21.437, 'ssim': 0.81234, 'mse': 0.0072}
BASELINE = {'psnr': 21.1, 'ssim': 0.8, 'mse': 0.0078}
NOISY = {'psnr': 13.98, 'ssim': 0.2987, 'mse': 0.04}


def _report(tmp_path, blessed=True, baseline=None, failures=(), same=False,
            skipped=None):
  overall = {evaluation_lib.CANDIDATE: CANDIDATE}
  if baseline:
    overall[evaluation_lib.BASELINE] = baseline
  metrics = {'overall': overall, 'by_class': {}, 'blessed': blessed,
             report_lib.NOISY_INPUT: NOISY, report_lib.FAILURES: list(failures),
             report_lib.SPLIT_SIZES: {'train': 80, 'eval': 30, 'test': 20},
             report_lib.BASELINE_IS_CANDIDATE: same}
  if skipped is not None:
    metrics[report_lib.SKIPPED_IMAGES] = skipped
  directory = tmp_path / 'report'
  directory.mkdir()
  (directory / report_lib.METRICS_FILENAME).write_text(json.dumps(metrics))
  return ExecutionRecord('VisualReport', 'COMPLETE', {'report': str(directory)})


def _pusher(**properties):
  return ExecutionRecord('Pusher', 'COMPLETE', {'pushed_model': '/x'},
                         output_properties={'pushed_model': properties})


def test_a_pushed_run_names_its_version_figures_and_next_command(tmp_path):
  records = [ExecutionRecord('Trainer', 'COMPLETE', {'model': '/m'}),
             _report(tmp_path),
             _pusher(pushed=1, pushed_destination='/s/17', pushed_version='17')]
  lines = run_outcome.verdict_lines(run_outcome.from_records(records),
                                    'dae-pipeline report')
  assert lines == [
      'verdict: blessed; pushed as version 17 to /s/17',
      'test set (20 images): PSNR 21.44 dB, SSIM 0.8123',
      '  noisy input: PSNR 13.98 dB, SSIM 0.2987; last blessed model: none '
      '(nothing served yet)',
      "next: dae-pipeline report   (this run's metrics and pictures as one "
      'HTML page)']


def test_a_run_not_blessed_names_each_failed_gate_and_pushes_nothing(tmp_path):
  failure = 'psnr 15.2 dB, needs >= 16 dB (thresholds.min_psnr_db)'
  records = [_report(tmp_path, blessed=False, baseline=BASELINE,
                     failures=[failure])]
  lines = run_outcome.verdict_lines(run_outcome.from_records(records), 'r')
  assert lines[0] == 'verdict: NOT blessed; nothing pushed'
  assert lines[1] == f'  failed: {failure}'
  assert lines[3].endswith('last blessed model: PSNR 21.10 dB, SSIM 0.8000')


def test_a_rerun_says_its_baseline_is_the_same_model_already_served(tmp_path):
  records = [_report(tmp_path, baseline=CANDIDATE, same=True),
             _pusher(pushed=0, already_served_version='17')]
  lines = run_outcome.verdict_lines(run_outcome.from_records(records), 'r')
  assert lines[0] == ('verdict: blessed; already served as version 17 (the same '
                      'model; not pushed again)')
  assert lines[2].endswith('last blessed model: the same model (nothing new was '
                           'trained)')


def test_a_blessed_model_that_failed_the_serving_check_says_why_it_was_not_pushed(
    tmp_path):
  why = "signature 'serving_default' output 'output' has non-finite values (NaN/inf)"
  records = [_report(tmp_path),
             ExecutionRecord('ServingCheck', 'COMPLETE', {'blessing': '/b'},
                             output_properties={'blessing': {
                                 'blessed': 0, 'failure': why}}),
             _pusher(pushed=0)]
  lines = run_outcome.verdict_lines(run_outcome.from_records(records), 'r')
  assert lines[0] == f'verdict: blessed; NOT pushed: the serving check failed: {why}'


def test_a_passed_serving_check_changes_nothing(tmp_path):
  records = [_report(tmp_path),
             ExecutionRecord('ServingCheck', 'COMPLETE', {'blessing': '/b'},
                             output_properties={'blessing': {
                                 'blessed': 1, 'failure': ''}}),
             _pusher(pushed=1, pushed_destination='/s/17', pushed_version='17')]
  outcome = run_outcome.from_records(records)
  assert outcome.serving_failure is None
  assert run_outcome.push_line(outcome) == 'pushed as version 17 to /s/17'


def test_a_run_whose_serving_dir_changed_before_its_push_says_why(tmp_path):
  reason = '/s serves version 18 now, not nothing as when ... evaluated'
  records = [_report(tmp_path),
             _pusher(pushed=0, not_pushed_reason=reason, served_changed_to='18')]
  lines = run_outcome.verdict_lines(run_outcome.from_records(records), 'r')
  assert lines[0] == f'verdict: blessed; not pushed: {reason}'


def test_a_run_that_stopped_before_its_report_has_no_outcome():
  assert run_outcome.from_records(
      [ExecutionRecord('Trainer', 'FAILED', {'model': '/m'})]) is None


def test_bad_images_skipped_by_the_example_gen_are_counted_in_the_verdict(tmp_path):
  outcome = run_outcome.from_records([_report(tmp_path, skipped=3)])
  assert outcome.skipped_images == 3
  assert ('  data: 3 bad image(s) of the folder skipped (data.max_bad_images; '
          'the log names each)') in run_outcome.verdict_lines(outcome, 'x')


def test_a_version_of_unix_seconds_is_shown_with_its_time(tmp_path):
  outcome = run_outcome.from_records([
      _report(tmp_path),
      _pusher(pushed=1, pushed_destination='/s/1796605000',
              pushed_version='1796605000')])
  assert run_outcome.push_line(outcome) == (
      'pushed as version 1796605000 (2026-12-07 00:56 UTC) to /s/1796605000')


def test_closing_lines_say_why_there_is_no_verdict(tmp_path):
  assert run_outcome.closing_lines(
      [ExecutionRecord('Trainer', 'FAILED', {})], 'r') == [
          'verdict: none (the run stopped before its evaluation)']
  gone = ExecutionRecord('VisualReport', 'CACHED', {'report': str(tmp_path / 'gone')})
  [line] = run_outcome.closing_lines([gone], 'r')
  assert line.startswith('verdict: unavailable (') and 'gone' in line
  records = [_report(tmp_path), _pusher(pushed=1, pushed_destination='/s/17',
                                        pushed_version='17')]
  assert run_outcome.closing_lines(records, 'r') == run_outcome.verdict_lines(
      run_outcome.from_records(records), 'r')
