"""The one configuration of the denoising-autoencoder pipeline.

Everything a user can tune is a field of a frozen dataclass below, defined
once with its unit and meaning. Two profiles exist:

* ``full`` (default): the whole dataset (all 70,000 MNIST images by default),
  the real training run.
* ``smoke``: a few hundred examples and a few steps, for tests and quick checks.

Nothing here does work at import time. Invalid values raise
:class:`ConfigError` naming the field when the object is built;
:func:`check_paths` checks the file-system side (writable roots) and is called
by the runners before any component runs.

Overrides (CLI ``--set section.field=value``) go through :func:`with_overrides`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import re
import tempfile
import typing
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

# The sections are the settings types of the components that take them
# (no TF import), each kept with its component; the data helpers are
# re-exported for the runners, the benchmarks and the tests.
from components.common.setting_specs import InvalidSetting
from components.common.noise.spec import NoiseSpec
from components.evaluator.settings import ThresholdSpec
from components.tfds_example_gen.settings import DataSpec
from components.tfds_example_gen.settings import default_source_dir
from components.tfds_example_gen.settings import SOURCE_VENDORED
from components.tfds_example_gen.settings import vendored_source_dir
from components.trainer.settings import TrainingSpec

PROFILES = ('full', 'smoke')

# A dataset other than the default one keeps its runs and models apart:
# `<base>/datasets/<dataset>/<pipeline_root or serving>` beside the profile's
# own (see dataset_locations).
DATASETS_DIRNAME = 'datasets'
# The fields that locate a run and its models, and take a dataset's own
# defaults.
LOCATION_FIELDS = ('pipeline_root', 'serving_dir')

# Names of Beam's local runner (Beam runs inside the calling process's host).
DIRECT_RUNNERS = ('DirectRunner', 'direct')

def repository_root() -> str:
  """The directory of this file: the repository (or installed) root."""
  return os.path.dirname(os.path.abspath(__file__))


def default_schemas_dir() -> str:
  """The project's directory of curated schemas (schemas/)."""
  return os.path.join(repository_root(), 'schemas')


def schema_file_name(dataset: str) -> str:
  """The file name of a TFDS dataset's curated schema: its name without the
  version (every version of a dataset has the same features), a config's
  '/' as '-': 'mnist' -> 'mnist.pbtxt', 'emnist/letters:3.*.*' ->
  'emnist-letters.pbtxt'."""
  return dataset.partition(':')[0].replace('/', '-') + '.pbtxt'


class ConfigError(InvalidSetting):
  """A configuration value is invalid; the message names the field (a
  section's as `<section>.<field>`)."""

  def __init__(self, field: str, message: str):
    ValueError.__init__(self, f'config field {field!r}: {message}')
    self.field = field
    self.reason = message


@contextlib.contextmanager
def _naming_section(section: str) -> Iterator[None]:
  """Turns a section's refusal (its spec's InvalidSetting) into a ConfigError
  naming `<section>.<field>`: the one place a component's error becomes the
  configuration's."""
  try:
    yield
  except InvalidSetting as error:
    raise ConfigError(f'{section}.{error.field}', error.reason) from None


