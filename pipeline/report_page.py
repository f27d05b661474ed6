"""`dae-pipeline report`: one run's outcome and pictures as one offline HTML page.

The page is the VisualReport's (components/visual_report/page.py), given
what only MLMD and the serving dir know: the run, its push
(`run_outcome.RunOutcome`, the same facts as the run's closing verdict) and
the serving dir's push records, charted as PSNR by version.
"""

import os
from typing import Optional

from absl import logging as absl_logging

from components.common import names
from components.visual_report import page as page_lib
from pipeline import run_outcome


def _history(serving_dir: Optional[str]) -> Optional[str]:
  """The serving dir's chart of PSNR by version (pipeline/version_chart.py);
  None without a serving dir or push records."""
  if not serving_dir or ('://' not in serving_dir and not os.path.isdir(
      os.path.join(serving_dir, names.PUSH_RECORDS_DIRNAME))):
    # Checked without TensorFlow's filesystems (whose import takes seconds):
    # a page of a run on a local disk without records stays quick.
    return None
  # The records are read through TensorFlow's filesystems (buckets too):
  # its start-up noise is filtered as for the other follow-up commands.
  from pipeline import console  # pylint: disable=g-import-not-at-top
  console.configure(console.NORMAL)
  from pipeline import version_chart  # pylint: disable=g-import-not-at-top
  from pipeline import versions  # pylint: disable=g-import-not-at-top
  try:
    chart = version_chart.psnr_chart_svg(versions.list_versions(serving_dir))
  except Exception as error:  # pylint: disable=broad-except
    # The chart is an extra: a serving dir that cannot be read (a bucket
    # without credentials) leaves it out, not the page.
    absl_logging.warning('No version history on the report page: %s cannot be '
                         'read (%s)', serving_dir, error)
    return None
  return chart or None


def write_page(outcome: run_outcome.RunOutcome, profile: str,
               output: str, serving_dir: Optional[str] = None) -> None:
  """Writes the report page of `outcome` to the local file `output`.

  The chart of versions is the serving dir's that the run itself used
  (`outcome.serving_dir`); `serving_dir` (the profile's) stands in for a run
  that recorded none. A run with its own serving dir (an image folder's,
  given --serving-dir) is charted from that one, not from the profile's.
  """
  page = page_lib.render_html(outcome, run_outcome.push_line(outcome),
                              run_id=outcome.run_id, profile=profile,
                              history_svg=_history(outcome.serving_dir
                                                   or serving_dir))
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as output_file:
    output_file.write(page)
