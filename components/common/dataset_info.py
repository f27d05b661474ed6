"""What a dataset's images are: the one description every component reads.

The ExampleGen reads it from the dataset (a TFDS builder's features, or an
image folder) and records it on its Examples artifact; NoiseTransform copies
it onto its own. Every component downstream (noise, Trainer, Evaluator,
report, serving) takes image size, channels and class names from there,
never from constants: the dataset is data.
"""

import dataclasses
import json
from typing import Optional, Tuple

# Custom property of the Examples artifacts of the ExampleGen and
# NoiseTransform: JSON of a DatasetInfo.
PROPERTY = 'dataset_info'
CHANNELS = (1, 3)  # Grey or RGB.
# The smallest image side the pipeline takes: the evaluation's SSIM window
# (tf.image.ssim's default, 11x11: components/common/metrics.py) must fit.
MIN_SIDE = 11


class MissingDatasetInfo(ValueError):
  """An Examples artifact carries no dataset description."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """A dataset's images and classes.

  Attributes:
    name: What the dataset is called (a TFDS name, or the image folder's).
    image_shape: (height, width, channels) of every image; channels 1 or 3.
    class_names: The name of each label value, in order; () when the images
      have no labels (a flat image folder): no `label` feature, no per-class
      slices.
    whole_train_values: None: every example of every split is an image of
      `image_shape`. Otherwise the train split holds whole images of any
      size (at least `image_shape`, with `height` and `width` features;
      `data.patch_size`) totalling this many values, which the Trainer
      crops to `image_shape` anew every epoch; eval and test hold images of
      `image_shape` (centre patches).
  """
  name: str
  image_shape: Tuple[int, int, int]
  class_names: Tuple[str, ...] = ()
  whole_train_values: Optional[int] = None

  def __post_init__(self):
    object.__setattr__(self, 'image_shape',
                       tuple(int(side) for side in self.image_shape))
    object.__setattr__(self, 'class_names',
                       tuple(str(name) for name in self.class_names))
    if len(self.image_shape) != 3 or min(self.image_shape[:2]) <= 0:
      raise ValueError(f'dataset {self.name!r}: image shape {self.image_shape} '
                       'is not (height, width, channels)')
    if self.image_shape[2] not in CHANNELS:
      raise ValueError(f'dataset {self.name!r}: {self.image_shape[2]} channels; '
                       'only grey (1) or RGB (3) images are supported')

  @property
  def pixels(self) -> int:
    """Values per image: height x width x channels (row-major, channels last)."""
    height, width, channels = self.image_shape
    return height * width * channels

  @property
  def whole_train_images(self) -> bool:
    """Whether the train split holds whole images of any size, each with
    its `height` and `width` (`whole_train_values`)."""
    return self.whole_train_values is not None

  @property
  def labeled(self) -> bool:
    """Whether the examples carry a `label` feature (and per-class slices)."""
    return bool(self.class_names)

  def describe(self) -> str:
    """One line for people: 'mnist: 28x28x1 images, 10 classes (0, 1, ...)'."""
    shape = 'x'.join(map(str, self.image_shape))
    images = (f'{shape} patches of whole train images' if self.whole_train_images
              else f'{shape} images')
    names = ', '.join(self.class_names[:5]) + (', ...' if len(self.class_names) > 5
                                               else '')
    classes = (f'{len(self.class_names)} classes ({names})' if self.labeled
               else 'no labels')
    return f'{self.name}: {images}, {classes}'

  def class_name(self, label: int) -> str:
    """The name of a label value (its number when out of range)."""
    if 0 <= label < len(self.class_names):
      return self.class_names[label]
    return str(label)

  def to_json(self) -> str:
    values = dataclasses.asdict(self)
    if self.whole_train_values is None:
      # Left out, so that a dataset of one shape is described as before.
      del values['whole_train_values']
    return json.dumps(values, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'DatasetInfo':
    values = json.loads(text)
    return cls(name=values['name'], image_shape=values['image_shape'],
               class_names=values.get('class_names', ()),
               whole_train_values=values.get('whole_train_values'))


def served_model_of_another_shape(version: str, served_shape,
                                  dataset: str, dataset_shape) -> str:
  """Why a served model cannot be the baseline of a dataset: the start of the
  one message of the Evaluator's check and of the runners' pre-flight.

  Args:
    version: The served version.
    served_shape: (height, width, channels) the served model takes.
    dataset: The dataset's name.
    dataset_shape: Its images' shape (anything whose str is HxWxC, or a
      tuple).
  """
  def named(shape):
    return 'x'.join(map(str, shape)) if isinstance(shape, (tuple, list)) else str(shape)
  return (f'the served model (version {version}) takes {named(served_shape)} '
          f'images but the {dataset} examples are {named(dataset_shape)}: give '
          'this dataset a serving dir (and pipeline root) of its own, '
          '--serving-dir and --pipeline-root, or leave both unset for its '
          'default ones')


def record(examples, info: DatasetInfo) -> None:
  """Records `info` on an Examples artifact."""
  examples.set_string_custom_property(PROPERTY, info.to_json())


def recorded(examples) -> DatasetInfo:
  """The DatasetInfo recorded on an Examples artifact.

  Raises:
    MissingDatasetInfo: the artifact has none (not written by this project's
      ExampleGen or NoiseTransform).
  """
  if not examples.has_custom_property(PROPERTY):
    raise MissingDatasetInfo(
        f'examples {examples.uri} carry no {PROPERTY!r} property: they were not '
        "written by this project's ExampleGen or NoiseTransform")
  return DatasetInfo.from_json(examples.get_string_custom_property(PROPERTY))


def copy(source, destination) -> None:
  """Copies the description from one Examples artifact to another."""
  record(destination, recorded(source))

