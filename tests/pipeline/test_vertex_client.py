"""submit/schedule on Vertex AI Pipelines, against stand-ins made with
`create_autospec` of google-cloud-aiplatform's real classes (no Vertex here):
a call with a wrong signature fails as it would against the real library."""

import types
from unittest import mock

from google.cloud import aiplatform
from google.cloud.aiplatform.compat.types import pipeline_job as gca_pipeline_job
from google.cloud.aiplatform.compat.types import pipeline_state as gca_pipeline_state
import pytest

from pipeline import cli
from pipeline.kubeflow import kfp_client
from pipeline.kubeflow import follow
from pipeline.kubeflow import vertex_client
from pipeline.kubeflow.vertex_client import VertexError

ROOT = 'gs://bucket/mnist-dae/root'


def _schedule(name):
  schedule = mock.create_autospec(aiplatform.PipelineJobSchedule, instance=True)
  schedule.resource_name = name
  return schedule


def _aiplatform(existing=()):
  stand_in = types.SimpleNamespace(
      PipelineJob=mock.create_autospec(aiplatform.PipelineJob),
      PipelineJobSchedule=mock.create_autospec(aiplatform.PipelineJobSchedule))
  job = stand_in.PipelineJob.return_value
  job.resource_name = 'projects/p/locations/europe-west4/pipelineJobs/run-1'
  job.create_schedule.return_value = _schedule('projects/p/locations/europe-west4/schedules/new')
  stand_in.PipelineJobSchedule.list.return_value = [_schedule(name) for name in existing]
  return stand_in


def _client(stand_in, **kwargs):
  return vertex_client.VertexClient('p', 'europe-west4', ROOT, aiplatform=stand_in,
                                    timeout_s=30, **kwargs)


def test_the_stand_ins_refuse_a_wrong_signature():
  stand_in = _aiplatform()
  with pytest.raises(TypeError):
    stand_in.PipelineJob(display_name='x', template='pipeline.json')  # Not a parameter.
  with pytest.raises(TypeError):
    stand_in.PipelineJob.return_value.submit(account='sa@p')


def test_submit_runs_the_package_as_a_pipeline_job():
  stand_in = _aiplatform()
  name = _client(stand_in, service_account='runner@p.iam.gserviceaccount.com').submit(
      '/tmp/pipeline.json', 'mnist-dae-20261125', {'noise_stddev': 0.3})
  assert name == 'projects/p/locations/europe-west4/pipelineJobs/run-1'
  stand_in.PipelineJob.assert_called_once_with(
      display_name='mnist-dae-20261125', template_path='/tmp/pipeline.json',
      pipeline_root=ROOT, parameter_values={'noise_stddev': 0.3}, project='p',
      location='europe-west4')
  stand_in.PipelineJob.return_value.submit.assert_called_once_with(
      service_account='runner@p.iam.gserviceaccount.com', create_request_timeout=30)


def test_schedule_creates_a_schedule_with_five_field_cron():
  stand_in = _aiplatform()
  name = _client(stand_in).schedule('/tmp/pipeline.json', 'mnist-dae-recurring',
                                    '0 3 * * *', {})
  assert name.endswith('/schedules/new')
  stand_in.PipelineJobSchedule.list.assert_called_once_with(
      filter='display_name="mnist-dae-recurring"', project='p', location='europe-west4')
  stand_in.PipelineJob.return_value.create_schedule.assert_called_once_with(
      cron='0 3 * * *', display_name='mnist-dae-recurring', max_concurrent_run_count=1,
      max_concurrent_active_run_count=1, service_account=None, create_request_timeout=30)


def test_schedule_takes_max_concurrency_and_refuses_catchup_before_any_call():
  stand_in = _aiplatform()
  _client(stand_in).schedule('/tmp/pipeline.json', 'x', '0 3 * * *', {},
                             policy=kfp_client.SchedulePolicy(max_concurrency=4))
  called = stand_in.PipelineJob.return_value.create_schedule.call_args.kwargs
  assert (called['max_concurrent_run_count'], called['max_concurrent_active_run_count']) == (4, 4)
  stand_in = _aiplatform()
  with pytest.raises(VertexError, match='--catchup: Vertex AI schedules do not backfill'):
    _client(stand_in).schedule('/tmp/pipeline.json', 'x', '0 3 * * *', {},
                               policy=kfp_client.SchedulePolicy(catchup=True))
  with pytest.raises(VertexError, match='--max-concurrency 0: Vertex AI takes at least 1'):
    _client(stand_in).schedule('/tmp/pipeline.json', 'x', '0 3 * * *', {},
                               policy=kfp_client.SchedulePolicy(max_concurrency=0))
  stand_in.PipelineJobSchedule.list.assert_not_called()


def _task(name, state, main_job='', error=''):
  """A real PipelineTaskDetail, as PipelineJob.task_details lists them."""
  detail = gca_pipeline_job.PipelineTaskDetail(
      task_name=name, state=getattr(gca_pipeline_job.PipelineTaskDetail.State, state))
  detail.executor_detail.container_detail.main_job = main_job
  detail.error.message = error
  return detail


def _job_looks(stand_in, looks):
  """PipelineJob.get answers one (state, tasks) per call, as the job moves on."""
  jobs = []
  for state, tasks in looks:
    job = mock.create_autospec(aiplatform.PipelineJob, instance=True)
    job.state = getattr(gca_pipeline_state.PipelineState, f'PIPELINE_STATE_{state}')
    job.task_details = tasks
    jobs.append(job)
  stand_in.PipelineJob.get.side_effect = jobs


