"""The compiled package on gs:// while object storage misbehaves.

The smoke package runs as open-source KFP v2 runs it (tests/kfp/compiled_runs.py)
with its pipeline root and serving dir in a GCS emulator on 127.0.0.1, and
tests/fault_proxy.py in front of the emulator for every client (TF's GCS
filesystem, google-cloud-storage, Beam's gcsio): a seeded share of requests
gets a 503 or a 429, an upload has its connection reset mid-body, an answer
is delayed. The clients' retries absorb them: the first run (pushing for
real) still pushes a model that loads and is complete, no version is left
loadable half-written, and the second run (faults off, a default pre-flight)
completes against its scratch copy of the first push. A task
that does fail is named, with its log's end, by the first run's test.

No request is spared: Beam's batch copy and delete (`GCSFileSystem.rename`,
when a Beam sink finalises its files) retry their batch requests since
`GcsIO._batch_with_retry` (tests/pipeline/test_storage_retries.py pins it).
"""

import contextlib
import os

import pytest
from tfx.utils import path_utils

from tests import fault_proxy
from tests import gcs_emulator
from tests.kfp import compiled_runs

pytestmark = pytest.mark.kfp

SEED = 32


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  policy = fault_proxy.FaultPolicy(seed=SEED)
  with contextlib.ExitStack() as stack:
    front = stack.enter_context(fault_proxy.running(policy))
    environment = stack.enter_context(gcs_emulator.running(compiled_runs.BUCKET, front=front))
    stack.enter_context(gcs_emulator.applied(environment))
    faults = {}

    def faults_off():
      # The re-run without faults: each fault costs its client a back-off
      # (about a second and more), which CI pays task after task.
      faults.update(counts=fault_proxy.counts_of(policy), summary=policy.summary())
      policy.enabled = False

    outcome = compiled_runs.run_both(tmp_path_factory.mktemp('run_compiled_gs'), 'gs',
                                     before_second=faults_off)
    if not faults:
      faults_off()
    outcome['faults'], outcome['fault_summary'] = faults['counts'], faults['summary']
    print(f"\nStorage faults injected in the first run: {faults['summary']}")
    policy.enabled = True  # Read back through the faults too.
    config = outcome['config']
    outcome['served_files'] = {version: compiled_runs.files(f'{config.serving_dir}/{version}')
                               for version in compiled_runs.versions(config.serving_dir)}
    model = outcome['first'].get('Trainer')
    outcome['model_files'] = compiled_runs.files(
        f"{model.outputs['model'][0]['uri']}/{compiled_runs.SERVING_MODEL_SUBDIR}"
    ) if model and model.state == 'COMPLETE' else {}
    # What is pushed: ServingCheck's copy of that model with its warm-up file.
    check = outcome['first'].get('ServingCheck')
    outcome['stamped_files'] = compiled_runs.files(path_utils.stamped_model_path(
        check.outputs['blessing'][0]['uri'])) if check and check.state == 'COMPLETE' else {}
    yield outcome


def test_faults_of_every_kind_were_injected(runs):
  print(f"\nStorage faults injected: {runs['fault_summary']}")
  assert all(count > 0 for count in runs['faults'].values()), runs['fault_summary']


def test_the_first_run_completes_every_task_and_pushes_a_loadable_model(runs):
  compiled_runs.check_the_first_run(runs)


def test_no_version_is_loadable_half_written(runs):
  # A version with saved_model.pb is one a server would load: it must hold
  # every file of the model pushed (the Trainer's SavedModel, and the serving
  # check's warm-up requests), at its size.
  assert runs['model_files'], 'the Trainer wrote no SavedModel'
  assert runs['model_files'].items() <= runs['stamped_files'].items()
  loadable = {version: found for version, found in runs['served_files'].items()
              if compiled_runs.SAVED_MODEL in found}
  assert loadable, runs['served_files']
  for version, found in loadable.items():
    assert found == runs['stamped_files'], (version, found, runs['stamped_files'])


def test_the_second_run_takes_the_first_push_as_baseline_and_does_not_push(runs):
  assert runs['second_error'] is None, runs['second_error']
  second = runs['second']
  served = compiled_runs.metadata(second, 'ServedModel', 'model')
  assert served['served_version'] == runs['served_after_first'][0]
  # A default pre-flight: its baseline is the copy of the first push (read
  # from the bucket) in its scratch serving dir.
  scratch = os.path.join(compiled_runs.run_compiled.run_folder(runs['work_dir'], 'second'),
                         compiled_runs.run_compiled.SCRATCH_SERVING_DIRNAME)
  assert served['served_path'] == f"{scratch}/{runs['served_after_first'][0]}"
  blessing = compiled_runs.metadata(second, 'Evaluator', 'blessing')
  assert blessing['blessed'] == 0.0
  assert blessing['baseline_model'] == second['ServedModel'].outputs['model'][0]['uri']
  assert second['ServingCheck'].state == second['Pusher'].state == 'SKIPPED'
  assert 'condition false' in second['ServingCheck'].reason
  # The Pusher's own condition is false too; run-compiled names the first cause.
  assert second['Pusher'].reason == "upstream skipped: ['ServingCheck']"
  assert second['VisualReport'].state == 'COMPLETE'  # Drawn, blessed or not.
  assert runs['served_after_second'] == runs['served_after_first']
