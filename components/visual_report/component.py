"""VisualReport: the pictures of every run, written next to its evaluation.

Denoises the first test images of each class with the Trainer's SavedModel
and writes a DenoisingReport artifact: ``grid.png`` (one row per class,
named by the dataset's class names: clean / noisy / denoised, in colour for
colour images), ``psnr_by_class.png`` (TFMA's per-class PSNR, beside the last
blessed model's when the run had one) and ``metrics.json`` (the evaluation's
overall and per-class metrics, whether it blessed, the dataset). The
dataset is the examples' DatasetInfo; one without labels gets a few rows of
images and no per-class chart. `dae-pipeline report` turns the newest one
into an HTML page; the same page, without what only MLMD knows (the push),
is the second output, an HtmlReport that the Kubeflow Pipelines and Vertex
AI UIs show.
"""

import json
import os

from absl import logging
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.common import names
from components.visual_report import report as report_lib



class DenoisingReport(types.Artifact):
  """A directory with grid.png, psnr_by_class.png and metrics.json."""
  # namespace.Name: the form Kubeflow Pipelines v2 requires of custom types.
  TYPE_NAME = 'mnist_dae.DenoisingReport'


class HtmlReport(types.Artifact):
  """The report as one self-contained HTML page: the file at the URI itself,
  not a directory, as KFP's own HTML artifacts (kfp.dsl.HTML) are."""
  # KFP's HTML type, which the KFP v2 UI (frontend/src/components/viewers/
  # MetricsVisualizations.tsx, `filterLinkedArtifactsByType('system.HTML')`)
  # and Vertex AI render. TFX's compiler titles a custom type by its TYPE_NAME
  # (tfx/orchestration/kubeflow/v2/compiler_utils.py, get_artifact_schema);
  # pipeline/kubeflow/compiler.py makes it KFP's schemaTitle and
  # pipeline/kubeflow/entrypoint.py maps it back to this class.
  TYPE_NAME = 'system.HTML'


@component
def VisualReport(  # pylint: disable=invalid-name
    model: InputArtifact[standard_artifacts.Model],
    baseline_model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: InputArtifact[standard_artifacts.ModelBlessing],
    report: OutputArtifact[DenoisingReport],
    html_report: OutputArtifact[HtmlReport],
    examples_per_class: Parameter[int] = 3,
    split: Parameter[str] = 'test') -> None:
  """Writes the run's pictures and metrics (see the module docstring)."""
  # Heavy imports stay inside: TFX imports this module to build the DAG.
  from components.common import dataset_info  # pylint: disable=g-import-not-at-top
  from components.common import examples as examples_lib  # pylint: disable=g-import-not-at-top
  from components.common import saved_model  # pylint: disable=g-import-not-at-top
  from components.common import progress  # pylint: disable=g-import-not-at-top
  from components.common import serving_dir  # pylint: disable=g-import-not-at-top
  from components.common import evaluation as evaluation_lib  # pylint: disable=g-import-not-at-top
  from components.common import metrics  # pylint: disable=g-import-not-at-top
  from components.common import noise as noise_lib  # pylint: disable=g-import-not-at-top
  from components.common import gates  # pylint: disable=g-import-not-at-top
  from components.visual_report import page as page_lib  # pylint: disable=g-import-not-at-top
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  from tensorflow_model_analysis.writers import eval_config_writer  # pylint: disable=g-import-not-at-top
  info = dataset_info.recorded(examples)
  split_uri = artifact_utils.get_split_uri([examples], split)
  noisy, clean, labels = examples_lib.read_arrays([os.path.join(split_uri, '*')], info)
  # The reference every figure is read against: the noisy input itself.
  noisy_input = metrics.metrics_of_arrays(clean, noisy)
  if labels is None:  # No classes: rows of images in order.
    labels = report_lib.unlabelled_rows(len(clean), examples_per_class)
  # Keep only the examples drawn; selecting again among them numbers them
  # in drawing order.
  drawn = [index for indices in report_lib.select_examples(
      labels, examples_per_class).values() for index in indices]
  noisy, clean, labels = noisy[drawn], clean[drawn], labels[drawn]
  rows = report_lib.select_examples(labels, examples_per_class)
  candidate_path = path_utils.serving_model_path(model.uri)
  denoise = saved_model.load_denoiser(candidate_path)
  evaluation_metrics = evaluation_lib.read_evaluation(evaluation.uri)
  blessed = blessing.get_int_custom_property(names.MODEL_BLESSED_PROPERTY) == 1
  baseline_path = path_utils.serving_model_path(baseline_model.uri)
  # A re-run whose Trainer came from cache compares the served model with
  # itself: every change is 0 by construction, which the page must say.
  same_model = serving_dir.is_complete(baseline_path) and (
      serving_dir.directory_digest(baseline_path)
      == serving_dir.directory_digest(candidate_path))
  context = {
      report_lib.NOISY_INPUT: noisy_input,
      report_lib.FAILURES: evaluation_lib.describe_failures(
          tfma.load_validation_result(evaluation.uri), info),
      report_lib.SPLIT_SIZES: progress.split_sizes(examples),
      report_lib.SKIPPED_IMAGES: (
          examples.get_int_custom_property(names.SKIPPED_IMAGES_PROPERTY)
          if examples.has_custom_property(names.SKIPPED_IMAGES_PROPERTY) else 0),
      report_lib.BASELINE_IS_CANDIDATE: bool(same_model),
  }
  # The bounds the Evaluator checked: its EvalConfig, as TFMA wrote it beside
  # the evaluation (read back through the gate table, not the settings).
  applied, _, _, _ = eval_config_writer.load_eval_run(evaluation.uri)
  if applied is not None:
    context[report_lib.THRESHOLDS] = gates.applied_bounds(applied)
  noise_json = noise_lib.recorded_spec_json(examples)
  if noise_json:
    context[report_lib.NOISE] = json.loads(noise_json)
  paths = report_lib.write_report(report.uri, rows, clean, noisy,
                                  denoise(noisy), evaluation_metrics, blessed,
                                  context, info)
  page_lib.write_artifact_page(report.uri, html_report.uri)
  logging.info('VisualReport: wrote %s', ', '.join(paths + (html_report.uri,)))
