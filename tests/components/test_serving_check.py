"""The serving check: a fresh process loads the model and every signature
answers canaries, or the InfraBlessing says why not and nothing is pushed."""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils
from tfx.utils import proto_utils
from tfx.proto import pusher_pb2

from components.common import dataset_info
from components.common import names
from components.pusher import executor as pusher_executor
from components.serving_check import executor
from components.serving_check import probe
from components.common import saved_model

pytestmark = pytest.mark.slow

INFO = dataset_info.DatasetInfo('tiny', (12, 12, 1), ('a', 'b'))
SHAPE = INFO.image_shape
TEST_EXAMPLES = 6


def _noisy(count=TEST_EXAMPLES, seed=0):
  rng = np.random.default_rng(seed)
  clean = rng.uniform(0.1, 0.9, (count,) + SHAPE).astype(np.float32)
  return clean + rng.normal(0, 0.2, clean.shape).astype(np.float32), clean


def _write_split(split_dir, noisy, clean):
  split_dir.mkdir(parents=True)
  with tf.io.TFRecordWriter(str(split_dir / 'data.gz'), 'GZIP') as writer:
    for noisy_image, clean_image in zip(noisy, clean):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          names.NOISY: tf.train.Feature(float_list=tf.train.FloatList(
              value=noisy_image.reshape(-1))),
          names.CLEAN: tf.train.Feature(float_list=tf.train.FloatList(
              value=clean_image.reshape(-1))),
      })).SerializeToString())


def _examples(root):
  """NoiseTransform's test split of TEST_EXAMPLES tiny images."""
  _write_split(root / 'examples' / 'Split-test', *_noisy())
  examples = standard_artifacts.Examples()
  examples.uri = str(root / 'examples')
  examples.split_names = json.dumps(['test'])
  dataset_info.record(examples, INFO)
  return examples


def _good_model(uri):
  """The Trainer's export of a model that halves and brightens, in [0, 1]:
  for images of any size, as a fully convolutional model is exported."""
  inputs = keras.Input((None, None, SHAPE[-1]))
  outputs = keras.layers.Lambda(
      lambda images: keras.ops.clip(images * 0.5 + 0.25, 0.0, 1.0))(inputs)
  saved_model.export_saved_model(keras.Model(inputs, outputs),
                                 path_utils.serving_model_path(uri),
                                 trained_shape=SHAPE)
  return uri


def _denoise(images):
  return tf.clip_by_value(images * 0.5 + 0.25, 0.0, 1.0)


def _parse(examples):
  parsed = tf.io.parse_example(examples, {names.NOISY: tf.io.FixedLenFeature(
      [int(np.prod(SHAPE))], tf.float32)})
  return tf.reshape(parsed[names.NOISY], (-1,) + SHAPE)


class _Served(tf.Module):
  """A hand-built SavedModel: the images and examples signatures, and the
  PNG bytes one, each of which a test may break."""

  def __init__(self, images_fn=_denoise, examples_fn=_denoise,
               bytes_offset=0):
    super().__init__()
    self._images_fn, self._examples_fn = images_fn, examples_fn
    self._bytes_offset = bytes_offset

  @tf.function(input_signature=[tf.TensorSpec((None,) + SHAPE, tf.float32,
                                              name='images')])
  def images(self, images):
    return {saved_model.OUTPUT_KEY: self._images_fn(images)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                              name='examples')])
  def examples(self, examples):
    return {saved_model.OUTPUT_KEY: self._examples_fn(_parse(examples))}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                              name='image_bytes')])
  def image_bytes(self, image_bytes):
    images = tf.map_fn(lambda png: tf.io.decode_png(png, channels=SHAPE[2]),
                       image_bytes, fn_output_signature=tf.uint8)
    levels = tf.round(_denoise(tf.cast(images, tf.float32) / 255.0) * 255.0)
    levels = tf.cast(tf.clip_by_value(levels + self._bytes_offset, 0, 255),
                     tf.uint8)
    return {'denoised_bytes': tf.map_fn(tf.io.encode_png, levels,
                                        fn_output_signature=tf.string)}


