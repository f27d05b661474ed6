"""run-compiled's reading of a package: refusals, order, parameters,
conditions, where it pushes, and what it prints."""

import json
import os
import subprocess
import sys

import pytest

from components.common import names
from pipeline import cli
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
import json, os, sys, time
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
# Where the task reads or pushes; a push leaves a version's saved_model.pb.
parameters = executor_input['inputs'].get('parameterValues', {})
base = parameters.get('serving_dir') or (parameters.get('push_destination') and
    json.loads(parameters['push_destination'])['filesystem']['base_directory'])
if base:
  with open(sys.argv[3], 'a') as trace:
    trace.write(f'{name} serving_dir {base}\\n')
    trace.write(f"{name} tf_log_level {os.environ.get('TF_CPP_MIN_LOG_LEVEL')}\\n")
if base and 'push_destination' in parameters:
  os.makedirs(os.path.join(base, '7'))
  open(os.path.join(base, '7', 'saved_model.pb'), 'w').close()
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


def _serving_parameters(serving_dir):
  return {
      'ServedModel': {'inputs': {'parameters': {'serving_dir': {
          'runtimeValue': {'constant': serving_dir}}}}},
      'Pusher': {'inputs': {'parameters': {'push_destination': {'runtimeValue': {
          'constant': json.dumps({'filesystem': {'base_directory': serving_dir}})}}},
                            'artifacts': {'x': _from('ServedModel')}}}}


def test_the_serving_dir_is_read_from_both_tasks_and_rewritten_in_a_copy():
  spec = _spec(_serving_parameters('gs://b/serving'),
               {'ServedModel': CONTAINER, 'Pusher': CONTAINER})
  assert run_compiled.package_serving_dir(spec) == 'gs://b/serving'
  rewritten = run_compiled.with_serving_dir(spec, '/scratch')
  assert run_compiled.package_serving_dir(rewritten) == '/scratch'
  pusher = rewritten['root']['dag']['tasks']['Pusher']['inputs']['parameters']
  assert json.loads(pusher['push_destination']['runtimeValue']['constant']) == {
      'filesystem': {'base_directory': '/scratch'}}
  assert run_compiled.package_serving_dir(spec) == 'gs://b/serving'  # A copy.
  spec['root']['dag']['tasks']['ServedModel']['inputs']['parameters'][
      'serving_dir']['runtimeValue']['constant'] = 'gs://b/other'
  with pytest.raises(run_compiled.PackageRefused, match='different serving dirs'):
    run_compiled.package_serving_dir(spec)


def _version(base, version, complete=True, record=False):
  os.makedirs(os.path.join(base, version, 'variables'))
  with open(os.path.join(base, version, 'variables', 'v.data'), 'w') as data:
    data.write(version)
  if complete:
    open(os.path.join(base, version, 'saved_model.pb'), 'w').close()
  if record:
    os.makedirs(os.path.join(base, names.PUSH_RECORDS_DIRNAME), exist_ok=True)
    with open(os.path.join(base, names.PUSH_RECORDS_DIRNAME, f'{version}.json'), 'w') as out:
      out.write(json.dumps({'version': version, 'pushed_at': 'then'}))


def _listing(directory):
  return sorted(os.path.relpath(os.path.join(root, name), directory)
                for root, _, names in os.walk(directory) for name in names)


def test_the_scratch_serving_dir_gets_the_newest_complete_version_and_its_record(tmp_path):
  source = str(tmp_path / 'serving')
  _version(source, '100')
  _version(source, '200', record=True)
  _version(source, '300', complete=False)  # A push under way: not served.
  before = _listing(source)
  assert run_compiled.seed_scratch_serving_dir(source, str(tmp_path / 'scratch')) == '200'
  assert _listing(str(tmp_path / 'scratch')) == [
      f'{names.PUSH_RECORDS_DIRNAME}/200.json', '200/saved_model.pb', '200/variables/v.data']
  assert _listing(source) == before
  assert run_compiled.seed_scratch_serving_dir(str(tmp_path / 'none'),
                                               str(tmp_path / 'empty')) is None
  assert os.listdir(tmp_path / 'empty') == []


def _serving_package(tmp_path):
  """A process package whose ServedModel and Pusher name the package's
  serving dir (which serves version 5); returns (package, trace, serving dir)."""
  serving = str(tmp_path / 'serving')
  _version(serving, '5')
  package, trace = _process_package(tmp_path, _serving_parameters(serving))
  return package, trace, serving


def _pointed_at(trace):
  """{task: the serving dir it was given}."""
  return {line.split()[0]: line.split(maxsplit=2)[2]
          for line in trace.read_text().splitlines() if ' serving_dir ' in line}


def test_by_default_it_pushes_to_a_scratch_copy_and_says_so_then_the_verdict_and_logs(
    tmp_path, capsys):
  package, trace, serving = _serving_package(tmp_path)
  work = tmp_path / 'work'
  assert cli.main(['run-compiled', package, '--work-dir', str(work),
                   '--run-id', 'r']) == 0
  scratch = str(work / 'r' / 'serving')
  assert _pointed_at(trace) == {'ServedModel': scratch, 'Pusher': scratch}
  assert _listing(serving) == ['5/saved_model.pb', '5/variables/v.data']
  assert '7/saved_model.pb' in _listing(scratch) and '5/saved_model.pb' in _listing(scratch)
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == (f'run-compiled: pushes to the scratch serving dir {scratch} '
                      f"(seeded with version 5 of the package's {serving}; "
                      "--push-for-real pushes to the package's)")
  assert lines[-2:] == ['verdict: none (the run stopped before its evaluation)',
                        f'logs: {work}/r/<task>/log.txt']
  assert os.path.isfile(work / 'r' / 'Pusher' / 'log.txt')


