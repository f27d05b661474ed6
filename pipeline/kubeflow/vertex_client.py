"""Submits and schedules compiled pipelines on Vertex AI Pipelines.

Through `google-cloud-aiplatform` (a TFX dependency): a run is a
`PipelineJob` of the compiled package (the .json PipelineJob that `compile`
writes), a recurring run is a `PipelineJobSchedule` made by
`PipelineJob.create_schedule`. Every call that creates something carries
`create_request_timeout` (a gRPC deadline, no thread), so a call that timed
out is over. Vertex runs the same package as open-source KFP (it also runs
TFX's resolver executors, but the package has none).

`schedule` is idempotent per display name in the project and region: it
refuses when a schedule of that name exists, or replaces it with
`replace=True` (new schedule first, then the old one deleted).

Signing in is Application Default Credentials (`gcloud auth
application-default login`, or the service account of the machine), as
aiplatform uses them: no flags.
"""

from typing import Any, Dict, Optional

from pipeline.kubeflow import kfp_client

DEFAULT_TIMEOUT_S = 60.0


class VertexError(RuntimeError):
  """A Vertex AI call failed; the message says which and why."""


def vertex_cron(expression: str) -> str:
  """Vertex takes standard 5-field cron, optionally "TZ=Area/City " first;
  a 6-field one (KFP's, seconds first) is accepted with 0 seconds."""
  timezone = ''
  if expression.startswith(('TZ=', 'CRON_TZ=')):
    zone, _, expression = expression.partition(' ')
    timezone = zone + ' '
  try:
    fields = kfp_client.kfp_cron(expression).split()
  except kfp_client.KfpError as error:
    raise VertexError(str(error)) from error
  if fields[0] != '0':
    raise VertexError(f'bad cron expression {expression!r}: Vertex AI schedules '
                      'have no seconds field')
  return timezone + ' '.join(fields[1:])


def check_policy(policy: kfp_client.SchedulePolicy) -> None:
  """Raises VertexError for a policy a Vertex AI schedule cannot have."""
  if policy.catchup:
    raise VertexError('--catchup: Vertex AI schedules do not backfill when '
                      'created; catch-up is chosen when a paused schedule is '
                      'resumed (aiplatform PipelineJobSchedule.resume(catch_up=True))')
  try:
    policy.check(None, 'Vertex AI')
  except kfp_client.KfpError as error:
    raise VertexError(str(error)) from None


def _custom_job(task) -> Optional[str]:
  """`CustomJob <name>` of a PipelineTaskDetail's container, if it has one."""
  job = task.executor_detail.container_detail.main_job
  return f'CustomJob {job}' if job else None


def _aiplatform():
  from google.cloud import aiplatform  # pylint: disable=g-import-not-at-top
  return aiplatform