# Fields that were renamed: {old dotted name: new one}, so that an old
# `--set` says where its setting went instead of "unknown".
RENAMED_FIELDS = {
    'thresholds.max_digit_psnr_drop_db': 'thresholds.max_class_psnr_drop_db',
}


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """The whole pipeline's configuration.

  Attributes:
    profile: The profile these values started from ('full' or 'smoke').
    pipeline_name: Name of the pipeline in MLMD and on the orchestrator.
    pipeline_root: Directory of all artifacts (and, by default, of MLMD). A
      dataset other than MNIST has its own by default:
      `build/[smoke/]datasets/<name>/pipeline_root`.
    metadata_path: MLMD SQLite file; None for `<pipeline_root>/metadata.sqlite`.
    serving_dir: Where blessed models are pushed, one version directory each.
      A dataset other than MNIST has its own by default:
      `build/[smoke/]datasets/<name>/serving`.
    enable_cache: Reuse the outputs of executions whose inputs did not change.
    schema_path: A curated schema (text proto) to validate the data
      against. None: the dataset's `<schemas_dir>/<dataset>.pbtxt` when there
      is one, else the schema TFX infers from the train split (an image
      folder's curated schema can only be given here).
    schemas_dir: Directory of the curated schemas of TFDS datasets, one
      `<dataset>.pbtxt` each ('/' of a config name as '-', no version).
    beam_pipeline_args: Arguments of every Beam pipeline the components run.
    data: Which images are ingested and how they are split: the
      ExampleGen's DataSpec (components/tfds_example_gen/settings.py).
    noise: The corruption applied to clean images: NoiseSpec
      (components/common/noise/spec.py).
    training: How the model is trained: the Trainer's TrainingSpec
      (components/trainer/settings.py).
    thresholds: The push gate: the Evaluator's ThresholdSpec
      (components/evaluator/settings.py).
  """
  profile: str = 'full'
  pipeline_name: str = 'mnist-dae'
  pipeline_root: str = 'build/pipeline_root'
  metadata_path: Optional[str] = None
  serving_dir: str = 'build/serving'
  enable_cache: bool = True
  schema_path: Optional[str] = None
  schemas_dir: str = dataclasses.field(default_factory=default_schemas_dir)
  beam_pipeline_args: Tuple[str, ...] = ('--direct_running_mode=in_memory',
                                         '--direct_num_workers=1')
  data: DataSpec = dataclasses.field(default_factory=DataSpec)
  noise: NoiseSpec = dataclasses.field(default_factory=NoiseSpec)
  training: TrainingSpec = dataclasses.field(default_factory=TrainingSpec)
  thresholds: ThresholdSpec = dataclasses.field(default_factory=ThresholdSpec)

  def __post_init__(self):
    ConfigError.require(
        self.profile in PROFILES, 'profile',
        f'unknown profile {self.profile!r}; one of {", ".join(PROFILES)}')
    ConfigError.require(bool(self.pipeline_name.strip()), 'pipeline_name',
                        'must not be empty')
    for name in ('pipeline_root', 'serving_dir', 'schemas_dir'):
      ConfigError.require(bool(getattr(self, name)), name, 'must not be empty')
    ConfigError.require(isinstance(self.beam_pipeline_args, tuple),
                        'beam_pipeline_args', 'must be a tuple of strings')
    # Fresh noise keys each example by its pixels; a whole train image is
    # cropped after it is noised, so the two do not combine.
    ConfigError.require(
        not (self.data.patch_size and self.training.fresh_noise),
        'training.fresh_noise', 'does not apply with data.patch_size (the '
        'Trainer crops whole noised images anew every epoch); turn one off')

  @property
  def beam_runner(self) -> str:
    """The Beam runner `beam_pipeline_args` name (the last --runner wins)."""
    runners = [arg.partition('=')[2] for arg in self.beam_pipeline_args
               if arg.startswith('--runner=')]
    return runners[-1] if runners else 'DirectRunner'

  @property
  def resolved_metadata_path(self) -> str:
    """The MLMD SQLite path, defaulting to one inside the pipeline root."""
    return self.metadata_path or os.path.join(self.pipeline_root,
                                              'metadata.sqlite')


def _smoke() -> PipelineConfig:
  return PipelineConfig(
      profile='smoke',
      pipeline_name='mnist-dae-smoke',
      pipeline_root='build/smoke/pipeline_root',
      serving_dir='build/smoke/serving',
      data=DataSpec(train_examples=512, eval_examples=128, test_examples=256),
      training=TrainingSpec(epochs=4, batch_size=64, max_train_steps=32),
      # 32 steps cannot reach the full profile's quality, but the gate still
      # refuses the untrained model (a black image) and one no better than
      # the noisy input itself.
      thresholds=ThresholdSpec(min_psnr_db=16.0, max_mse=0.025),
  )


def load_profile(profile: str = 'full') -> PipelineConfig:
  """Returns the configuration of a named profile."""
  if profile == 'full':
    return PipelineConfig()
  if profile == 'smoke':
    return _smoke()
  raise ConfigError('profile',
                    f'unknown profile {profile!r}; one of {", ".join(PROFILES)}')


def dataset_slug(data: DataSpec) -> Optional[str]:
  """The folder name of a dataset's own default locations: the image folder's
  name, or the TFDS name without its version ('emnist/letters' ->
  'emnist-letters'); None for the default dataset, whose locations are the
  profile's."""
  if data.image_dir is None:
    if data.dataset == DataSpec().dataset:
      return None
    name = schema_file_name(data.dataset)[:-len('.pbtxt')]
  else:
    name = data.image_dir.rstrip('/').rpartition('/')[2]
  return re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-.') or 'images'


