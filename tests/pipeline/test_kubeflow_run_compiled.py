"""run-compiled's reading of a package: refusals, order, parameters, conditions."""

import json

import pytest

from pipeline.kubeflow import run_compiled


def _spec(tasks, executors, parameters=None):
  components = {f'comp-{name}': {'executorLabel': f'exec-{name}'} for name in tasks}
  return {
      'pipelineInfo': {'name': 'p'},
      'components': components,
      'deploymentSpec': {'executors': {f'exec-{name}': executors[name] for name in tasks}},
      'root': {'dag': {'tasks': {
          name: {'componentRef': {'name': f'comp-{name}'}, **task}
          for name, task in tasks.items()}},
               'inputDefinitions': {'parameters': parameters or {}}}}


CONTAINER = {'container': {'image': 'i', 'command': ['python'], 'args': ['{{$}}']}}


def test_resolver_custom_job_and_conditional_importer_are_refused_naming_the_task():
  spec = _spec(
      {'latest_model': {}, 'train': {}, 'load': {'triggerPolicy': {'condition': 'true'}},
       'ok': {}},
      {'latest_model': {'resolver': {}}, 'train': {'customJob': {}},
       'load': {'importer': {'artifactUri': {'constant': 'gs://b/x'}}}, 'ok': CONTAINER})
  refusals = run_compiled.oss_refusals(spec)
  assert len(refusals) == 3
  assert "task 'latest_model': resolver executors not implemented" in refusals[0]
  assert "task 'load'" in refusals[1] and 'importer' in refusals[1]
  assert "task 'train'" in refusals[2] and 'Google Cloud only' in refusals[2]


def test_placeholders_other_than_the_whole_executor_input_are_refused():
  container = {'container': {'image': 'i', 'command': ['python'],
                             'args': ["{{$.inputs.parameters['x']}}"]}}
  assert run_compiled.oss_refusals(_spec({'t': {}}, {'t': container})) == [
      "task 't': placeholder \"{{$.inputs.parameters['x']}}\" is not run here "
      '(only {{$}}, the whole ExecutorInput)']


def test_a_refused_package_runs_nothing(tmp_path):
  package = tmp_path / 'p.json'
  package.write_text(json.dumps({'pipelineSpec': _spec({'r': {}}, {'r': {'resolver': {}}}),
                                 'runtimeConfig': {'gcsOutputDirectory': str(tmp_path)}}))
  with pytest.raises(run_compiled.PackageRefused, match="task 'r': resolver"):
    run_compiled.run_package(str(package), work_dir=str(tmp_path / 'work'))
  assert not (tmp_path / 'work').exists()


def test_tasks_run_after_their_producers_and_cycles_are_refused():
  tasks = {'c': {'dependentTasks': ['b']},
           'b': {'inputs': {'artifacts': {'x': {'taskOutputArtifact': {
               'producerTask': 'a', 'outputArtifactKey': 'o'}}}}},
           'a': {}, 'z': {}}
  assert run_compiled.dependency_order(tasks) == ['a', 'z', 'b', 'c']
  with pytest.raises(run_compiled.PackageRefused, match='depend on each other'):
    run_compiled.dependency_order({'a': {'dependentTasks': ['b']}, 'b': {'dependentTasks': ['a']}})


def test_parameters_default_then_job_values_then_overrides_and_unknown_ones_refused():
  spec = _spec({}, {}, {'noise_stddev': {'defaultValue': 0.2}, 'noise_seed': {'defaultValue': 42}})
  values = run_compiled.root_parameters(spec, {'parameterValues': {'noise_seed': 7}},
                                     {'noise_stddev': 0.5})
  assert values == {'noise_stddev': 0.5, 'noise_seed': 7}
  with pytest.raises(run_compiled.PackageRefused, match='noise_sttdev'):
    run_compiled.root_parameters(spec, {}, {'noise_sttdev': 0.5})


def _blessing_input(blessed):
  return {'inputs': {'artifacts': {'_Evaluator.blessing': {'artifacts': [
      {'name': '9', 'uri': '/x', 'metadata': {'blessed': blessed}}]}}}}


def test_tfx_conditions_evaluate_as_cel_over_the_executor_input():
  condition = ("(inputs.artifacts['_Evaluator.blessing'].artifacts[0]"
               ".metadata['blessed'] == 1.0)")
  assert run_compiled.condition_holds(condition, _blessing_input(1.0)) is True
  assert run_compiled.condition_holds(condition, _blessing_input(0.0)) is False
  with pytest.raises(run_compiled.PackageRefused, match='not a bool'):
    run_compiled.condition_holds("inputs.artifacts['_Evaluator.blessing'].artifacts[0].uri",
                              _blessing_input(1.0))