class VertexClient:
  """Vertex AI Pipelines for one project and region.

  Args:
    project: Google Cloud project id.
    region: Vertex AI region, e.g. europe-west4.
    pipeline_root: gs:// root of the runs' artifacts (None: a client that
      only looks at runs).
    service_account: The runs' service account (None: the default one).
    timeout_s: Deadline of each call that creates something.
    aiplatform: The `google.cloud.aiplatform` module (tests pass stand-ins
      made with create_autospec of its classes).
  """

  def __init__(self, project: str, region: str, pipeline_root: Optional[str],
               service_account: Optional[str] = None,
               timeout_s: float = DEFAULT_TIMEOUT_S, aiplatform=None):
    if not project or not region:
      raise VertexError('Vertex AI needs --project and --region')
    if pipeline_root is not None and not pipeline_root.startswith('gs://'):
      raise VertexError(f'pipeline root {pipeline_root!r}: Vertex AI needs gs://')
    self._project, self._region = project, region
    self._pipeline_root = pipeline_root
    self._service_account = service_account
    self._timeout_s = timeout_s
    self._aiplatform = aiplatform or _aiplatform()

  def _job(self, package_path: str, display_name: str,
           parameters: Dict[str, Any]):
    return self._aiplatform.PipelineJob(
        display_name=display_name, template_path=package_path,
        pipeline_root=self._pipeline_root, parameter_values=parameters or None,
        project=self._project, location=self._region)

  def _call(self, call, what):
    try:
      return call()
    except Exception as error:  # pylint: disable=broad-except
      raise kfp_client.one_line_error(
          VertexError, f'{what} (Vertex AI, {self._project}/{self._region})',
          error) from error

  def submit(self, package_path: str, display_name: str,
             parameters: Dict[str, Any]) -> str:
    """Starts one run; returns its resource name."""
    job = self._call(lambda: self._job(package_path, display_name, parameters),
                     'read package')
    self._call(lambda: job.submit(service_account=self._service_account,
                                  create_request_timeout=self._timeout_s),
               'submit run')
    return job.resource_name

  def schedule(self, package_path: str, display_name: str, cron: str,
               parameters: Dict[str, Any], replace: bool = False,
               policy: Optional[kfp_client.SchedulePolicy] = None) -> str:
    """Creates the schedule `display_name`; returns its resource name.

    At most `policy.max_concurrency` of its runs start and are active at
    once: `max_concurrent_run_count` bounds only the starting of runs and
    `max_concurrent_active_run_count` the runs not yet over (aiplatform_v1
    types/schedule.py, Schedule); a time that comes while that many are
    active is skipped (`allow_queueing` stays false). Vertex has no
    backfill at creation: catch-up is chosen when a paused schedule is
    resumed (`PipelineJobSchedule.resume(catch_up=...)`).

    Raises:
      VertexError: a bad cron or policy (before any call), a schedule of
        that name exists and `replace` is false (nothing changed), or a call
        failed.
    """
    cron = vertex_cron(cron)
    policy = policy or kfp_client.SchedulePolicy()
    check_policy(policy)
    existing = self._call(lambda: self._aiplatform.PipelineJobSchedule.list(
        filter=f'display_name="{display_name}"', project=self._project,
        location=self._region), 'list schedules')
    if existing and not replace:
      raise VertexError(
          f'schedule {display_name!r} already exists in {self._project}/'
          f'{self._region} ({", ".join(old.resource_name for old in existing)}); '
          'pass --replace to replace it')
    job = self._call(lambda: self._job(package_path, display_name, parameters),
                     'read package')
    schedule = self._call(lambda: job.create_schedule(
        cron=cron, display_name=display_name,
        max_concurrent_run_count=policy.max_concurrency,
        max_concurrent_active_run_count=policy.max_concurrency,
        service_account=self._service_account,
        create_request_timeout=self._timeout_s), 'create schedule')
    for old in existing:
      self._call(old.delete, 'delete the replaced schedule')
    return schedule.resource_name

  def run_url(self, resource_name: str) -> str:
    """The run's page in the Google Cloud console."""
    job_id = resource_name.rstrip('/').rpartition('/')[2]
    return (f'https://console.cloud.google.com/vertex-ai/locations/{self._region}'
            f'/pipelines/runs/{job_id}?project={self._project}')

  def run_view(self, resource_name: str):
    """One look at a run (`PipelineJob.get`, under the deadline) as a
    RunView: `.state` and `.task_details` (PipelineTaskDetail: task_name,
    state, error, the CustomJob of its container in executor_detail)."""
    from pipeline.kubeflow import follow  # pylint: disable=g-import-not-at-top
    what = f'get run (Vertex AI, {self._project}/{self._region})'

    def look():
      # Each of .state and .task_details fetches the job again: both here,
      # under the deadline.
      job = self._aiplatform.PipelineJob.get(
          resource_name, project=self._project, location=self._region)
      return job.state, job.task_details

    try:
      state, details = kfp_client.with_deadline(look, self._timeout_s, what)
    except kfp_client.KfpError as error:
      raise VertexError(str(error)) from error.__cause__
    tasks = tuple(follow.TaskView(
        name=task.task_name, state=follow.state_name(task.state),
        ran_in=_custom_job(task),
        error=task.error.message or None) for task in details or [])
    return follow.RunView(
        run_id=resource_name, state=follow.state_name(state),
        tasks=tasks, logs=self.run_url(resource_name))
