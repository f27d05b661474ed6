"""SchemaImporter: TFX's ImportSchemaGen whose cache key covers the file's bytes.

ImportSchemaGen's only execution property is the schema's path, so an edited
schema at the same path is served from cache and the old schema keeps being
enforced. This subclass adds the SHA-256 of the file's content as a second
execution property; the stock executor ignores it, the cache does not.
"""

import hashlib

from tfx import types
from tfx.components.schema_gen.import_schema_gen import component as import_schema_gen
from tfx.dsl.components.base import base_component
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

# Artifact and parameter keys.
SCHEMA_KEY = standard_component_specs.SCHEMA_KEY
SCHEMA_FILE_KEY = standard_component_specs.SCHEMA_FILE_KEY
SCHEMA_SHA256_KEY = 'schema_sha256'


class SchemaImporterSpec(standard_component_specs.ImportSchemaGenSpec):
  PARAMETERS = {
      **standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
      SCHEMA_SHA256_KEY: ExecutionParameter(type=str),
  }


def file_sha256(path: str) -> str:
  with open(path, 'rb') as schema_file:
    return hashlib.sha256(schema_file.read()).hexdigest()


class SchemaImporter(import_schema_gen.ImportSchemaGen):
  """Copies a curated schema file into the pipeline as a Schema artifact."""

  SPEC_CLASS = SchemaImporterSpec

  def __init__(self, schema_file: str):  # pylint: disable=super-init-not-called
    """Creates the component; reads the file once to fingerprint it.

    Args:
      schema_file: Path of a text-format tensorflow_metadata Schema.
    """
    spec = SchemaImporterSpec(
        schema_file=schema_file,
        schema_sha256=file_sha256(schema_file),
        schema=types.Channel(type=standard_artifacts.Schema))
    base_component.BaseComponent.__init__(self, spec=spec)
