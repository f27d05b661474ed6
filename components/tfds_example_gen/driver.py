"""Driver of TfdsExampleGen: fingerprints the data source before the cache.

TFX's file-based driver fingerprints the files matching the split patterns;
our splits are planned from the data settings, not file globs. This driver
fingerprints what the TFDS builder will read instead (sources.
source_fingerprint): the SHA-256 of the vendored files, an image folder's
paths and bytes, or the TFDS dataset's name. The fingerprint becomes an
execution property, so a changed source file invalidates the cache.
"""

from typing import Any, Dict, Iterable, Optional

from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import input_processor
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from components.tfds_example_gen import settings
from components.tfds_example_gen import sources



class TfdsInputProcessor(input_processor.QueryBasedInputProcessor):
  """Span 0, no version, and a fingerprint of the data source."""

  def __init__(self, splits: Iterable[example_gen_pb2.Input.Split],
               range_config: Optional[range_config_pb2.RangeConfig],
               data: settings.DataSpec):
    super().__init__(splits=splits, range_config=range_config)
    self._data = data

  def get_input_fingerprint(self, span: int,
                            version: Optional[int]) -> Optional[str]:
    return sources.source_fingerprint(self._data)


class TfdsDriver(example_gen_driver.Driver):
  """ExampleGen driver whose input processor fingerprints the data source."""

  _data: Optional[settings.DataSpec] = None

  def resolve_exec_properties(self, exec_properties: Dict[str, Any],
                              pipeline_info, component_info) -> Dict[str, Any]:
    # The input processor needs the data settings, not only input_base.
    self._data = settings.DataSpec.from_json(exec_properties[settings.DATA_SPEC_KEY])
    return super().resolve_exec_properties(exec_properties, pipeline_info,
                                           component_info)

  def get_input_processor(
      self,
      splits: Iterable[example_gen_pb2.Input.Split],
      range_config: Optional[range_config_pb2.RangeConfig] = None,
      input_base_uri: Optional[str] = None) -> input_processor.InputProcessor:
    return TfdsInputProcessor(splits, range_config, self._data)
