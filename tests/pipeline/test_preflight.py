"""A run's pre-flight: the image shape each source tells before it is read,
and a serving dir whose model takes another shape refused before anything
runs."""

import dataclasses
import os
import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common import saved_model
from components.common import serving_dir
from components.tfds_example_gen import preview
from components.tfds_example_gen import settings
from pipeline import preflight
import pipeline_config
from tests import idx_files


def _write_pngs(folder, count, height, width, channels, first_channels=None):
  """`count` PNGs in `folder`/a/, the first with `first_channels`."""
  rng = np.random.default_rng(0)
  os.makedirs(folder / 'a', exist_ok=True)
  for index in range(count):
    depth = first_channels if index == 0 and first_channels else channels
    pixels = rng.integers(0, 256, (height, width, depth), dtype=np.uint8)
    tf.io.write_file(str(folder / 'a' / f'{index:02d}.png'), tf.io.encode_png(pixels))
  return str(folder)


def test_vendored_idx_files_tell_their_shape_by_their_header(tmp_path):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  assert preview.image_shape(settings.DataSpec(source_dir=tiny.directory)) == (28, 28, 1)


def test_a_tfds_dataset_tells_its_shape_by_its_builder_s_features():
  data = settings.DataSpec(dataset='cifar10', source='tfds')
  assert preview.image_shape(data) == (32, 32, 3)


def test_a_folder_tells_the_first_image_s_size_and_colour(tmp_path):
  colour = _write_pngs(tmp_path / 'colour', 2, 12, 20, 3)
  assert preview.image_shape(settings.DataSpec(image_dir=colour)) == (12, 20, 3)
  # Grey first: another image may still be in colour (the dataset's then RGB).
  grey = _write_pngs(tmp_path / 'grey', 2, 12, 20, 3, first_channels=1)
  assert preview.image_shape(settings.DataSpec(image_dir=grey)) == (12, 20, None)
  resized = settings.DataSpec(image_dir=colour, image_size='16x16')
  assert preview.image_shape(resized) == (16, 16, 3)


def test_a_source_that_cannot_tell_yet_is_left_to_the_example_gen(tmp_path):
  (tmp_path / 'bad' / 'a').mkdir(parents=True)
  (tmp_path / 'bad' / 'a' / 'x.png').write_bytes(b'not a png')
  assert preview.image_shape(settings.DataSpec(image_dir=str(tmp_path / 'bad'))) is None
  assert preview.image_shape(settings.DataSpec(source_dir=str(tmp_path / 'none'))) is None


def test_a_shape_with_unknown_channels_differs_only_in_its_size():
  grey_or_colour = preview.ShapePreview(28, 28, None)
  assert not grey_or_colour.differs_from((28, 28, 1))
  assert not grey_or_colour.differs_from((28, 28, 3))
  assert grey_or_colour.differs_from((28, 30, 1))
  assert preview.ShapePreview(28, 28, 3).differs_from((28, 28, 1))


@pytest.fixture(scope='module')
def mnist_serving(tmp_path_factory):
  """A serving dir serving a model of 28x28x1 images."""
  base = tmp_path_factory.mktemp('serving')
  inputs = keras.Input((28, 28, 1))
  model = keras.Model(inputs, keras.layers.Lambda(lambda images: images)(inputs))
  saved_model.export_saved_model(model, str(base / 'export'))
  serving_dir.publish(str(base / 'export'), str(base / 'serving'))
  return str(base / 'serving')


def _config(serving, **data):
  return pipeline_config.PipelineConfig(serving_dir=serving,
                                        data=settings.DataSpec(**data))


def test_a_served_model_of_another_shape_is_refused_before_anything_runs(
    tmp_path, mnist_serving):
  photos = _write_pngs(tmp_path / 'photos', 3, 32, 32, 3)
  started = time.monotonic()
  with pytest.raises(pipeline_config.ConfigError) as refused:
    preflight.check_served_model_fits(_config(mnist_serving, image_dir=photos))
  assert time.monotonic() - started < 30
  message = str(refused.value)
  assert message.startswith("config field 'serving_dir': ")
  assert re.search(r': the served model \(version \d+\) takes 28x28x1 images but '
                   'the photos examples are 32x32x3', message), message
  assert message.endswith('nothing was run') and '\n' not in message


def test_data_of_the_served_shape_and_an_empty_serving_dir_pass(tmp_path, mnist_serving):
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  preflight.check_served_model_fits(_config(mnist_serving, source_dir=tiny.directory))
  grey = _write_pngs(tmp_path / 'digits', 2, 28, 28, 1)
  preflight.check_served_model_fits(_config(mnist_serving, image_dir=grey))
  photos = _write_pngs(tmp_path / 'photos', 2, 32, 32, 3)
  preflight.check_served_model_fits(_config(str(tmp_path / 'empty'), image_dir=photos))


def test_a_curated_schema_of_another_image_size_is_refused_before_anything_runs(tmp_path):
  mnist_schema = os.path.join(pipeline_config.default_schemas_dir(), 'mnist.pbtxt')
  photos = _write_pngs(tmp_path / 'photos', 2, 16, 16, 3)
  config = pipeline_config.PipelineConfig(
      schema_path=mnist_schema, data=settings.DataSpec(image_dir=photos))
  with pytest.raises(pipeline_config.ConfigError) as refused:
    preflight.check_schema_fits(config)
  assert str(refused.value).startswith(
      f"config field 'schema_path': {mnist_schema}: its 'image' feature has 784 "
      'values an image, but the photos images are 16x16x3 (768 values)')
  # MNIST's own data, and grey-or-colour 28x28 images, fit it.
  tiny = idx_files.make_tiny_mnist(str(tmp_path / 'mnist'))
  preflight.check_schema_fits(pipeline_config.PipelineConfig(
      data=settings.DataSpec(source_dir=tiny.directory)))
  digits = _write_pngs(tmp_path / 'digits', 2, 28, 28, 1)
  preflight.check_schema_fits(dataclasses.replace(
      config, data=settings.DataSpec(image_dir=digits)))
