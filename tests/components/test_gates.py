"""The push gate's table (components/common/gates.py) and the EvalConfig and
failure lines built from it."""

import dataclasses

from google.protobuf import text_format
import pytest
from tensorflow_model_analysis.proto import config_pb2

from components.common import evaluation
from components.common import gates
from components.common import metrics
from components.evaluator import eval_config as eval_config_lib
from components.evaluator import settings
import pipeline_config

# make_eval_config(ThresholdSpec()) as it was written by hand, gate by gate,
# before the gates became rows of one table: the table must build it alike.
DEFAULT_EVAL_CONFIG = """\
model_specs {
  signature_name: "serving_examples"
  label_key: "clean"
  prediction_key: "output"
}
slicing_specs {
}
slicing_specs {
  feature_keys: "label"
}
metrics_specs {
  metrics {
    class_name: "PSNR"
    module: "components.common.metrics"
    per_slice_thresholds {
      slicing_specs {
      }
      threshold {
        value_threshold {
          lower_bound {
            value: 24.0
          }
        }
        change_threshold {
          absolute {
            value: -0.0
          }
          direction: HIGHER_IS_BETTER
        }
      }
    }
    per_slice_thresholds {
      slicing_specs {
        feature_keys: "label"
      }
      threshold {
        change_threshold {
          absolute {
            value: -0.5
          }
          direction: HIGHER_IS_BETTER
        }
      }
    }
  }
  metrics {
    class_name: "MSE"
    module: "components.common.metrics"
    per_slice_thresholds {
      slicing_specs {
      }
      threshold {
        value_threshold {
          upper_bound {
            value: 0.004
          }
        }
      }
    }
  }
  metrics {
    class_name: "MeanImagePSNR"
    module: "components.common.metrics"
  }
  metrics {
    class_name: "SSIM"
    module: "components.common.metrics"
  }
}
options {
  include_default_metrics {
  }
}
"""


def test_the_table_builds_the_eval_config_the_hand_written_one_did():
  built = eval_config_lib.make_eval_config(settings.ThresholdSpec())
  assert text_format.MessageToString(built) == DEFAULT_EVAL_CONFIG


def test_a_threshold_set_to_none_turns_its_gate_off():
  built = eval_config_lib.make_eval_config(
      settings.ThresholdSpec(max_class_psnr_drop_db=None))
  expected = text_format.Parse(DEFAULT_EVAL_CONFIG, config_pb2.EvalConfig())
  psnr = expected.metrics_specs[0].metrics[0]
  del psnr.per_slice_thresholds[1]  # The per-class gate.
  assert built == expected


def test_every_gate_is_a_threshold_setting_of_a_computed_metric():
  fields = {field.name for field in dataclasses.fields(settings.ThresholdSpec)}
  assert {gate.field for gate in gates.GATES} == fields
  assert {gate.metric_class for gate in gates.GATES} <= set(eval_config_lib.METRICS)
  for gate in gates.GATES:  # The key TFMA reports is the metric's name.
    assert getattr(metrics, gate.metric_class)().name == gate.metric_key
  # Each failure finds one row: no two gates share a metric, slice and kind.
  keys = [(gate.metric_key, gate.per_class, gate.is_change) for gate in gates.GATES]
  assert len(set(keys)) == len(keys)


def _failure(metric_key, is_diff, value, threshold, class_label=None):
  """A ValidationResult failing one threshold of the default config."""
  from tensorflow_model_analysis.proto import validation_result_pb2  # pylint: disable=g-import-not-at-top
  result = validation_result_pb2.ValidationResult()
  per_slice = result.metric_validations_per_slice.add()
  if class_label is not None:
    per_slice.slice_key.single_slice_keys.add(column='label', int64_value=class_label)
  failure = per_slice.failures.add()
  failure.metric_key.name = metric_key
  failure.metric_key.is_diff = is_diff
  failure.metric_value.double_value.value = value
  failure.metric_threshold.CopyFrom(threshold)
  return result


@pytest.mark.parametrize('gate', gates.GATES, ids=lambda gate: gate.field)
def test_each_gate_s_failure_names_its_setting(gate):
  config = eval_config_lib.make_eval_config(pipeline_config.load_profile().thresholds)
  [metric] = [metric for metric in config.metrics_specs[0].metrics
              if metric.class_name == gate.metric_class]
  [threshold] = [per_slice.threshold for per_slice in metric.per_slice_thresholds
                 if (list(per_slice.slicing_specs) == [eval_config_lib.PER_CLASS])
                 == gate.per_class]
  [line] = evaluation.describe_failures(_failure(
      gate.metric_key, gate.is_change, -1.0, threshold,
      3 if gate.per_class else None))
  assert line.endswith(f'(thresholds.{gate.field})'), line
  assert line.startswith('class 3: ' if gate.per_class else gate.metric_key), line
