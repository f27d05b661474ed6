"""The push gate, through the pipeline's Evaluator executor (TFX's, TFMA on Beam).

Tiny hand-made data and SavedModels exported like the Trainer's, so the
metrics are known in advance: the clean images plus a constant 0.1 are the
"noisy" input, and a "denoiser" that subtracts (nearly) 0.1 is nearly
perfect. A marked class lets a model be bad on that class alone. MNIST's
shape and classes by default; small colour images of two named classes, and
grey ones without labels, show the gate reads the examples' DatasetInfo.
"""

import base64
import dataclasses
import html
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import path_utils
from tfx.utils import proto_utils

from components.common import dataset_info
from components.common import gates
from components.common import names
from components.common import noise
from components.common import progress
from components.evaluator import executor as evaluator_executor
from components.evaluator import eval_config as eval_config_lib
from components.evaluator import settings as evaluator_settings
from components.common import evaluation as evaluation_lib
from components.common import saved_model
import pipeline_config

pytestmark = pytest.mark.slow

OFFSET = 0.1  # The "noise": a constant brightening.
MARKED_CLASS = 3  # Its noisy images carry a marker pixel.
EXAMPLES_PER_CLASS = 4
MNIST = dataset_info.DatasetInfo('mnist', (28, 28, 1), [str(digit) for digit in range(10)])
# No side under SSIM's 11-pixel window (metrics.gaussian_window_matrix).
PETS = dataset_info.DatasetInfo('pets', (12, 14, 3), ('cat', 'dog'))
PETS_MARKED = 1  # 'dog'.
UNLABELLED = dataset_info.DatasetInfo('flat_folder', (11, 11, 1))
NOISE = noise.NoiseSpec(kind='salt_and_pepper', amount=0.2)


