"""Driver of TfdsExampleGen: fingerprints the data source before the cache.

TFX's file-based driver fingerprints the files matching the split patterns;
our patterns are TFDS split specs, not file globs. This driver fingerprints
what the TFDS builder will read instead: the SHA-256 of the four vendored
files, or the stock builder's name and version. The fingerprint becomes an
execution property, so a changed source file invalidates the cache.
"""

from typing import Iterable, Optional

from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import input_processor
from tfx.proto import example_gen_pb2
from tfx.proto import range_config_pb2

from components.tfds_example_gen import mnist_source


class TfdsInputProcessor(input_processor.QueryBasedInputProcessor):
  """Span 0, no version, and a fingerprint of the TFDS source."""

  def __init__(self, splits: Iterable[example_gen_pb2.Input.Split],
               range_config: Optional[range_config_pb2.RangeConfig],
               source_dir: Optional[str]):
    super().__init__(splits=splits, range_config=range_config)
    self._source_dir = source_dir

  def get_input_fingerprint(self, span: int,
                            version: Optional[int]) -> Optional[str]:
    return mnist_source.source_fingerprint(self._source_dir)


class TfdsDriver(example_gen_driver.Driver):
  """ExampleGen driver whose input processor fingerprints the TFDS source."""

  def get_input_processor(
      self,
      splits: Iterable[example_gen_pb2.Input.Split],
      range_config: Optional[range_config_pb2.RangeConfig] = None,
      input_base_uri: Optional[str] = None) -> input_processor.InputProcessor:
    return TfdsInputProcessor(splits, range_config, input_base_uri)
