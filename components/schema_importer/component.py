"""SchemaImporter: imports a curated schema, its text carried in the pipeline spec.

TFX's ImportSchemaGen takes a path, and its cache key holds only that path:
an edited schema at the same path is served from cache and the old schema
keeps being enforced. This component takes the schema's *text* as its
execution property (read from the file when the pipeline is built), so the
cache key is the content, and a compiled pipeline (Kubeflow) needs no file
at a particular path in its container.
"""

import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils

SCHEMA_FILENAME = 'schema.pbtxt'


class SchemaTextError(ValueError):
  """The schema text does not parse as a tensorflow_metadata Schema."""


def parse_schema(text: str, source: str) -> schema_pb2.Schema:
  """Parses text-format Schema, naming `source` in the error."""
  try:
    return text_format.Parse(text, schema_pb2.Schema())
  except text_format.ParseError as error:
    raise SchemaTextError(f'{source}: not a valid Schema: {error}') from None


def read_schema_text(path: str) -> str:
  """Reads and checks a schema file, when the pipeline is built."""
  with open(path, encoding='utf-8') as schema_file:
    text = schema_file.read()
  parse_schema(text, path)
  return text


@component
def SchemaImporter(  # pylint: disable=invalid-name
    schema: OutputArtifact[standard_artifacts.Schema],
    schema_text: Parameter[str],
    schema_source: Parameter[str] = ''):
  """Writes the schema text, checked, as the Schema artifact.

  Args:
    schema: The output Schema artifact.
    schema_text: Text-format tensorflow_metadata Schema.
    schema_source: Where the text came from (for messages and lineage).
  """
  proto = parse_schema(schema_text, schema_source or 'schema_text')
  io_utils.write_pbtxt_file(os.path.join(schema.uri, SCHEMA_FILENAME), proto)