def _hand_built(uri, with_bytes=True, **broken):
  module = _Served(**broken)
  signatures = {saved_model.IMAGES_SIGNATURE: module.images,
                saved_model.EXAMPLES_SIGNATURE: module.examples}
  if with_bytes:
    signatures['serving_image_bytes'] = module.image_bytes
  tf.saved_model.save(module, path_utils.serving_model_path(uri),
                      signatures=signatures)
  return uri


def _fails_at_call_time(images):
  # Raises when run: a batch never has -1 images.
  with tf.control_dependencies([tf.debugging.assert_equal(
      tf.shape(images)[0], -1, message='broken on purpose')]):
    return tf.identity(images)


def _nan(images):
  return images * np.float32('nan')


def _check(root, model_uri, evaluator_blessed=True, **exec_changes):
  """Runs the ServingCheck executor; returns its InfraBlessing."""
  model = standard_artifacts.Model()
  model.uri = model_uri
  model_blessing = standard_artifacts.ModelBlessing()
  model_blessing.set_int_custom_property('blessed', int(evaluator_blessed))
  blessing = standard_artifacts.InfraBlessing()
  blessing.uri = str(root / 'infra_blessing')
  executor.Executor().Do(
      {executor.MODEL_KEY: [model], executor.MODEL_BLESSING_KEY: [model_blessing],
       executor.EXAMPLES_KEY: [_examples(root)]},
      {executor.BLESSING_KEY: [blessing]},
      {executor.SPLIT_KEY: 'test', executor.CANARIES_KEY: 3,
       executor.TIMEOUT_KEY: 300, **exec_changes})
  return blessing


