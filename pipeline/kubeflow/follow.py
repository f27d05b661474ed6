"""Follows a remote pipeline run (Kubeflow Pipelines or Vertex AI) to its end.

Both targets' clients turn what their API says about a run into a `RunView`
(the run's state and each task's, in one vocabulary: KFP's V2beta1RuntimeState
names, which Vertex's PipelineState and PipelineTaskDetail.State map onto);
`follow` polls it, says each task's state as it changes and stops when the run
is over or the wait runs out. Each look is one call under its client's
deadline; Ctrl-C (KeyboardInterrupt) stops following, never the run.
"""

import dataclasses
import math
import time
from typing import Callable, Dict, Optional, Tuple

SUCCEEDED = 'SUCCEEDED'
FAILED = 'FAILED'
CANCELED = 'CANCELED'
# The run's states after which it changes no more.
FINAL_STATES = (SUCCEEDED, FAILED, CANCELED)

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_WAIT_RAN_OUT = 124  # As timeout(1) exits when its time runs out.
EXIT_STOPPED_FOLLOWING = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it.

DEFAULT_POLL_INTERVAL_S = 10.0


@dataclasses.dataclass(frozen=True)
class TaskView:
  """One task of a run, as its orchestrator reports it.

  Attributes:
    name: The task's display name.
    state: Its state (SUCCEEDED, FAILED, RUNNING, ...).
    ran_in: What ran it, in words: `pod <name>` (KFP), `CustomJob <name>`
      (Vertex AI); None when the orchestrator does not say.
    error: The orchestrator's error message, if any.
  """
  name: str
  state: str
  ran_in: Optional[str] = None
  error: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class RunView:
  """A run at one look.

  Attributes:
    run_id: The run's id (KFP) or resource name (Vertex AI).
    state: The run's state.
    tasks: Its tasks.
    logs: Where its logs are (the run's page in the UI).
    error: The run's own error message, if any.
  """
  run_id: str
  state: str
  tasks: Tuple[TaskView, ...] = ()
  logs: str = ''
  error: Optional[str] = None

  @property
  def finished(self) -> bool:
    return self.state in FINAL_STATES


def state_name(state) -> str:
  """A state in the one vocabulary: an enum's or a string's name, without
  Vertex's PIPELINE_STATE_ prefix, CANCELLED spelled as KFP does."""
  name = str(getattr(state, 'name', state) or 'RUNTIME_STATE_UNSPECIFIED')
  name = name.rpartition('.')[2].replace('PIPELINE_STATE_', '')
  return CANCELED if name == 'CANCELLED' else name


def verdict(view: RunView) -> str:
  """The closing line of a finished run: succeeded, or failed naming the
  failed tasks (their pods) and where the logs are."""
  if view.state == SUCCEEDED:
    return f'run {view.run_id} succeeded'
  failed = [task for task in view.tasks if task.state == FAILED]
  if failed:
    details = '; '.join(
        f'task {task.name} failed'
        + (f' ({task.ran_in})' if task.ran_in else '')
        + (f': {task.error}' if task.error else '') for task in failed)
  else:
    details = view.error or f'it ended {view.state}'
  return f'run {view.run_id} {view.state.lower()}: {details}; logs: {view.logs}'


def exit_code(view: RunView) -> int:
  """0 succeeded, 1 failed or canceled, 124 not over yet."""
  if not view.finished:
    return EXIT_WAIT_RAN_OUT
  return EXIT_SUCCEEDED if view.state == SUCCEEDED else EXIT_FAILED


def follow(look: Callable[[], RunView], wait_s: float, interval_s: float,
           say: Callable[[str], None],
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> RunView:
  """Looks at a run until it is over or `wait_s` has passed.

  Says one line per change: `<task>: <state>` for each task whose state is
  new, `run: <state>` when the run's changes.

  Args:
    look: One look at the run (a call under its client's deadline).
    wait_s: How long to follow (0: one look; math.inf: to the end).
    interval_s: Seconds between looks.
    say: Prints a line.
    clock: Monotonic seconds (tests pass a fake one).
    sleep: Waits (tests pass a fake one).

  Returns:
    The last look.
  """
  deadline = clock() + wait_s if math.isfinite(wait_s) else math.inf
  seen: Dict[str, str] = {}
  run_state = None
  while True:
    view = look()
    for task in view.tasks:
      if seen.get(task.name) != task.state:
        seen[task.name] = task.state
        say(f'  {task.name}: {task.state}')
    if view.state != run_state:
      run_state = view.state
      say(f'run: {view.state}')
    remaining = deadline - clock()
    if view.finished or remaining <= 0:
      return view
    sleep(min(interval_s, remaining))