def _write_examples(uri, info=MNIST, marked=MARKED_CLASS):
  """NoiseTransform's test split: EXAMPLES_PER_CLASS images of each class
  (10 x as many, unlabelled, for a dataset without labels), the first pixel
  of the `marked` class's noisy images white."""
  rng = np.random.default_rng(0)
  split_dir = os.path.join(uri, 'Split-test')
  os.makedirs(split_dir)
  channels = info.image_shape[2]
  classes = range(len(info.class_names)) if info.labeled else [None] * 10
  with tf.io.TFRecordWriter(os.path.join(split_dir, 'data.gz'), 'GZIP') as writer:
    for label in classes:
      for _ in range(EXAMPLES_PER_CLASS):
        clean = rng.uniform(0.2, 0.8, info.pixels).astype(np.float32)
        clean[:channels] = 0.0
        noisy = clean + OFFSET
        if label is not None and label == marked:
          noisy[:channels] = 1.0
        feature = {
            names.NOISY: tf.train.Feature(float_list=tf.train.FloatList(value=noisy)),
            names.CLEAN: tf.train.Feature(float_list=tf.train.FloatList(value=clean)),
        }
        if label is not None:
          feature[names.LABEL] = tf.train.Feature(
              int64_list=tf.train.Int64List(value=[label]))
        writer.write(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
  examples = standard_artifacts.Examples()
  examples.uri = uri
  examples.split_names = json.dumps(['test'])
  dataset_info.record(examples, info)
  return examples


def _model(uri, normal_shift, marked_shift, image_shape=MNIST.image_shape):
  """A SavedModel adding `normal_shift` to each image, `marked_shift` to the
  marked class's images; for images of any size, trained on `image_shape`,
  as the Trainer exports a fully convolutional model."""

  def shift(images):
    marked = keras.ops.greater(images[:, :1, :1, :1], 0.99)
    return keras.ops.where(marked, images + marked_shift, images + normal_shift)

  inputs = keras.Input((None, None, image_shape[-1]))
  model = keras.Model(inputs, keras.layers.Lambda(shift)(inputs))
  saved_model.export_saved_model(model, path_utils.serving_model_path(uri),
                                 trained_shape=image_shape)
  artifact = standard_artifacts.Model()
  artifact.uri = uri
  return artifact


def _evaluate(tmp_path, candidate_shifts, baseline_shifts, split_sizes=None,
              info=MNIST, marked=MARKED_CLASS, **threshold_values):
  """(blessed, {(slice, metric) that failed}) of the Evaluator's verdict."""
  artifacts = _run_evaluator(tmp_path, candidate_shifts, baseline_shifts,
                             split_sizes, info, marked, **threshold_values)
  validation = tfma.load_validation_result(artifacts['evaluation'].uri)
  failures = {(tuple(key.int64_value for key in failures.slice_key.single_slice_keys)
                or 'overall', failure.metric_key.name)
              for failures in validation.metric_validations_per_slice
              for failure in failures.failures}
  return artifacts['blessing'].get_int_custom_property('blessed'), failures


def _run_evaluator(tmp_path, candidate_shifts, baseline_shifts, split_sizes,
                   info, marked, **threshold_values):
  """Runs the Evaluator's executor; returns its artifacts, in and out."""
  tmp_path.mkdir(parents=True, exist_ok=True)
  examples = _write_examples(str(tmp_path / 'examples'), info, marked)
  if split_sizes is not None:  # As NoiseTransform records them.
    progress.record_split_sizes(examples, split_sizes)
  candidate = _model(str(tmp_path / 'candidate'), *candidate_shifts,
                     image_shape=info.image_shape)
  if baseline_shifts is None:  # Nothing served: ServedModel's empty artifact.
    baseline = standard_artifacts.Model()
    baseline.uri = str(tmp_path / 'baseline')
    os.makedirs(baseline.uri)
  else:
    baseline = _model(str(tmp_path / 'baseline'), *baseline_shifts,
                      image_shape=info.image_shape)
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = str(tmp_path / 'evaluation')
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  thresholds = evaluator_settings.ThresholdSpec(
      **{'min_psnr_db': 0.0, 'max_mse': 1.0, **threshold_values})
  evaluator_executor.Executor().Do(
      {standard_component_specs.EXAMPLES_KEY: [examples],
       standard_component_specs.MODEL_KEY: [candidate],
       standard_component_specs.BASELINE_MODEL_KEY: [baseline]},
      {standard_component_specs.EVALUATION_KEY: [evaluation],
       standard_component_specs.BLESSING_KEY: [blessing]},
      {standard_component_specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(
          eval_config_lib.make_eval_config(thresholds)),
       standard_component_specs.EXAMPLE_SPLITS_KEY: json.dumps(['test'])})
  return {'examples': examples, 'model': candidate, 'baseline_model': baseline,
          'evaluation': evaluation, 'blessing': blessing}


def test_candidate_above_the_floors_but_worse_than_the_baseline_is_not_blessed(tmp_path):
  # Baseline: off by 0.02 everywhere (34 dB); candidate: off by 0.05 (26 dB).
  blessed, failures = _evaluate(tmp_path, (-OFFSET + 0.05, -OFFSET + 0.05),
                                (-OFFSET + 0.02, -OFFSET + 0.02))
  assert blessed == 0
  assert ('overall', 'psnr') in failures


def test_candidate_better_overall_but_worse_on_one_class_is_not_blessed(tmp_path):
  # Candidate: 0.01 off on nine digits, 0.3 off on the marked one; baseline:
  # 0.1 off everywhere. Overall the candidate wins (20.4 vs 20.0 dB).
  blessed, failures = _evaluate(tmp_path, (-OFFSET + 0.01, 0.2), (0.0, 0.0),
                                max_class_psnr_drop_db=0.5)
  assert blessed == 0
  assert failures == {((MARKED_CLASS,), 'psnr')}


def test_without_the_per_class_gate_that_candidate_is_blessed(tmp_path):
  blessed, failures = _evaluate(tmp_path, (-OFFSET + 0.01, 0.2), (0.0, 0.0),
                                max_class_psnr_drop_db=None)
  assert (blessed, failures) == (1, set())


def test_a_candidate_as_good_as_the_baseline_on_every_class_is_blessed(tmp_path):
  blessed, failures = _evaluate(tmp_path, (-OFFSET + 0.01, -OFFSET + 0.01),
                                (0.0, 0.0))
  assert (blessed, failures) == (1, set())


def test_the_value_floors_gate_the_whole_split_not_each_class(tmp_path):
  # The marked class alone is far below a 25 dB floor (10.5 dB); the whole
  # split is above it (20.3 dB): the floors are about the overall figure.
  blessed, failures = _evaluate(tmp_path, (-OFFSET + 0.01, 0.2), (0.0, 0.0),
                                min_psnr_db=20.0, max_class_psnr_drop_db=None)
  assert (blessed, failures) == (1, set())
  blessed, failures = _evaluate(tmp_path / 'higher', (-OFFSET + 0.01, 0.2), (0.0, 0.0),
                                min_psnr_db=21.0, max_class_psnr_drop_db=None)
  assert (blessed, failures) == (0, {('overall', 'psnr')})


def test_with_nothing_served_the_floors_alone_gate(tmp_path):
  # 26 dB with no baseline: blessed above a 25 dB floor, not above 27 dB.
  blessed, failures = _evaluate(tmp_path, (-OFFSET + 0.05, -OFFSET + 0.05), None,
                                min_psnr_db=25.0)
  assert (blessed, failures) == (1, set())
  blessed, failures = _evaluate(tmp_path / 'higher', (-OFFSET + 0.05, -OFFSET + 0.05),
                                None, min_psnr_db=27.0)
  assert (blessed, failures) == (0, {('overall', 'psnr')})


def test_the_evaluation_counts_its_examples_on_a_bar_with_their_total(tmp_path, capsys):
  count = 10 * EXAMPLES_PER_CLASS
  blessed, _ = _evaluate(tmp_path, (-OFFSET, -OFFSET), (0.0, 0.0),
                         split_sizes={'test': count, 'train': 999})
  assert blessed == 1  # The defaults still extract what the gate needs.
  err = capsys.readouterr().err
  assert f'evaluate: 100%' in err and f'{count}/{count}' in err
  # Without recorded sizes: a count, no total.
  _evaluate(tmp_path / 'unknown', (-OFFSET, -OFFSET), (0.0, 0.0))
  err = capsys.readouterr().err
  assert f'evaluate: {count} examples' in err and '%' not in err.split('evaluate:')[-1]


def test_expected_examples_sum_the_evaluated_splits_or_are_unknown():
  examples = standard_artifacts.Examples()
  splits = {standard_component_specs.EXAMPLE_SPLITS_KEY: json.dumps(['test', 'eval'])}
  assert evaluator_executor.expected_examples([examples], splits) is None
  progress.record_split_sizes(examples, {'test': 7, 'eval': 5, 'train': 100})
  assert evaluator_executor.expected_examples([examples], splits) == 12
  assert evaluator_executor.expected_examples([examples], {}) == 5  # TFX: 'eval'.
  progress.record_split_sizes(examples, {'test': 7})
  assert evaluator_executor.expected_examples([examples], splits) is None


def _described_failures(tmp_path, info=MNIST):
  return evaluation_lib.describe_failures(
      tfma.load_validation_result(str(tmp_path / 'evaluation')), info)


def test_each_failed_gate_is_described_with_its_numbers_and_config_field(tmp_path):
  # The per-class gate: the marked digit loses ~10 dB to the baseline.
  _evaluate(tmp_path / 'class', (-OFFSET + 0.01, 0.2), (0.0, 0.0),
            max_class_psnr_drop_db=0.5)
  [line] = _described_failures(tmp_path / 'class')
  assert line.startswith(f'class {MARKED_CLASS}: psnr -'), line
  assert line.endswith('dB against the last blessed model, more than the 0.5 dB '
                       'drop allowed (thresholds.max_class_psnr_drop_db)'), line
  # The overall change gate and both value floors at once.
  _evaluate(tmp_path / 'all', (-OFFSET + 0.05, -OFFSET + 0.05),
            (-OFFSET + 0.02, -OFFSET + 0.02), min_psnr_db=30.0, max_mse=0.001,
            max_class_psnr_drop_db=None)
  lines = sorted(_described_failures(tmp_path / 'all'))
  assert len(lines) == 3, lines
  assert lines[0] == 'mse 0.002615, needs <= 0.001 (thresholds.max_mse)', lines
  assert lines[1] == ('psnr -7.12 dB against the last blessed model, more '
                             'than the 0 dB drop allowed (thresholds.max_psnr_drop_db)'), lines
  assert lines[2] == 'psnr 25.83 dB, needs >= 30 dB (thresholds.min_psnr_db)', lines


def _evaluate_with_default_thresholds(tmp_path, candidate_shifts, baseline_shifts):
  """As _evaluate, with every threshold at pipeline_config's default."""
  defaults = evaluator_settings.ThresholdSpec()
  return _evaluate(tmp_path, candidate_shifts, baseline_shifts,
                   **dataclasses.asdict(defaults))


def test_the_default_floors_and_overall_drop_gate_as_documented(tmp_path):
  # Candidate 0.064 off everywhere (23.75 dB overall), baseline 0.061 off
  # (24.16 dB): below both floors and worse than the baseline, while no class
  # loses more than 0.5 dB. The lines carry the bounds the Evaluator applied.
  blessed, _ = _evaluate_with_default_thresholds(
      tmp_path, (-OFFSET + 0.064,) * 2, (-OFFSET + 0.061,) * 2)
  assert blessed == 0
  lines = sorted(_described_failures(tmp_path))
  assert [line.rsplit('(', 1)[1] for line in lines] == [
      'thresholds.max_mse)', 'thresholds.max_psnr_drop_db)',
      'thresholds.min_psnr_db)'], lines
  assert 'needs <= 0.004 (' in lines[0]
  assert 'more than the 0 dB drop allowed' in lines[1]
  assert 'needs >= 24 dB (' in lines[2]


def test_the_per_class_gate_is_on_by_default_at_half_a_db(tmp_path):
  # Better overall (40 dB on nine digits), but the marked digit 0.67 dB below
  # the baseline's: not blessed by default; 0.27 dB below: blessed.
  blessed, _ = _evaluate_with_default_thresholds(
      tmp_path / 'worse', (-OFFSET + 0.01, -0.065), (-0.07, -0.07))
  assert blessed == 0
  [line] = _described_failures(tmp_path / 'worse')
  assert line.startswith(f'class {MARKED_CLASS}: psnr -0.6'), line
  assert 'more than the 0.5 dB drop allowed' in line
  blessed, _ = _evaluate_with_default_thresholds(
      tmp_path / 'within', (-OFFSET + 0.01, -0.068), (-0.07, -0.07))
  assert blessed == 1


# --- datasets other than MNIST ------------------------------------------------

def _slices(tmp_path):
  """The slices the evaluation computed: () overall, (label,) per class."""
  return {tuple(key.int64_value for key in metrics.slice_key.single_slice_keys)
          for metrics in tfma.load_metrics(str(tmp_path / 'evaluation'))}


def test_colour_classes_are_sliced_and_a_failure_is_named_by_class_name(tmp_path):
  blessed, failures = _evaluate(tmp_path, (-OFFSET + 0.01, 0.2), (0.0, 0.0),
                                info=PETS, marked=PETS_MARKED)
  # Half the images are dogs: the whole split is worse than the baseline too.
  assert blessed == 0
  assert failures == {((PETS_MARKED,), 'psnr'), ('overall', 'psnr')}
  assert _slices(tmp_path) == {(), (0,), (1,)}
  [line] = [line for line in _described_failures(tmp_path, PETS)
            if line.startswith('class ')]
  assert line.startswith('class dog: psnr -'), line
  assert line.endswith('(thresholds.max_class_psnr_drop_db)'), line


def test_unlabelled_examples_have_no_class_slices_and_the_values_still_gate(tmp_path):
  # A model bad on the "marked" images (none are marked here) would fail a
  # per-class gate; without labels there is none, and the default thresholds
  # still bless (~40 dB) or refuse (the 24 dB floor).
  defaults = dataclasses.asdict(evaluator_settings.ThresholdSpec())
  blessed, failures = _evaluate(tmp_path / 'good', (-OFFSET + 0.01, 0.2), (0.0, 0.0),
                                info=UNLABELLED, **defaults)
  assert (blessed, failures) == (1, set())
  assert _slices(tmp_path / 'good') == {()}
  blessed, failures = _evaluate(tmp_path / 'bad', (-OFFSET + 0.064,) * 2, None,
                                info=UNLABELLED, **defaults)
  assert (blessed, failures) == (0, {('overall', 'psnr'), ('overall', 'mse')})


def test_the_eval_config_is_completed_for_the_examples_dataset():
  config = eval_config_lib.make_eval_config(evaluator_settings.ThresholdSpec())
  pets = eval_config_lib.for_dataset(config, PETS)
  assert {json.loads(metric.config)['image_shape'] == [12, 14, 3]
          for metric in pets.metrics_specs[0].metrics} == {True}
  assert list(pets.slicing_specs) == [eval_config_lib.OVERALL, eval_config_lib.PER_CLASS]
  flat = eval_config_lib.for_dataset(config, UNLABELLED)
  assert list(flat.slicing_specs) == [eval_config_lib.OVERALL]
  assert [gate.slicing_specs[0] for metric in flat.metrics_specs[0].metrics
          for gate in metric.per_slice_thresholds] == [eval_config_lib.OVERALL] * 2
  assert len(config.slicing_specs) == 2  # A copy: the config itself is as it was.


@pytest.mark.parametrize('values', [
    {}, {'min_psnr_db': 18.5, 'max_mse': 0.01, 'max_psnr_drop_db': 0.25,
         'max_class_psnr_drop_db': None}])
def test_the_gate_bounds_read_back_from_the_eval_config_are_the_settings(values):
  thresholds = evaluator_settings.ThresholdSpec(**values)
  config = eval_config_lib.make_eval_config(thresholds)
  expected = {field: value for field, value in dataclasses.asdict(thresholds).items()
              if value is not None}
  assert gates.applied_bounds(config) == expected
  assert gates.applied_bounds(
      eval_config_lib.for_dataset(config, PETS)) == expected
  # Without labels, no per-class gate was applied, so none is shown.
  expected.pop('max_class_psnr_drop_db', None)
  assert gates.applied_bounds(
      eval_config_lib.for_dataset(config, UNLABELLED)) == expected


def _visual_report(tmp_path, info, marked):
  """The VisualReport component's function run on a real evaluation of
  `info`'s examples (candidate bad on the marked class): its metrics.json,
  its pictures and its HTML page (the file at the html_report's URI)."""
  from components.visual_report import component as report_component  # pylint: disable=g-import-not-at-top
  from components.visual_report import report as report_lib  # pylint: disable=g-import-not-at-top
  artifacts = _run_evaluator(tmp_path, (-OFFSET + 0.01, 0.2), (0.0, 0.0), None,
                             info, marked)
  # As NoiseTransform records the noise it added.
  noise.record_spec(artifacts['examples'], NOISE)
  report = report_component.DenoisingReport()
  report.uri = str(tmp_path / 'report')
  html_report = report_component.HtmlReport()
  html_report.uri = str(tmp_path / 'html_report')
  report_component.VisualReport.EXECUTOR_SPEC.executor_class._FUNCTION(  # pylint: disable=protected-access
      report=report, html_report=html_report, examples_per_class=2,
      split='test', **artifacts)
  with open(html_report.uri, encoding='utf-8') as page:
    return report_lib.load_report(report.uri) + (page.read(),)


def test_the_visual_report_names_the_classes_and_their_failures(tmp_path):
  metrics, images, page = _visual_report(tmp_path, PETS, PETS_MARKED)
  assert metrics['dataset']['class_names'] == ['cat', 'dog']
  assert sorted(metrics['by_class']['candidate']['psnr']) == ['0', '1']
  failures = [line for line in metrics['failures'] if line.startswith('class ')]
  assert [line.split(':')[0] for line in failures] == ['class dog'], metrics['failures']
  assert set(images) == {'grid.png', 'psnr_by_class.png'}
  # The bounds the Evaluator checked (_run_evaluator's), and the noise.
  assert metrics['thresholds'] == {'min_psnr_db': 0.0, 'max_mse': 1.0,
                                   'max_psnr_drop_db': 0.0,
                                   'max_class_psnr_drop_db': 0.5}
  assert metrics['noise'] == json.loads(NOISE.to_json())
  assert '<table id="gates">' in page and 'thresholds.max_class_psnr_drop_db' in page
  assert 'salt_and_pepper, amount 0.2' in page
  # The page the Kubeflow UIs show: the verdict, its failed gate, the metrics
  # table, and the two pictures inline (nothing it would fetch).
  assert 'Verdict: not blessed' in page and html.escape(failures[0]) in page
  assert '<table id="metrics">' in page and '<table id="classes">' in page
  assert re.findall(r'(?:src|href)="([^"]*)"', page) == [
      'data:image/png;base64,' + base64.b64encode(images[name]).decode()
      for name in ('psnr_by_class.png', 'grid.png')]


def test_the_visual_report_of_unlabelled_examples_has_no_classes(tmp_path):
  metrics, images, _ = _visual_report(tmp_path, UNLABELLED, None)
  assert metrics['dataset']['class_names'] == []
  assert metrics['by_class'] == {} and metrics['failures'] == []
  assert 'max_class_psnr_drop_db' not in metrics['thresholds']  # Not applied.
  assert metrics['blessed'] is True
  assert set(images) == {'grid.png'}


def test_a_served_model_of_another_dataset_is_refused_naming_both_shapes(tmp_path):
  served = _model(str(tmp_path / 'served'), 0.0, 0.0, image_shape=MNIST.image_shape)
  served.set_string_custom_property('served_version', '3')
  with pytest.raises(evaluator_executor.BaselineOfAnotherDataset,
                     match=r'the served model \(version 3\) takes 28x28x1 images '
                     r'but the pets examples are 12x14x3: give this dataset a '
                     r'serving dir'):
    evaluator_executor.check_baseline_takes_the_examples(served, PETS)
  evaluator_executor.check_baseline_takes_the_examples(served, MNIST)  # Same shape.


# --- the split the pipeline's Evaluator reads ---------------------------------

def _add_split(examples, split, offset):
  """A split of MNIST-shaped labelled examples whose noise is `offset`,
  beside the artifact's others."""
  rng = np.random.default_rng(1)
  split_dir = os.path.join(examples.uri, f'Split-{split}')
  os.makedirs(split_dir)
  with tf.io.TFRecordWriter(os.path.join(split_dir, 'data.gz'), 'GZIP') as writer:
    for label in range(len(MNIST.class_names)):
      for _ in range(EXAMPLES_PER_CLASS):
        clean = rng.uniform(0.2, 0.8, MNIST.pixels).astype(np.float32)
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            names.NOISY: tf.train.Feature(float_list=tf.train.FloatList(
                value=clean + offset)),
            names.CLEAN: tf.train.Feature(float_list=tf.train.FloatList(
                value=clean)),
            names.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(
                value=[label])),
        })).SerializeToString())
  examples.split_names = json.dumps(
      sorted(json.loads(examples.split_names) + [split]))


