"""What a local run checks before its first component, beyond its paths
(pipeline_config.check_paths): failures known at the start should not cost
the minutes of ingestion and training before a component finds them."""

from typing import Optional

from components.common import dataset_info
from components.common import names
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


def _schema_image_values(schema_path: str) -> Optional[int]:
  """The values per image the schema's `image` feature must have; None when
  it does not say (no such feature, or no fixed shape)."""
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top
  with open(schema_path, encoding='utf-8') as schema_file:
    schema = text_format.Parse(schema_file.read(), schema_pb2.Schema())
  for feature in schema.feature:
    if feature.name == names.IMAGE and len(feature.shape.dim) == 1:
      return feature.shape.dim[0].size
  return None


def check_schema_fits(config: pipeline_config.PipelineConfig) -> None:
  """Refuses a curated schema whose images have another number of values
  than the configured data's: ExampleValidator would stop the run on every
  split, after ingestion and statistics.

  Raises:
    pipeline_config.ConfigError: naming `schema_path`, both sizes.
  """
  path = pipeline_config.curated_schema_path(config)
  data_shape = preview.image_shape(config.data) if path else None
  if data_shape is None:
    return
  expected = _schema_image_values(path)
  channels = (1, 3) if data_shape.channels is None else (data_shape.channels,)
  values = [data_shape.height * data_shape.width * count for count in channels]
  if expected is not None and expected not in values:
    raise pipeline_config.ConfigError(
        'schema_path', f'{path}: its {names.IMAGE!r} feature has {expected} '
        f'values an image, but the {sources.dataset_name(config.data)} images '
        f'are {data_shape} ({" or ".join(map(str, values))} values): curate a '
        'schema of this dataset (dae-pipeline schema writes one); nothing was '
        'run')


def check(config: pipeline_config.PipelineConfig) -> None:
  """Every pre-flight check of a whole run (see the module docstring)."""
  check_schema_fits(config)
  check_served_model_fits(config)
