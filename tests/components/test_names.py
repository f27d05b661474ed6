"""The names that MLMD records are read by without importing TFX are TFX's own."""

from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.infra_validator import executor as infra_validator
from tfx.components.pusher import executor as tfx_pusher
from tfx.types import standard_component_specs

from components.common import names


def test_the_tfx_keys_the_cli_reads_are_the_ones_tfx_writes():
  assert names.MODEL_RUN_KEY == standard_component_specs.MODEL_RUN_KEY
  assert names.PUSHED_MODEL_KEY == standard_component_specs.PUSHED_MODEL_KEY
  assert names.INFRA_BLESSING_KEY == standard_component_specs.BLESSING_KEY


def test_the_tfx_properties_the_cli_reads_are_the_ones_tfx_writes():
  assert (names.PUSHED_PROPERTY, names.PUSHED_DESTINATION_PROPERTY,
          names.PUSHED_VERSION_PROPERTY) == (
              tfx_pusher._PUSHED_KEY, tfx_pusher._PUSHED_DESTINATION_KEY,  # pylint: disable=protected-access
              tfx_pusher._PUSHED_VERSION_KEY)  # pylint: disable=protected-access
  assert names.INFRA_BLESSED_PROPERTY == infra_validator._BLESSED_KEY  # pylint: disable=protected-access
  assert names.MODEL_BLESSED_PROPERTY == evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY


def test_names_imports_nothing():
  with open(names.__file__, encoding='utf-8') as source:
    assert not any(line.startswith(('import ', 'from '))
                   for line in source.read().splitlines())