def dataset_location(path: str, slug: str) -> str:
  """A profile's default location moved into a dataset's own folder:
  'build/smoke/serving' -> 'build/smoke/datasets/<slug>/serving'."""
  head, tail = os.path.split(path.rstrip('/'))
  return os.path.join(head, DATASETS_DIRNAME, slug, tail)


def with_dataset_locations(config: PipelineConfig,
                           explicit: Iterable[str] = ()) -> PipelineConfig:
  """`config` with its dataset's own default locations: a pipeline root or
  serving dir that is still its profile's default (and not in `explicit`,
  the fields the user named) moves to `dataset_location`, so that a model
  of one dataset is never the baseline of, or pushed over, another's; the
  default dataset keeps the profile's."""
  slug = dataset_slug(config.data)
  if slug is None:
    return config
  profile = load_profile(config.profile)
  moved = {name: dataset_location(getattr(config, name), slug)
           for name in LOCATION_FIELDS
           if name not in explicit and getattr(config, name) == getattr(profile, name)}
  return dataclasses.replace(config, **moved)


# How a value that does not parse as a field's number type is described.
_NUMBER_WORDS = {int: 'a whole number', float: 'a number'}


def _parse_value(field: dataclasses.Field, owner: type, text: str) -> Any:
  """Converts a CLI string to the type of a dataclass field."""
  hint = typing.get_type_hints(owner)[field.name]
  optional = type(None) in typing.get_args(hint)
  if optional:
    if text.lower() in ('none', 'null', ''):
      return None
    hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
  if typing.get_origin(hint) is tuple:
    return tuple(part for part in text.split(',') if part)
  if hint is bool:
    if text.lower() in ('true', '1', 'yes', 'on'):
      return True
    if text.lower() in ('false', '0', 'no', 'off'):
      return False
    raise ValueError(f'{text!r} is not a boolean (true or false)')
  if hint in _NUMBER_WORDS:
    try:
      return hint(text)
    except ValueError:
      raise ValueError(f'{text!r} is not {_NUMBER_WORDS[hint]}') from None
  return hint(text)


def _dotted_fields(config: 'PipelineConfig') -> list:
  """Every field `--set` takes: 'section.field', or 'field' at the top."""
  dotted = []
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if dataclasses.is_dataclass(value):
      dotted += [f'{field.name}.{inner.name}' for inner in dataclasses.fields(value)]
    else:
      dotted.append(field.name)
  return dotted


def _unknown(config: 'PipelineConfig', dotted: str, what: str) -> 'ConfigError':
  """The error of an unknown field, naming the nearest known one, if any."""
  near = difflib.get_close_matches(dotted, _dotted_fields(config), n=1, cutoff=0.75)
  return ConfigError(dotted, f'unknown configuration {what}' + (
      f'; did you mean {near[0]!r}?' if near else ''))


def with_overrides(config: PipelineConfig,
                   overrides: Mapping[str, Any]) -> PipelineConfig:
  """Returns `config` with dotted fields replaced (e.g. 'noise.stddev').

  String values are converted to the field's type, so CLI text can be passed
  as is. Unknown fields and invalid values raise ConfigError naming the field.
  """
  nested: Dict[str, Dict[str, Any]] = {}
  top: Dict[str, Any] = {}
  for dotted, value in overrides.items():
    if dotted in RENAMED_FIELDS:
      raise ConfigError(dotted, f'renamed to {RENAMED_FIELDS[dotted]}')
    section, _, name = dotted.rpartition('.')
    owner = type(getattr(config, section, None)) if section else PipelineConfig
    if section and not dataclasses.is_dataclass(owner):
      raise _unknown(config, dotted, 'section')
    fields = {f.name: f for f in dataclasses.fields(owner)}
    if name not in fields or (not section and
                              dataclasses.is_dataclass(getattr(config, name))):
      raise _unknown(config, dotted, 'field')
    if isinstance(value, str):
      try:
        value = _parse_value(fields[name], owner, value)
      except ValueError as error:
        raise ConfigError(dotted, str(error)) from None
    (nested.setdefault(section, {}) if section else top)[name] = value
  for section, values in nested.items():
    with _naming_section(section):
      top[section] = dataclasses.replace(getattr(config, section), **values)
  return with_dataset_locations(dataclasses.replace(config, **top),
                                explicit=overrides)


