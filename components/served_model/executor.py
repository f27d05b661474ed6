"""Executor of ServedModel: the newest complete version of the serving dir,
copied into a TFX Model artifact (``<uri>/Format-Serving``), or an empty
artifact when nothing is served yet.

The copy makes the baseline an ordinary Model artifact that every
orchestrator hands on the same way (local, Kubeflow's launcher, Vertex);
the served model is small (a few MB). Whether the artifact holds a model is
decided by its files (`serving_dir.holds_model`), not by metadata, which orchestrators
translate differently.
"""

from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.common import names
from components.common import serving_dir

MODEL_KEY = 'model'
SERVING_DIR_KEY = names.SERVING_DIR_PARAMETER
# What a runner found served when the run started (serving_dir.
# served_fingerprint); absent: take what is served when the node runs.
EXPECTED_FINGERPRINT_KEY = 'expected_fingerprint'
# Custom properties recorded on the artifact, for people and MLMD queries.
SERVED_VERSION_PROPERTY = names.SERVED_VERSION_PROPERTY
SERVED_PATH_PROPERTY = names.SERVED_PATH_PROPERTY
SERVED_FINGERPRINT_PROPERTY = names.SERVED_FINGERPRINT_PROPERTY


class ServedModelChanged(RuntimeError):
  """The serving dir no longer serves what the run found when it started."""


class Executor(base_executor.BaseExecutor):
  """Copies the served model into the output Model artifact."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    del input_dict  # No inputs: the serving dir is outside the pipeline.
    model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
    base_directory = exec_properties[SERVING_DIR_KEY]
    version = serving_dir.newest_complete_version(base_directory)
    model.set_string_custom_property(SERVED_VERSION_PROPERTY, version or '')
    if version is None:
      found = serving_dir.NOTHING_SERVED
      logging.info('Nothing is served under %s yet: the Evaluator gates on the '
                   'value thresholds alone', base_directory)
    else:
      served_path = serving_dir.version_path(base_directory, version)
      copy = path_utils.serving_model_dir(model.uri)
      serving_dir.copy_tree(served_path, copy)
      model.set_string_custom_property(SERVED_PATH_PROPERTY, served_path)
      # Of the copy: what the Evaluator will read.
      found = serving_dir.version_fingerprint(version, copy)
      logging.info('Baseline: version %s served from %s', version, served_path)
    model.set_string_custom_property(SERVED_FINGERPRINT_PROPERTY, found)
    expected = exec_properties.get(EXPECTED_FINGERPRINT_KEY)
    if expected is not None and found != expected:
      # The runner may serve this node from cache under `expected`: its
      # output must be exactly that model.
      raise ServedModelChanged(
          f'The serving dir {base_directory} changed after this run started: '
          f'it served {expected or "nothing"}, now {found or "nothing"} '
          '(another pipeline pushed?). Nothing was evaluated or pushed; run '
          'again to evaluate against what is served now.')
