"""The stack comparison's own logic: turns, ratios, its table."""

import pytest

from bench import stacks


class _ScriptedStack(stacks.Stack):
  """A stack whose measurements are scripted; records the order of turns."""

  def __init__(self, name, seconds, turns):  # pylint: disable=super-init-not-called
    self.name, self.checkout, self._seconds, self._turns = name, f'/{name}', seconds, turns

  def describe(self):
    return {'commit': self.name, 'python': '3.x', 'tfx': self.name, 'tensorflow': 't',
            'beam': 'b', 'keras': 'k'}

  def measure(self, work_dir):
    self._turns.append(self.name)
    value = self._seconds.pop(0)
    return {key: value for key, _ in stacks.MEASURES}


def test_the_stacks_take_turns_and_each_ratio_is_taken_pair_by_pair():
  turns = []
  # The machine slows down by half between the pairs: per-pair ratios stay 0.5.
  old = _ScriptedStack('old', [10.0, 20.0, 20.0], turns)
  new = _ScriptedStack('new', [5.0, 10.0, 10.0], turns)
  result = stacks.compare(old, new, repeats=3)
  assert turns == ['old', 'new', 'new', 'old', 'old', 'new']
  for key, _ in stacks.MEASURES:
    assert result['new_over_old'][key]['values'] == [0.5, 0.5, 0.5]
    assert result['stacks']['old'][key]['median'] == 20.0
  table = stacks.render_table(dict(result, machine={'cpu': 'cpu', 'cores': 2, 'memory_gib': 1,
                                                    'python': '3.x'}))
  assert '0.50x (0.50-0.50)' in table and 'TFX old' in table and 'TFX new' in table


def test_a_checkout_without_its_environment_says_to_set_it_up(tmp_path):
  with pytest.raises(FileNotFoundError, match='make setup'):
    stacks.Stack('old', str(tmp_path))
