"""Named options defined once each: a registry of name, value and description.

A setting whose values are a registry's names (noise kinds, architectures)
accepts exactly the registered names, names them when it refuses one, and
documents each by its description (scripts/config_doc.py): adding an option
is one `register` call. Imports nothing heavy: the settings check names
without TensorFlow.
"""

from typing import Dict, Generic, NamedTuple, Tuple, TypeVar

Value = TypeVar('Value')


class Entry(NamedTuple):
  """One registered option: its value and a one-line description."""
  value: object
  description: str


class Registry(Generic[Value]):
  """Options by name, in order of registration.

  Attributes:
    what: What an option is, for errors ('architecture', 'noise kind').
    entries: {name: Entry}. A test that registers an option replaces this
      with a copy for its duration (monkeypatch), so that it does not leak.
  """

  def __init__(self, what: str):
    self.what = what
    self.entries: Dict[str, Entry] = {}

  def register(self, name: str, value: Value, description: str) -> Value:
    """Adds an option and returns its value.

    Raises:
      ValueError: an option of that name is registered already.
    """
    if name in self.entries:
      raise ValueError(f'{self.what} {name!r} is registered already')
    self.entries[name] = Entry(value, description)
    return value

  def names(self) -> Tuple[str, ...]:
    """The registered names, in order of registration."""
    return tuple(self.entries)

  def descriptions(self) -> Dict[str, str]:
    """{name: description}, in order of registration."""
    return {name: entry.description for name, entry in self.entries.items()}

  def __getitem__(self, name: str) -> Value:
    """The value of a registered option.

    Raises:
      ValueError: `name` is not registered (the message names the options).
    """
    if name not in self.entries:
      raise ValueError(f'unknown {self.what}: {name!r} is not one of '
                       f'{", ".join(self.names())}')
    return self.entries[name].value
