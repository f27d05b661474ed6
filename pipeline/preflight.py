"""What a local run checks before its first component, beyond its paths
(pipeline_config.check_paths): failures known at the start should not cost
the minutes of ingestion and training before a component finds them."""

from components.common import dataset_info
from components.common import saved_model
from components.common import serving_dir
from components.tfds_example_gen import preview
from components.tfds_example_gen import sources
import pipeline_config


def check_served_model_fits(config: pipeline_config.PipelineConfig) -> None:
  """Refuses a serving dir whose newest model takes images of another shape
  than the configured data's: the Evaluator could not take it as the
  baseline (check_baseline_takes_the_examples), and nothing of the run
  could be pushed there.

  Raises:
    pipeline_config.ConfigError: naming `serving_dir`, both shapes and what
      to do.
  """
  version = serving_dir.newest_complete_version(config.serving_dir)
  if version is None:
    return
  data_shape = preview.image_shape(config.data)
  if data_shape is None:
    return
  served_shape = saved_model.saved_model_image_shape(
      serving_dir.version_path(config.serving_dir, version))
  if data_shape.differs_from(served_shape):
    raise pipeline_config.ConfigError(
        'serving_dir', f'{config.serving_dir}: ' +
        dataset_info.served_model_of_another_shape(
            version, served_shape, sources.dataset_name(config.data),
            data_shape) + '; nothing was run')
