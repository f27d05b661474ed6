"""docs/configuration.md's field table is the configuration's own."""

import dataclasses

from scripts import config_doc


def test_the_committed_field_table_is_current():
  # A field added, renamed or re-documented in pipeline_config.py without
  # `python scripts/config_doc.py` fails here.
  assert config_doc.committed_section() == config_doc.render() + '\n'


def test_every_field_has_a_row_with_its_meaning():
  rows = {row[0]: row for row in config_doc.field_rows()}
  assert rows['`noise.stddev`'][1:4] == ('float', '`0.2`', '')
  assert rows['`training.max_train_steps`'][1:4] == ('int or none', '`none`', '`32`')
  # Not this checkout's path: the dataset's directory in the project.
  assert rows['`data.source_dir`'][2] == '`none`'
  assert '`data/<dataset>` in the project' in rows['`data.source_dir`'][4]
  assert rows['`training.fresh_noise`'][4].endswith('gained nothing from it.')
  assert all(row[4] for row in rows.values()), 'a field without a meaning'


def test_attribute_docs_join_continuation_lines():
  @dataclasses.dataclass
  class Example:
    """An example.

    Attributes:
      size: How big,
        in pixels.
      name: What it is called.
    """
    size: int = 1
    name: str = 'x'

  assert config_doc.attribute_docs(Example) == {
      'size': 'How big, in pixels.', 'name': 'What it is called.'}