RUN = 'projects/p/locations/europe-west4/pipelineJobs/mnist-dae-20261125'


def test_following_a_vertex_run_to_success():
  stand_in = _aiplatform()
  _job_looks(stand_in, [('PENDING', []), ('RUNNING', [_task('trainer', 'RUNNING')]),
                        ('SUCCEEDED', [_task('trainer', 'SUCCEEDED')])])
  client, lines = _client(stand_in), []
  view = follow.follow(lambda: client.run_view(RUN), 60, 0, lines.append)
  assert lines == ['run: PENDING', '  trainer: RUNNING', 'run: RUNNING', '  trainer: SUCCEEDED',
                   'run: SUCCEEDED']
  assert follow.exit_code(view) == 0
  stand_in.PipelineJob.get.assert_called_with(RUN, project='p', location='europe-west4')


def test_a_failed_vertex_run_names_its_task_job_and_console_page():
  stand_in = _aiplatform()
  _job_looks(stand_in, [('FAILED', [
      _task('trainer', 'FAILED', 'projects/p/locations/europe-west4/customJobs/7',
            'The replica workerpool0-0 exited with a non-zero status of 1.'),
      _task('pusher', 'CANCELLED')])])
  view = _client(stand_in).run_view(RUN)
  assert follow.exit_code(view) == 1
  assert [task.state for task in view.tasks] == ['FAILED', 'CANCELED']
  assert follow.verdict(view) == (
      f'run {RUN} failed: task trainer failed (CustomJob projects/p/locations/europe-west4/'
      'customJobs/7): The replica workerpool0-0 exited with a non-zero status of 1.; '
      'logs: https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/'
      'runs/mnist-dae-20261125?project=p')


def test_a_vertex_run_still_going_when_the_wait_runs_out_is_124():
  stand_in = _aiplatform()
  _job_looks(stand_in, [('RUNNING', [])] * 50)
  clock = iter(range(1000)).__next__
  view = follow.follow(lambda: _client(stand_in).run_view(RUN), 3, 1, lambda line: None,
                           clock=clock, sleep=lambda seconds: None)
  assert follow.exit_code(view) == 124 and view.state == 'RUNNING'


def test_schedule_refuses_an_existing_name_and_replaces_it_when_told():
  stand_in = _aiplatform(existing=['projects/p/locations/europe-west4/schedules/old'])
  with pytest.raises(VertexError, match="'mnist-dae-recurring' already exists.*--replace"):
    _client(stand_in).schedule('/tmp/pipeline.json', 'mnist-dae-recurring', '0 3 * * *', {})
  stand_in.PipelineJob.return_value.create_schedule.assert_not_called()
  _client(stand_in).schedule('/tmp/pipeline.json', 'mnist-dae-recurring', '0 3 * * *', {},
                             replace=True)
  stand_in.PipelineJob.return_value.create_schedule.assert_called_once()
  old = stand_in.PipelineJobSchedule.list.return_value[0]
  old.delete.assert_called_once_with()


@pytest.mark.parametrize('given, expected', [
    ('0 3 * * *', '0 3 * * *'), ('0 0 3 * * 1-5', '0 3 * * 1-5'),
    ('TZ=Europe/Paris 0 3 * * *', 'TZ=Europe/Paris 0 3 * * *')])
def test_vertex_cron(given, expected):
  assert vertex_client.vertex_cron(given) == expected


@pytest.mark.parametrize('bad', ['daily', '30 0 3 * * *'])
def test_bad_vertex_cron_is_refused(bad):
  with pytest.raises(VertexError, match='bad cron expression'):
    vertex_client.vertex_cron(bad)


def test_vertex_needs_a_bucket_root_project_and_region():
  with pytest.raises(VertexError, match='needs gs://'):
    vertex_client.VertexClient('p', 'r', '/local/root', aiplatform=_aiplatform())
  with pytest.raises(VertexError, match='--project and --region'):
    vertex_client.VertexClient('', 'r', ROOT, aiplatform=_aiplatform())


def test_a_failing_call_is_one_line_naming_it():
  stand_in = _aiplatform()
  stand_in.PipelineJob.return_value.submit.side_effect = RuntimeError('403 Permission denied\nmore')
  with pytest.raises(VertexError, match=r'^submit run \(Vertex AI, p/europe-west4\): '
                     'RuntimeError: 403 Permission denied$'):
    _client(stand_in).submit('/tmp/pipeline.json', 'x', {})


def test_schedule_command_rejects_a_bad_vertex_cron_before_compiling(capsys):
  assert cli.main(['schedule', '--target', 'vertex', '--project', 'p', '--region', 'r',
                   '--pipeline-root', ROOT, '--cron', '30 0 3 * * *']) == 1
  assert 'no seconds field' in capsys.readouterr().err


def test_schedule_command_rejects_catchup_on_vertex_before_compiling(capsys):
  assert cli.main(['schedule', '--target', 'vertex', '--project', 'p', '--region', 'r',
                   '--pipeline-root', ROOT, '--cron', '0 3 * * *', '--catchup']) == 1
  assert 'catch-up is chosen when a paused schedule is resumed' in capsys.readouterr().err