def test_a_condition_on_an_input_the_task_lacks_is_refused():
  condition = "(inputs.artifacts['_Evaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0)"
  spec = _spec({'Pusher': {'triggerPolicy': {'condition': condition}, 'inputs': {
      'artifacts': {'model_blessing': {'taskOutputArtifact': {
          'producerTask': 'Evaluator', 'outputArtifactKey': 'blessing'}}}}}},
               {'Pusher': CONTAINER})
  assert run_compiled.oss_refusals(spec) == [
      "task 'Pusher': its condition reads the input artifact(s) ['_Evaluator.blessing'], "
      'which the task does not have (the driver would fail evaluating it)']


# Real task processes (no TFX): each writes its executor output file, so the
# runner's scheduling, hand-over, skipping and failure handling are exercised.
# Tasks 'a' and 'b' each wait until the other has started (up to 120 s, which
# bounds a failure alone): run side by side they overlap however slowly the
# machine starts them; run one after the other they do not.
TASK_SCRIPT = """
import json, sys, time
executor_input = json.loads(sys.argv[1])
name = sys.argv[2]
with open(sys.argv[3], 'a') as trace:
  trace.write(f'{name} start {time.time()}\\n')
if name == 'broken':
  sys.exit(7)
upstream = [artifact['metadata'].get('n', 0)
            for value in executor_input['inputs'].get('artifacts', {}).values()
            for artifact in value['artifacts']]
outputs = {key: {'artifacts': [dict(value['artifacts'][0], metadata={'n': 1 + sum(upstream)})]}
           for key, value in executor_input['outputs']['artifacts'].items()}
partner = {'a': 'b', 'b': 'a'}.get(name)
deadline = time.monotonic() + 120
while partner and time.monotonic() < deadline:
  with open(sys.argv[3]) as trace:
    if any(line.split()[:2] == [partner, 'start'] for line in trace):
      break
  time.sleep(0.05)
with open(executor_input['outputs']['outputFile'], 'w') as out:
  json.dump({'artifacts': outputs}, out)
with open(sys.argv[3], 'a') as trace:
  trace.write(f'{name} end {time.time()}\\n')
"""


def _process_package(tmp_path, tasks):
  trace = tmp_path / 'trace.txt'
  executors = {name: {'container': {'image': 'x', 'command': ['python', '-c', TASK_SCRIPT],
                                    'args': ['{{$}}', name, str(trace)]}}
               for name in tasks}
  spec = _spec(tasks, executors)
  for name in tasks:
    spec['components'][f'comp-{name}']['outputDefinitions'] = {'artifacts': {'out': {
        'artifactType': {'instanceSchema': 'title: tfx.Model\n'}}}}
  package = tmp_path / 'p.json'
  package.write_text(json.dumps({'pipelineSpec': spec,
                                 'runtimeConfig': {'gcsOutputDirectory': str(tmp_path / 'root')}}))
  return str(package), trace


def _from(producer):
  return {'taskOutputArtifact': {'producerTask': producer, 'outputArtifactKey': 'out'}}


def test_tasks_run_as_processes_hand_on_metadata_and_independent_ones_overlap(
    tmp_path, monkeypatch):
  package, trace = _process_package(tmp_path, {
      'a': {}, 'b': {},
      'c': {'inputs': {'artifacts': {'x': _from('a'), 'y': _from('b')}}},
      'd': {'inputs': {'artifacts': {'x': _from('c')}},
            'triggerPolicy': {'condition': "inputs.artifacts['x'].artifacts[0].metadata['n'] > 5.0"}},
      'e': {'inputs': {'artifacts': {'x': _from('d')}}}})
  monkeypatch.chdir(tmp_path)  # Relative work dir and root: from here, not the tasks' cwd.
  results = run_compiled.run_package(package, run_id='r', work_dir='work',
                                  pipeline_root='root', parallelism=2, log=lambda line: None)
  assert {name: result.state for name, result in results.items()} == {
      'a': 'COMPLETE', 'b': 'COMPLETE', 'c': 'COMPLETE', 'd': 'SKIPPED', 'e': 'SKIPPED'}
  assert results['c'].outputs['out'][0]['metadata'] == {'n': 3}  # 1 + a's 1 + b's 1.
  assert results['c'].outputs['out'][0]['uri'].startswith(f'{tmp_path}/root/p/r/c/')
  assert 'condition false' in results['d'].reason and "'d'" in results['e'].reason
  events = {(line.split()[0], line.split()[1]): float(line.split()[2])
            for line in trace.read_text().splitlines()}
  assert events[('a', 'start')] < events[('b', 'end')] and events[('b', 'start')] < events[('a', 'end')]
  assert events[('c', 'start')] > max(events[('a', 'end')], events[('b', 'end')])


def test_a_failed_task_stops_the_run_naming_the_task_and_its_log(tmp_path):
  package, trace = _process_package(tmp_path, {
      'broken': {}, 'after': {'inputs': {'artifacts': {'x': _from('broken')}}}})
  with pytest.raises(run_compiled.TaskFailed, match=r"task 'broken' failed \(exit status 7\)"):
    run_compiled.run_package(package, work_dir=str(tmp_path / 'work'), log=lambda line: None)
  assert 'after' not in trace.read_text()
