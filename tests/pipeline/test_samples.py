"""`dae-pipeline sample`: the latest run's noisy test images, in their shape."""

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import numpy as np
import pytest

from components.common import names
from components.common import dataset_info
from pipeline import samples

PETS = dataset_info.DatasetInfo('pets', (12, 10, 3), ('cat', 'dog'))


def _record_noise_output(metadata_path, examples_uri, properties):
  """A hand-made MLMD store of one run whose NoiseTransform wrote `examples_uri`
  with those custom properties (as TFX's launcher records it)."""
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(metadata_path)
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
  store = metadata_store.MetadataStore(config)
  run_type, node_type = (store.put_context_type(metadata_store_pb2.ContextType(name=name))
                         for name in ('pipeline_run', 'node'))
  execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(
      name='NoiseTransform'))
  artifact_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name='Examples'))
  artifact = metadata_store_pb2.Artifact(type_id=artifact_type, uri=str(examples_uri))
  for name, value in properties.items():
    artifact.custom_properties[name].string_value = value
  event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
  event.path.steps.add().key = names.NOISY_EXAMPLES_KEY
  store.put_execution(
      metadata_store_pb2.Execution(
          type_id=execution_type,
          last_known_state=metadata_store_pb2.Execution.COMPLETE),
      [(artifact, event)],
      [metadata_store_pb2.Context(type_id=run_type, name='run-1'),
       metadata_store_pb2.Context(type_id=node_type, name='mnist-dae.NoiseTransform')])


def _noised(root, info, count):
  from tests.components.test_noise_transform import _run, _write_examples  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(0).integers(0, 256, (count, info.pixels), np.uint8)
  return _run(_write_examples(root / 'in', images, np.arange(count) % 2, info=info),
              root / 'out')


def test_sample_reads_the_test_images_in_the_shape_the_examples_record(tmp_path):
  examples = _noised(tmp_path, PETS, 6)
  metadata = tmp_path / 'metadata.sqlite'
  _record_noise_output(metadata, examples.uri,
                       {dataset_info.PROPERTY: PETS.to_json()})
  noisy, clean = samples.read_test_images(str(metadata), 4)
  assert noisy.shape == clean.shape == (4, 12, 10, 3)


def test_sample_of_examples_without_a_dataset_info_says_so(tmp_path):
  examples = _noised(tmp_path, PETS, 2)
  metadata = tmp_path / 'metadata.sqlite'
  _record_noise_output(metadata, examples.uri, {})
  with pytest.raises(dataset_info.MissingDatasetInfo, match="'dataset_info'"):
    samples.read_test_images(str(metadata), 1)


@pytest.mark.parametrize('count', [1, 3])
def test_samples_are_written_as_arrays_and_as_pngs_to_look_at(tmp_path, count):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  clean = rng.random((count, 12, 10, 3)).astype(np.float32)
  noisy = clean + rng.normal(0, 0.3, clean.shape).astype(np.float32)
  output = str(tmp_path / 'build' / 'noisy.npy')
  written = samples.write_samples(output, noisy, clean)
  np.testing.assert_array_equal(np.load(output), noisy)
  np.testing.assert_array_equal(np.load(tmp_path / 'build' / 'noisy.clean.npy'), clean)
  numbered = [''] if count == 1 else [f'-{index}' for index in range(count)]
  for images, suffix in ((noisy, ''), (clean, '.clean')):
    for index, number in enumerate(numbered):
      path = tmp_path / 'build' / f'noisy{number}{suffix}.png'
      assert str(path) in written
      expected = np.rint(np.clip(images[index], 0, 1) * 255).astype(np.uint8)
      np.testing.assert_array_equal(np.asarray(Image.open(path)), expected)