def test_the_pipeline_s_evaluator_gates_on_the_test_split_not_the_train_split(tmp_path):
  # The candidate removes the test split's noise (0.1) but not the train
  # split's (0.5): 40 dB on `test`, 8 dB on `train`, far under the smoke
  # profile's 16 dB floor. Run with the pipeline's own Evaluator settings, it
  # must be blessed.
  from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top
  dag = pipeline_module.create_pipeline(pipeline_config.load_profile('smoke'))
  evaluator = {node.id: node for node in dag.components}[names.EVALUATOR_NODE]
  examples = _write_examples(str(tmp_path / 'examples'))
  _add_split(examples, 'train', offset=0.5)
  candidate = _model(str(tmp_path / 'candidate'), -OFFSET + 0.01, -OFFSET + 0.01)
  nothing_served = standard_artifacts.Model()
  nothing_served.uri = str(tmp_path / 'baseline')
  os.makedirs(nothing_served.uri)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  evaluation = standard_artifacts.ModelEvaluation()
  evaluation.uri = str(tmp_path / 'evaluation')
  evaluator_executor.Executor().Do(
      {standard_component_specs.EXAMPLES_KEY: [examples],
       standard_component_specs.MODEL_KEY: [candidate],
       standard_component_specs.BASELINE_MODEL_KEY: [nothing_served]},
      {standard_component_specs.EVALUATION_KEY: [evaluation],
       standard_component_specs.BLESSING_KEY: [blessing]},
      {key: value for key, value in evaluator.exec_properties.items()
       if value is not None})
  assert blessing.get_int_custom_property('blessed') == 1, (
      _described_failures(tmp_path))