def test_serving_dir_and_push_for_real_push_where_told(tmp_path, capsys):
  package, trace, serving = _serving_package(tmp_path)
  elsewhere = str(tmp_path / 'elsewhere')
  assert cli.main(['run-compiled', package, '--work-dir', str(tmp_path / 'work'),
                   '--serving-dir', elsewhere]) == 0
  assert _pointed_at(trace) == {'ServedModel': elsewhere, 'Pusher': elsewhere}
  assert _listing(elsewhere) == ['7/saved_model.pb']  # Named: used as it is.
  assert capsys.readouterr().out.splitlines()[0] == (
      f"run-compiled: pushes to {elsewhere} (--serving-dir; the package's is {serving})")
  trace.write_text('')
  assert cli.main(['run-compiled', package, '--work-dir', str(tmp_path / 'work'),
                   '--push-for-real']) == 0
  assert _pointed_at(trace) == {'ServedModel': serving, 'Pusher': serving}
  assert '7/saved_model.pb' in _listing(serving)
  assert capsys.readouterr().out.splitlines()[0] == (
      f"run-compiled: pushes to the package's serving dir {serving} (--push-for-real)")


def test_an_unreadable_package_serving_dir_leaves_the_scratch_one_empty_and_says_why(
    tmp_path, capsys):
  package, trace, _ = _serving_package(tmp_path)
  unreadable = 'nosuchscheme://b/serving'
  spec = json.loads(open(package).read())
  spec['pipelineSpec'] = run_compiled.with_serving_dir(spec['pipelineSpec'], unreadable)
  with open(package, 'w') as out:
    json.dump(spec, out)
  assert cli.main(['run-compiled', package, '--work-dir', str(tmp_path / 'work'),
                   '--run-id', 'r']) == 0
  scratch = str(tmp_path / 'work' / 'r' / 'serving')
  first = capsys.readouterr().out.splitlines()[0]
  assert first.startswith(f'run-compiled: pushes to the scratch serving dir {scratch}, '
                          f"empty: could not read the package's {unreadable} (")
  assert _listing(scratch) == ['7/saved_model.pb']
  assert _pointed_at(trace)['Pusher'] == scratch


@pytest.mark.parametrize('run_id', ['../x', 'a/b', '.', ''])
def test_a_run_id_that_is_not_one_folder_name_is_refused_in_one_line(
    run_id, tmp_path, capsys):
  package, trace, _ = _serving_package(tmp_path)
  with pytest.raises(SystemExit) as exited:
    cli.main(['run-compiled', package, '--work-dir', str(tmp_path / 'work'),
              '--run-id', run_id])
  assert exited.value.code == 2
  assert f"argument --run-id: {run_id!r}: letters, digits" in capsys.readouterr().err
  assert not trace.exists() and not (tmp_path / 'work').exists()


def test_task_results_read_as_run_summary_records_keep_uris_and_metadata():
  results = {
      'Pusher': run_compiled.TaskResult('Pusher', 'COMPLETE', 2.5, outputs={
          'pushed_model': [{'uri': '/r/Pusher/ab/pushed_model', 'metadata': {
              'pushed': 1.0, 'pushed_version': '17'}}]}),
      'ServingCheck': run_compiled.TaskResult('ServingCheck', 'SKIPPED',
                                              reason='condition false')}
  pusher, check = run_compiled.execution_records(results)
  assert (pusher.node_id, pusher.state, pusher.seconds) == ('Pusher', 'COMPLETE', 2.5)
  assert pusher.output_uris == {'pushed_model': '/r/Pusher/ab/pushed_model'}
  assert pusher.output_properties == {'pushed_model': {'pushed': 1.0,
                                                       'pushed_version': '17'}}
  assert (check.node_id, check.state, check.output_uris) == ('ServingCheck', 'SKIPPED', {})


def test_seeding_keeps_tensorflows_import_lines_off_the_terminal_and_out_of_the_tasks(
    tmp_path):
  # As a user runs it: a fresh process, TensorFlow's log level unset (the
  # tests' conftest sets it), the package's serving dir read through TF.
  package, trace, _ = _serving_package(tmp_path)
  environment = {name: value for name, value in os.environ.items()
                 if name != 'TF_CPP_MIN_LOG_LEVEL'}
  process = subprocess.run(
      [sys.executable, '-m', 'pipeline.cli', 'run-compiled', package,
       '--work-dir', str(tmp_path / 'work')], capture_output=True, text=True,
      env=environment, check=False)
  assert process.returncode == 0, process.stderr[-2000:]
  assert process.stdout.splitlines()[0].startswith(
      'run-compiled: pushes to the scratch serving dir')
  assert process.stderr == ''
  # The tasks inherit the environment as it was: they log as on a cluster.
  levels = {line.split()[0]: line.split()[2] for line in trace.read_text().splitlines()
            if ' tf_log_level ' in line}
  assert levels == {'ServedModel': 'None', 'Pusher': 'None'}
