"""What the components' settings types share (NoiseSpec, TrainingSpec).

Each is a frozen dataclass defining its settings once; the CLI's
configuration reuses them whole, naming a refused field `<section>.<field>`.
"""

import dataclasses
import json


class InvalidSetting(ValueError):
  """A setting is invalid; `field` names it, `reason` says why."""

  KIND = 'component'  # Which settings, in the message.

  def __init__(self, field: str, reason: str):
    super().__init__(f'{self.KIND} setting {field!r}: {reason}')
    self.field = field
    self.reason = reason


class JsonSpec:
  """JSON of a settings dataclass, for the component properties that carry it."""

  def to_json(self) -> str:
    """The settings as JSON (sorted keys: the same settings, the same text)."""
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_json(cls, text: str):
    """The settings `to_json` wrote (validated again; absent fields: defaults)."""
    return cls(**json.loads(text))
