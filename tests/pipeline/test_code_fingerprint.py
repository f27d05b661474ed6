"""Which project code keys each node's cache (pipeline/code_fingerprint.py).

That an edit really re-runs the node is tried end to end in
tests/e2e/test_reliability.py; here, what each fingerprint covers.
"""

import sys

from pipeline import code_fingerprint
from pipeline import pipeline as pipeline_module
import pipeline_config


def _modules(root):
  return set(code_fingerprint.project_sources([root]))


def test_the_trainer_is_keyed_on_the_model_and_everything_run_fn_imports():
  modules = _modules('components.trainer.run_fn')
  assert {'components.trainer.model', 'components.trainer.data',
          'components.common.saved_model', 'components.trainer.plan',
          'components.trainer.strategy', 'components.trainer.multi_worker',
          'components.common.names', 'components.trainer', 'components'} <= modules
  # Not the report, and not the CLI's configuration module.
  assert not any(name.startswith('components.visual_report') for name in modules)
  assert 'pipeline_config' not in modules
  # Its executor (which hands run_fn the examples' noise) and the noise it
  # redraws with training.fresh_noise, again without the configuration.
  modules = _modules('components.trainer.component')
  assert {'components.trainer.executor', 'components.trainer.run_fn',
          'components.common.noise', 'components.common.noise.spec'} <= modules
  assert 'pipeline_config' not in modules
  assert 'pipeline_config' not in _modules('components.noise_transform.component')


def test_each_component_is_keyed_on_the_module_of_its_settings_type():
  """An edit of a spec's module (its fields, defaults, checks) re-runs the
  component that takes it, and what follows."""
  for component, spec_module in (
      ('components.tfds_example_gen.component', 'components.tfds_example_gen.settings'),
      ('components.noise_transform.component', 'components.common.noise.spec'),
      ('components.trainer.run_fn', 'components.trainer.settings')):
    assert spec_module in _modules(component), component


def test_imports_inside_functions_count():
  # VisualReport imports the examples' reader and the serving contract in its body.
  modules = _modules('components.visual_report.component')
  assert {'components.visual_report.report', 'components.common.examples',
          'components.common.saved_model'} <= modules
  assert 'components.trainer.model' not in modules


def test_fingerprints_are_stable_and_differ_by_code():
  first = code_fingerprint.fingerprint(['components.trainer.run_fn'])
  assert first == code_fingerprint.fingerprint(['components.trainer.run_fn'])
  assert first != code_fingerprint.fingerprint(['components.pusher.component'])


def test_every_node_running_project_code_carries_its_fingerprint():
  dag = pipeline_module.create_pipeline(pipeline_config.load_profile('smoke'))
  carried = {node.id: node.exec_properties.get(code_fingerprint.CODE_FINGERPRINT_KEY)
             for node in dag.components}
  stock = {'StatisticsGen', 'ExampleValidator'}
  assert {node for node, value in carried.items() if value is None} == stock
  assert carried['Trainer'] == code_fingerprint.fingerprint(
      ['components.trainer.run_fn', 'components.trainer.component'])
  assert carried['Evaluator'] == code_fingerprint.fingerprint(
      ['components.common.metrics', 'components.evaluator.component'])


def test_no_component_code_imports_the_configuration():
  """An edit of pipeline_config.py re-runs nothing by itself: no node's code
  imports it (the components take plain values or their own small types)."""
  dag = pipeline_module.create_pipeline(pipeline_config.load_profile('smoke'))
  node_classes = {type(node).__module__ for node in dag.components
                  if code_fingerprint.CODE_FINGERPRINT_KEY in node.exec_properties}
  node_code = node_classes | {pipeline_module.RUN_FN.rpartition('.')[0],
                              'components.common.metrics'}
  assert len(node_code) >= 10
  for module in node_code:
    assert 'pipeline_config' not in _modules(module), module


def test_an_edit_of_a_file_s_contents_changes_the_fingerprint_under_the_same_names(
    tmp_path, monkeypatch):
  # A project of its own, on disk: `fp_probe.node` imports `fp_probe.model`.
  package = tmp_path / 'fp_probe'
  package.mkdir()
  (package / '__init__.py').write_text('')
  (package / 'node.py').write_text('from fp_probe import model\nSTEPS = 3\n')
  (package / 'model.py').write_text('LAYERS = 2\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setattr(code_fingerprint, 'PROJECT_TOP_LEVEL',
                      code_fingerprint.PROJECT_TOP_LEVEL + ('fp_probe',))
  try:
    names = set(code_fingerprint.project_sources(['fp_probe.node']))
    assert names == {'fp_probe', 'fp_probe.node', 'fp_probe.model'}
    before = code_fingerprint.fingerprint(['fp_probe.node'])
    (package / 'model.py').write_text('LAYERS = 3\n')  # Imported, not a root.
    edited_import = code_fingerprint.fingerprint(['fp_probe.node'])
    (package / 'node.py').write_text('from fp_probe import model\nSTEPS = 4\n')
    edited_root = code_fingerprint.fingerprint(['fp_probe.node'])
    assert set(code_fingerprint.project_sources(['fp_probe.node'])) == names
    assert len({before, edited_import, edited_root}) == 3
    (package / 'model.py').write_text('LAYERS = 2\n')
    (package / 'node.py').write_text('from fp_probe import model\nSTEPS = 3\n')
    assert code_fingerprint.fingerprint(['fp_probe.node']) == before  # Contents alone.
  finally:
    sys.modules.pop('fp_probe', None)  # Imported by find_spec.
