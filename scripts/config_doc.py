"""Renders the field table of docs/configuration.md from pipeline_config.py.

    python scripts/config_doc.py          # rewrite the table
    python scripts/config_doc.py --check  # exit 1 when the committed table is stale

Each field's name, type, defaults (full and smoke profiles) and meaning come
from the config dataclasses themselves (their `Attributes:` docstrings), so
the page cannot drift from the code; tests/test_config_doc.py checks that the
committed page is current.
"""

import argparse
import dataclasses
import inspect
import os
import re
import sys
import typing
from typing import Dict, Iterator, List, Sequence, Tuple

if __package__ in (None, ''):  # Run as a script: the repository's modules.
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # pylint: disable=g-import-not-at-top
from components.common import registry  # pylint: disable=g-import-not-at-top
from components.common import setting_specs  # pylint: disable=g-import-not-at-top
import pipeline_config  # pylint: disable=g-import-not-at-top

SECTION = 'config-fields'
PAGE_PATH = os.path.join(pipeline_config.repository_root(), 'docs',
                         'configuration.md')


def attribute_docs(owner: type) -> Dict[str, str]:
  """{field: its description} from the Google-style `Attributes:` docstring
  sections of a class and of the classes it inherits fields from (its own
  win), continuation lines joined."""
  docs: Dict[str, str] = {}
  for base in reversed(owner.__mro__):
    docs.update(_own_attribute_docs(base))
  return docs


def _own_attribute_docs(owner: type) -> Dict[str, str]:
  """attribute_docs of one class's own docstring."""
  docs: Dict[str, str] = {}
  in_attributes, name = False, None
  for line in inspect.cleandoc(owner.__dict__.get('__doc__') or '').splitlines():
    if line.strip() == 'Attributes:':
      in_attributes = True
      continue
    if not in_attributes or not line.strip():
      continue
    entry = re.match(r'^  (\w+): (.*)$', line)
    if entry:
      name = entry.group(1)
      docs[name] = entry.group(2).strip()
    elif name and line.startswith('    '):
      docs[name] += ' ' + line.strip()
  return docs


def meaning(field: dataclasses.Field, doc: str) -> str:
  """A field's docstring; for a field whose values are a registry's names
  (setting_specs.option), followed by each registered name's description."""
  options = field.metadata.get(setting_specs.OPTIONS)
  if not isinstance(options, registry.Registry):
    return doc
  return doc + ' Registered: ' + '; '.join(
      f'`{name}`: {description}'
      for name, description in options.descriptions().items()) + '.'


def type_text(hint: object) -> str:
  """'int', 'float or none', 'strings, comma-separated', ..."""
  arguments = [argument for argument in typing.get_args(hint)
               if argument is not type(None)]
  if typing.get_origin(hint) is typing.Union:
    return type_text(arguments[0]) + ' or none'
  if typing.get_origin(hint) is tuple:
    return 'strings, comma-separated'
  return getattr(hint, '__name__', str(hint))


def value_text(value: object) -> str:
  """A default as `--set` takes it; repository paths relative to the root."""
  if value is None:
    return '`none`'
  if isinstance(value, bool):
    return f'`{str(value).lower()}`'
  if isinstance(value, tuple):
    return '`' + ','.join(value) + '`'
  if isinstance(value, str) and os.path.isabs(value):
    value = os.path.relpath(value, pipeline_config.repository_root())
  return f'`{value}`'


def sections(config: pipeline_config.PipelineConfig
             ) -> Iterator[Tuple[str, object]]:
  """('', the config) and (name, section object) for every nested section."""
  yield '', config
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if dataclasses.is_dataclass(value):
      yield field.name, value


def field_rows() -> List[Sequence[str]]:
  """One row per scalar field: name, type, full default, smoke default,
  meaning."""
  full = dict(sections(pipeline_config.load_profile('full')))
  smoke = dict(sections(pipeline_config.load_profile('smoke')))
  rows = []
  for section, owner_value in full.items():
    owner = type(owner_value)
    hints, docs = typing.get_type_hints(owner), attribute_docs(owner)
    for field in dataclasses.fields(owner):
      full_value = getattr(owner_value, field.name)
      if dataclasses.is_dataclass(full_value):
        continue
      smoke_value = getattr(smoke[section], field.name)
      rows.append((f"`{section + '.' if section else ''}{field.name}`",
                   type_text(hints[field.name]), value_text(full_value),
                   '' if smoke_value == full_value else value_text(smoke_value),
                   meaning(field, docs.get(field.name, '')).replace('|', '\\|')))
  return rows


def render() -> str:
  """The Markdown table of every field."""
  return common.markdown_table(
      ('field', 'type', 'default (full)', 'smoke, where it differs', 'meaning'),
      field_rows())


def committed_section(page_path: str = PAGE_PATH) -> str:
  """What the page holds between its field-table markers."""
  with open(page_path) as page:
    content = page.read()
  begin, end = f'<!-- {SECTION}:begin -->\n', f'<!-- {SECTION}:end -->'
  return content[content.index(begin) + len(begin):content.index(end)]


def main(argv: Sequence[str] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--check', action='store_true',
                      help='exit 1 when docs/configuration.md is not current')
  args = parser.parse_args(argv)
  if args.check:
    current = committed_section() == render() + '\n'
    if not current:
      print(f'{PAGE_PATH} is stale: run python scripts/config_doc.py',
            file=sys.stderr)
    return 0 if current else 1
  common.replace_section(SECTION, render(), PAGE_PATH)
  return 0


if __name__ == '__main__':
  sys.exit(main())