def ineffective_settings(config: PipelineConfig,
                         assigned: Iterable[str]) -> List[str]:
  """What of the fields a user set the rest of `config` makes ineffective, a
  line each: so far, epochs beyond training.max_train_steps (known when the
  train split's size is set; one replica).

  Args:
    config: The configuration, the user's values applied.
    assigned: The dotted fields the user set (`--set`).
  """
  from components.trainer import plan as plan_lib  # pylint: disable=g-import-not-at-top
  training, train_examples = config.training, config.data.train_examples
  if ('training.epochs' not in assigned or training.max_train_steps is None
      or train_examples is None):
    return []
  plan = plan_lib.plan_training(train_examples, training.batch_size,
                                training.epochs, training.max_train_steps)
  if plan.epochs >= training.epochs:
    return []
  return [f'training.epochs={training.epochs} has no effect beyond {plan.epochs}: '
          f'training.max_train_steps={training.max_train_steps} stops training '
          f'after {plan.epochs} epoch(s) of {plan.steps_per_epoch} steps (set '
          'training.max_train_steps=none to train every epoch)']


def parse_assignments(items, usage: str) -> Dict[str, str]:
  """{'name': 'value'} from command-line items 'name=value'.

  Raises:
    ConfigError: an item has no '=' or no name; `usage` says the form.
  """
  parsed = {}
  for item in items:
    name, separator, value = item.partition('=')
    if not separator or not name.strip():
      raise ConfigError(item, f'expected {usage}')
    parsed[name.strip()] = value.strip()
  return parsed


def _check_writable_dir(field: str, path: str) -> None:
  """Raises ConfigError unless `path` is, or can be made, a writable directory.

  A directory is made and removed again in the deepest part of `path` that
  exists: permission bits alone say nothing to root, nor of read-only or
  virtual file systems (/proc). Nothing is left behind.
  """
  if '://' in path:  # Remote file systems are checked by their clients.
    return
  probe = os.path.abspath(path)
  while not os.path.exists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  if not os.path.isdir(probe):
    raise ConfigError(field, f'{path!r} is not a directory ({probe} is a file)')
  try:
    os.rmdir(tempfile.mkdtemp(prefix='.dae-pipeline-probe-', dir=probe))
  except OSError as error:
    raise ConfigError(field, f'{path!r} cannot be created or written in '
                      f'{probe}: {error.strerror}') from None


def check_paths(config: PipelineConfig) -> None:
  """Checks the file-system side of a config before any component runs."""
  _check_writable_dir('pipeline_root', config.pipeline_root)
  _check_writable_dir('serving_dir', config.serving_dir)
  _check_writable_dir('metadata_path',
                      os.path.dirname(config.resolved_metadata_path) or '.')
  if config.schema_path is not None and not os.path.isfile(config.schema_path):
    raise ConfigError('schema_path', f'{config.schema_path!r} is not a file')
  data = config.data
  if data.image_dir is not None:
    if '://' not in data.image_dir and not os.path.isdir(data.image_dir):
      raise ConfigError('data.image_dir',
                        f'{data.image_dir!r} is not a directory')
  elif data.source == SOURCE_VENDORED and not os.path.isdir(
      vendored_source_dir(data)):
    raise ConfigError('data.source_dir',
                      f'{vendored_source_dir(data)!r} is not a directory')


def schema_location(config: PipelineConfig) -> Optional[str]:
  """Where the curated schema of the configured TFDS dataset lives, whether
  or not it exists yet (`dae-pipeline schema` writes it there); None for an
  image folder, whose schema only `schema_path` names."""
  if config.data.image_dir is not None:
    return None
  return os.path.join(config.schemas_dir, schema_file_name(config.data.dataset))


def curated_schema_path(config: PipelineConfig) -> Optional[str]:
  """The curated schema the data is validated against: `schema_path` when
  given, else the dataset's file in `schemas_dir` when there is one. None:
  the pipeline infers the schema from the train split (TFX SchemaGen)."""
  if config.schema_path is not None:
    return config.schema_path
  location = schema_location(config)
  return location if location and os.path.isfile(location) else None