def _push(root, model_uri, infra_blessing=None, name='pushed'):
  """Runs our Pusher's executor on the model (and InfraBlessing) into
  `root`/serving; returns its PushedModel."""
  model = standard_artifacts.Model()
  model.uri = model_uri
  model_blessing = standard_artifacts.ModelBlessing()
  model_blessing.set_int_custom_property('blessed', 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(root / name)
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(
          base_directory=str(root / 'serving')))
  inputs = {'model': [model], 'model_blessing': [model_blessing]}
  if infra_blessing is not None:
    inputs['infra_blessing'] = [infra_blessing]
  pusher_executor.Executor().Do(
      inputs, {'pushed_model': [pushed]},
      {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed


@pytest.fixture(scope='module')
def good(tmp_path_factory):
  """A good model's check, run once: (root, model uri, InfraBlessing)."""
  root = tmp_path_factory.mktemp('good')
  model_uri = _good_model(str(root / 'model'))
  return root, model_uri, _check(root, model_uri)


def test_a_good_model_is_blessed_with_its_load_time_and_latencies(good):
  _, _, blessing = good
  assert blessing.get_int_custom_property(executor.BLESSED_PROPERTY) == 1
  assert blessing.get_string_custom_property(executor.FAILURE_PROPERTY) == ''
  assert blessing.get_int_custom_property(executor.HAS_MODEL_PROPERTY) == 1
  assert os.path.exists(os.path.join(blessing.uri, executor.BLESSED_FILENAME))
  assert blessing.get_float_custom_property(executor.LOAD_SECONDS_PROPERTY) > 0
  p50 = blessing.get_float_custom_property(executor.LATENCY_P50_PROPERTY)
  p99 = blessing.get_float_custom_property(executor.LATENCY_P99_PROPERTY)
  assert 0 < p50 <= p99
  with open(os.path.join(blessing.uri, probe.RESULT_FILENAME)) as result_file:
    result = json.load(result_file)
  assert set(result[probe.SIGNATURES]) == {
      saved_model.IMAGES_SIGNATURE, saved_model.EXAMPLES_SIGNATURE,
      saved_model.IMAGE_BYTES_SIGNATURE}
  assert result[probe.SIGNATURES][saved_model.IMAGES_SIGNATURE]['inputs'] == {
      'images': 'images'}


def test_the_warm_up_requests_parse_and_the_model_answers_each(good):
  _, _, blessing = good
  stamped = path_utils.stamped_model_path(blessing.uri)
  warmup = os.path.join(stamped, executor.WARMUP_RELATIVE_PATH)
  logs = [prediction_log_pb2.PredictionLog.FromString(record) for record in
          tf.data.TFRecordDataset(warmup).as_numpy_iterator()]
  assert {log.predict_log.request.model_spec.signature_name for log in logs} == {
      saved_model.IMAGES_SIGNATURE, saved_model.EXAMPLES_SIGNATURE,
      saved_model.IMAGE_BYTES_SIGNATURE}
  loaded = tf.saved_model.load(stamped)  # The stamped copy loads too.
  for log in logs:
    request = log.predict_log.request
    outputs = loaded.signatures[request.model_spec.signature_name](**{
        name: tf.constant(tf.make_ndarray(tensor))
        for name, tensor in request.inputs.items()})
    if saved_model.DENOISED_BYTES_KEY in outputs:  # PNG files, one per request.
      images = [tf.io.decode_png(png) for png in outputs[saved_model.DENOISED_BYTES_KEY]]
      assert [tuple(image.shape) for image in images] == [SHAPE] * 3
    else:
      assert outputs[saved_model.OUTPUT_KEY].shape == (3,) + SHAPE


def test_the_pusher_pushes_the_stamped_model_once(good, tmp_path):
  _, model_uri, blessing = good
  pushed = _push(tmp_path, model_uri, blessing)
  assert pushed.get_int_custom_property('pushed') == 1
  version = pushed.get_string_custom_property('pushed_destination')
  assert os.path.isfile(os.path.join(version, executor.WARMUP_RELATIVE_PATH))
  # The Trainer's model is the stamped copy but its warm-up requests: the
  # same model, not pushed again.
  again = _push(tmp_path, model_uri, name='again')
  assert again.get_int_custom_property('pushed') == 0
  assert again.get_string_custom_property(
      pusher_executor.ALREADY_SERVED_VERSION_KEY) == os.path.basename(version)


def test_a_model_whose_signatures_fail_or_answer_nan_is_not_blessed(tmp_path):
  model_uri = _hand_built(str(tmp_path / 'model'), with_bytes=False,
                          images_fn=_fails_at_call_time, examples_fn=_nan)
  blessing = _check(tmp_path, model_uri)
  assert blessing.get_int_custom_property(executor.BLESSED_PROPERTY) == 0
  assert not blessing.get_int_custom_property(executor.HAS_MODEL_PROPERTY)
  assert os.path.exists(os.path.join(blessing.uri, executor.NOT_BLESSED_FILENAME))
  failure = blessing.get_string_custom_property(executor.FAILURE_PROPERTY)
  assert '\n' not in failure
  assert ("signature 'serving_default' failed on its canaries: "
          'InvalidArgumentError: assertion failed: [broken on purpose]') in failure
  assert "signature 'serving_examples' output 'output' has non-finite" in failure
  # And the Pusher pushes nothing.
  pushed = _push(tmp_path, model_uri, blessing)
  assert pushed.get_int_custom_property('pushed') == 0
  assert not (tmp_path / 'serving').exists()


def test_an_unblessed_model_is_not_probed(tmp_path):
  blessing = _check(tmp_path, str(tmp_path / 'no-model'), evaluator_blessed=False)
  assert blessing.get_int_custom_property(executor.BLESSED_PROPERTY) == 0
  assert 'did not bless' in blessing.get_string_custom_property(
      executor.FAILURE_PROPERTY)


def test_a_probe_past_its_timeout_is_a_failure(tmp_path):
  blessing = _check(tmp_path, _good_model(str(tmp_path / 'model')),
                    **{executor.TIMEOUT_KEY: 1})
  assert blessing.get_int_custom_property(executor.BLESSED_PROPERTY) == 0
  assert blessing.get_string_custom_property(executor.FAILURE_PROPERTY) == (
      'the model did not load and answer its canaries within 1 s')


def _warmup_images(blessing):
  """The images of the warm-up request of the images signature: the canaries."""
  warmup = os.path.join(path_utils.stamped_model_path(blessing.uri),
                        executor.WARMUP_RELATIVE_PATH)
  for record in tf.data.TFRecordDataset(warmup).as_numpy_iterator():
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    if request.model_spec.signature_name == saved_model.IMAGES_SIGNATURE:
      return tf.make_ndarray(request.inputs['images'])
  raise AssertionError(f'no {saved_model.IMAGES_SIGNATURE} request in {warmup}')


def test_the_pipeline_s_serving_check_sends_canaries_of_the_test_split(tmp_path):
  """Run with the pipeline's own ServingCheck settings on examples whose
  train split holds other images, the canaries are the test split's first."""
  from pipeline import pipeline as pipeline_module  # pylint: disable=g-import-not-at-top
  import pipeline_config  # pylint: disable=g-import-not-at-top
  dag = pipeline_module.create_pipeline(pipeline_config.load_profile('smoke'))
  serving_check = {node.id: node for node in dag.components}[
      names.SERVING_CHECK_NODE]
  examples = _examples(tmp_path)
  _write_split(tmp_path / 'examples' / 'Split-train', *_noisy(seed=1))
  examples.split_names = json.dumps(['test', 'train'])
  model = standard_artifacts.Model()
  model.uri = _good_model(str(tmp_path / 'model'))
  model_blessing = standard_artifacts.ModelBlessing()
  model_blessing.set_int_custom_property('blessed', 1)
  blessing = standard_artifacts.InfraBlessing()
  blessing.uri = str(tmp_path / 'infra_blessing')
  executor.Executor().Do(
      {executor.MODEL_KEY: [model], executor.MODEL_BLESSING_KEY: [model_blessing],
       executor.EXAMPLES_KEY: [examples]},
      {executor.BLESSING_KEY: [blessing]}, dict(serving_check.exec_properties))
  assert blessing.get_int_custom_property(executor.BLESSED_PROPERTY) == 1
  canaries = _warmup_images(blessing)
  count = serving_check.exec_properties[executor.CANARIES_KEY]
  assert canaries.shape == (count,) + SHAPE
  np.testing.assert_array_equal(canaries, _noisy()[0][:count])


# The probe itself, in this process (the executor runs it in a fresh one).

def _probed(tmp_path, **broken):
  model_dir = path_utils.serving_model_path(
      _hand_built(str(tmp_path / 'model'), **broken))
  return probe.probe(model_dir, _noisy(3)[0], str(tmp_path))


def test_a_png_bytes_signature_is_fed_pngs_and_checked_to_one_grey_level(tmp_path):
  result = _probed(tmp_path)
  assert result[probe.FAILURES] == []
  assert result[probe.SIGNATURES]['serving_image_bytes']['inputs'] == {
      'image_bytes': 'png_bytes'}
  assert result[probe.SIGNATURES]['serving_image_bytes']['outputs'] == [
      'denoised_bytes']


def test_a_png_bytes_signature_off_by_grey_levels_is_a_failure(tmp_path):
  result = _probed(tmp_path, bytes_offset=3)
  # 3 levels, and up to half a level of the reference's own rounding.
  assert len(result[probe.FAILURES]) == 1
  assert re.fullmatch(
      r"signature 'serving_image_bytes' output 'denoised_bytes' differs from "
      r"'serving_examples' by 3(\.\d+)? grey levels \(> 1\)",
      result[probe.FAILURES][0])


def test_signatures_that_disagree_or_leave_the_unit_range_are_failures(tmp_path):
  result = _probed(tmp_path, with_bytes=False,
                   images_fn=lambda images: _denoise(images) + 1e-3)
  assert len(result[probe.FAILURES]) == 1
  assert result[probe.FAILURES][0].startswith(
      "signature 'serving_default' output 'output' differs from "
      "'serving_examples' by 0.001")
  result = _probed(tmp_path / 'range', with_bytes=False,
                   images_fn=lambda images: images * 2.0 + 1.0,
                   examples_fn=lambda images: images * 2.0 + 1.0)
  assert [failure.split(':')[0] for failure in result[probe.FAILURES]] == [
      "signature 'serving_default' output 'output' leaves [0, 1]",
      "signature 'serving_examples' output 'output' leaves [0, 1]"]


def test_a_signature_compared_with_a_nan_reference_is_a_failure(tmp_path):
  result = _probed(tmp_path, with_bytes=False, examples_fn=_nan)
  assert result[probe.FAILURES] == [
      "signature 'serving_default' output 'output' differs from "
      "'serving_examples' by nan (> 1e-05)",
      "signature 'serving_examples' output 'output' has non-finite values "
      '(NaN/inf)']


def test_the_infra_blessing_is_named_as_tfx_s_infra_validator_and_pusher_name_it():
  from tfx.components.infra_validator import executor as infra_validator  # pylint: disable=g-import-not-at-top
  from tfx.components.pusher import executor as tfx_pusher  # pylint: disable=g-import-not-at-top
  # pylint: disable=protected-access
  assert (executor.BLESSED_PROPERTY, executor.HAS_MODEL_PROPERTY,
          executor.BLESSED_FILENAME, executor.NOT_BLESSED_FILENAME) == (
              infra_validator._BLESSED_KEY, infra_validator._MODEL_FLAG_KEY,
              infra_validator._BLESSED_FILENAME,
              infra_validator._NOT_BLESSED_FILENAME)
  assert executor.HAS_MODEL_PROPERTY == tfx_pusher._INFRA_BLESSING_MODEL_FLAG_KEY == (
      names.INFRA_HAS_MODEL_PROPERTY)
  assert path_utils.warmup_file_path('/m') == f'/m/{executor.WARMUP_RELATIVE_PATH}'


# A model serving any size: probed at two other sizes as well.

def test_a_model_serving_any_size_is_probed_at_two_other_sizes(good):
  _, _, blessing = good
  with open(os.path.join(blessing.uri, probe.RESULT_FILENAME)) as result_file:
    signatures = json.load(result_file)[probe.SIGNATURES]
  # 12x12 canaries: 7x9 and 27x25.
  assert probe.other_sizes(*SHAPE[:2]) == [(7, 9), (27, 25)]
  for name in (saved_model.IMAGES_SIGNATURE, saved_model.IMAGE_BYTES_SIGNATURE):
    assert signatures[name][probe.OTHER_SIZES] == [[7, 9], [27, 25]], name
  assert signatures[saved_model.EXAMPLES_SIGNATURE][probe.OTHER_SIZES] == []


class _TrainedSizeOnly(tf.Module):
  """Declares images of any size but answers only the trained one."""

  @tf.function(input_signature=[tf.TensorSpec((None, None, None, SHAPE[2]),
                                              tf.float32, name='images')])
  def images(self, images):
    with tf.control_dependencies([tf.debugging.assert_equal(
        tf.shape(images)[1:3], SHAPE[:2], message='trained size only')]):
      return {saved_model.OUTPUT_KEY: _denoise(images)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                              name='examples')])
  def examples(self, examples):
    return {saved_model.OUTPUT_KEY: _denoise(_parse(examples))}


def test_a_model_that_declares_any_size_but_refuses_it_is_a_failure(tmp_path):
  module = _TrainedSizeOnly()
  model_dir = str(tmp_path / 'model')
  tf.saved_model.save(module, model_dir, signatures={
      saved_model.IMAGES_SIGNATURE: module.images,
      saved_model.EXAMPLES_SIGNATURE: module.examples})
  result = probe.probe(model_dir, _noisy(3)[0], str(tmp_path))
  assert len(result[probe.FAILURES]) == 1
  assert result[probe.FAILURES][0].startswith(
      "signature 'serving_default' failed on its canaries at 7x9: "
      'InvalidArgumentError: ')
  assert 'trained size only' in result[probe.FAILURES][0]


def test_a_model_of_one_size_is_probed_at_that_size_only(tmp_path):
  result = _probed(tmp_path)
  assert {name: summary[probe.OTHER_SIZES]
          for name, summary in result[probe.SIGNATURES].items()} == {
              saved_model.IMAGES_SIGNATURE: [], saved_model.EXAMPLES_SIGNATURE: [],
              saved_model.IMAGE_BYTES_SIGNATURE: []}
