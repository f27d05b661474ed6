"""VisualReport: the pictures of every run, written next to its evaluation.

Denoises the first test digits of each class with the Trainer's SavedModel
and writes a DenoisingReport artifact: ``grid.png`` (one row per digit:
clean / noisy / denoised), ``psnr_by_digit.png`` (TFMA's per-digit PSNR,
beside the last blessed model's when the run had one) and ``metrics.json``
(the evaluation's overall and per-digit metrics, and whether it blessed).
`dae-pipeline report` turns the newest one into an HTML page.
"""

import os

from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.visual_report import report as report_lib

# Artifact and parameter keys.
MODEL_KEY = 'model'
EXAMPLES_KEY = 'examples'
EVALUATION_KEY = 'evaluation'
BLESSING_KEY = 'blessing'
REPORT_KEY = 'report'
EXAMPLES_PER_DIGIT_KEY = 'examples_per_digit'
SPLIT_KEY = 'split'

# ModelBlessing's custom property, as TFX's Evaluator writes it.
BLESSED_PROPERTY = 'blessed'
# Test records read to find examples of every digit.
MAX_RECORDS_SCANNED = 5000


class DenoisingReport(types.Artifact):
  """A directory with grid.png, psnr_by_digit.png and metrics.json."""
  # namespace.Name: the form Kubeflow Pipelines v2 requires of custom types.
  TYPE_NAME = 'mnist_dae.DenoisingReport'


@component
def VisualReport(  # pylint: disable=invalid-name
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: InputArtifact[standard_artifacts.ModelBlessing],
    report: OutputArtifact[DenoisingReport],
    examples_per_digit: Parameter[int] = 3,
    split: Parameter[str] = 'test') -> None:
  """Writes the run's pictures and metrics (see the module docstring)."""
  # Heavy imports stay inside: TFX imports this module to build the DAG.
  from components.trainer import data  # pylint: disable=g-import-not-at-top
  from components.trainer import export  # pylint: disable=g-import-not-at-top
  split_uri = artifact_utils.get_split_uri([examples], split)
  noisy, clean, labels = data.read_arrays([os.path.join(split_uri, '*')],
                                          limit=MAX_RECORDS_SCANNED)
  # Keep only the examples drawn; selecting again among them numbers them
  # in drawing order.
  drawn = [index for indices in report_lib.select_examples(
      labels, examples_per_digit).values() for index in indices]
  noisy, clean, labels = noisy[drawn], clean[drawn], labels[drawn]
  rows = report_lib.select_examples(labels, examples_per_digit)
  denoise = export.load_denoiser(path_utils.serving_model_path(model.uri))
  evaluation_metrics = report_lib.read_evaluation(evaluation.uri)
  blessed = blessing.get_int_custom_property(BLESSED_PROPERTY) == 1
  paths = report_lib.write_report(report.uri, rows, clean, noisy,
                                  denoise(noisy), evaluation_metrics, blessed)
  print(f'VisualReport: wrote {", ".join(paths)}', flush=True)
