"""What the components' settings types share (DataSpec, NoiseSpec, TrainingSpec,
ThresholdSpec).

Each is a frozen dataclass, kept with the component that takes it, defining
its settings once; the CLI's configuration (pipeline_config) composes them
whole, naming a refused field `<section>.<field>`.
"""

import dataclasses
import json
from typing import Sequence, Union

from components.common import registry as registry_lib

# Metadata key of a field whose values are a fixed set of names (`option`).
OPTIONS = 'options'


class InvalidSetting(ValueError):
  """A setting is invalid; `field` names it, `reason` says why."""

  KIND = 'component'  # Which settings, in the message.

  def __init__(self, field: str, reason: str):
    super().__init__(f'{self.KIND} setting {field!r}: {reason}')
    self.field = field
    self.reason = reason

  @classmethod
  def require(cls, condition: bool, field: str, reason: str) -> None:
    """Raises this error for `field` unless `condition` holds: the one check
    every settings type uses."""
    if not condition:
      raise cls(field, reason)


Options = Union[registry_lib.Registry, Sequence[str]]


def option(default: str, options: Options) -> dataclasses.Field:
  """A field whose value must be one of `options`: a registry's names (whose
  descriptions document them: scripts/config_doc.py) or a tuple of names."""
  return dataclasses.field(default=default, metadata={OPTIONS: options})


def option_names(options: Options) -> Sequence[str]:
  """The names `options` allows, in order."""
  if isinstance(options, registry_lib.Registry):
    return options.names()
  return tuple(options)


def check_options(spec, error: type) -> None:
  """Raises `error` (an InvalidSetting) for the first `option` field of
  `spec` whose value is not one of its options, naming them."""
  for field in dataclasses.fields(spec):
    if OPTIONS in field.metadata:
      value, names = getattr(spec, field.name), option_names(field.metadata[OPTIONS])
      error.require(value in names, field.name,
                    f'{value!r} is not one of {", ".join(names)}')


class JsonSpec:
  """JSON of a settings dataclass, for the component properties that carry it."""

  def to_json(self) -> str:
    """The settings as JSON (sorted keys: the same settings, the same text)."""
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str):
    """The settings `to_json` wrote (validated again; absent fields: defaults)."""
    return cls(**json.loads(text))
