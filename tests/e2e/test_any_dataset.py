"""The pipeline to a push on datasets that are not MNIST, each set by
`--set data.*` alone: (a) a tiny IDX dataset named as TFDS's fashion_mnist,
(b) RGB images of another size in class folders, (c) a flat folder of grey
images without labels, (d) a folder of mixed sizes trained on patches. Each
pushed model records its dataset's shape and (a U-Net) serves images of any
size, and the report shows its classes (or none)."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.common import saved_model
from tests import idx_files

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A few steps: these runs test the plumbing of a dataset, not quality.
QUICK = ('training.epochs=1', 'training.max_train_steps=2',
         'thresholds.min_psnr_db=0', 'thresholds.max_mse=1')


def _cli(zygote, cwd, *args):
  """Runs `dae-pipeline ARGS` in `cwd` (a fork of the e2e zygote, see
  conftest.py); returns its output (stdout and stderr), asserting success."""
  log = cwd / f'{args[0]}-{len(list(cwd.glob("*.log")))}.log'
  status, output = zygote(args, log, cwd=cwd)
  assert status == 0, (args, output[-4000:])
  return output


def _run(zygote, tmp_path, *settings):
  """Runs the smoke profile with `settings`; returns (root, serving, output)."""
  root, serving = tmp_path / 'root', tmp_path / 'serving'
  args = ['run', '--profile', 'smoke', '--pipeline-root', str(root),
          '--serving-dir', str(serving)]
  for setting in settings + QUICK:
    args += ['--set', setting]
  return root, serving, _cli(zygote, tmp_path, *args)


def _pushed_input_shape(serving):
  """The image shape the one pushed model was trained on, asserting that its
  serving signature takes any height and width of those channels."""
  versions = sorted(glob.glob(str(serving / '*' / 'saved_model.pb')))
  assert len(versions) == 1, versions
  model_dir = os.path.dirname(versions[0])
  signature = tf.saved_model.load(model_dir).signatures[
      saved_model.IMAGES_SIGNATURE]
  (spec,) = signature.structured_input_signature[1].values()
  trained = saved_model.saved_model_image_shape(model_dir)
  assert tuple(spec.shape) == (None, None, None, trained[-1])
  return (None,) + trained


def _report_metrics(root):
  (path,) = glob.glob(str(root / 'VisualReport' / '*' / '*' / 'metrics.json'))
  with open(path, encoding='utf-8') as metrics_file:
    return json.load(metrics_file)


def _report_page(zygote, tmp_path, root):
  output = tmp_path / 'report.html'
  _cli(zygote, tmp_path, 'report', '--profile', 'smoke', '--pipeline-root',
       str(root), '--output', str(output))
  return output.read_text(encoding='utf-8')


def _write_png(path, image):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tf.io.write_file(str(path), tf.io.encode_png(image))


def _blobs(rng, count, height, width, channels):
  """Smooth random images (a few bright discs), uint8 [count, h, w, c]."""
  rows, columns = np.mgrid[0:height, 0:width]
  images = np.zeros((count, height, width, channels), np.float32)
  for index in range(count):
    for _ in range(3):
      centre = rng.uniform((0, 0), (height, width))
      radius = rng.uniform(2, max(3, min(height, width) / 3))
      disc = ((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) < radius ** 2
      images[index][disc] = rng.uniform(0.5, 1.0, channels)
  return np.rint(images * 255).astype(np.uint8)


def test_a_tiny_idx_dataset_named_fashion_mnist_pushes_with_its_classes(zygote, tmp_path):
  tiny = idx_files.make_tiny_idx(str(tmp_path / 'fashion'), 'fashion_mnist',
                                 num_train=100, num_test=30)
  root, serving, stdout = _run(
      zygote, tmp_path, 'data.dataset=fashion_mnist', f'data.source_dir={tiny.directory}',
      'data.train_examples=70', 'data.eval_examples=30', 'data.test_examples=30')
  assert 'inferring it from the train split' in stdout  # No curated schema.
  assert _pushed_input_shape(serving) == (None, 28, 28, 1)
  dataset = _report_metrics(root)['dataset']
  assert dataset['name'] == 'fashion_mnist'
  assert dataset['class_names'][0] == 'T-shirt/top'
  assert 'T-shirt/top' in _report_page(zygote, tmp_path, root)


def test_rgb_class_folders_of_another_size_push_a_model_of_that_shape(zygote, tmp_path):
  rng = np.random.default_rng(0)
  images = _blobs(rng, 60, 12, 20, 3)
  for index, image in enumerate(images):
    _write_png(tmp_path / 'images' / ('cat' if index % 2 else 'dog') /
               f'{index:03d}.png', image)
  root, serving, _ = _run(
      zygote, tmp_path, f'data.image_dir={tmp_path / "images"}', 'data.eval_percent=20',
      'data.test_percent=20')
  assert _pushed_input_shape(serving) == (None, 12, 20, 3)
  metrics = _report_metrics(root)
  assert metrics['dataset']['class_names'] == ['cat', 'dog']
  assert metrics['dataset']['image_shape'] == [12, 20, 3]
  page = _report_page(zygote, tmp_path, root)
  assert 'cat' in page and 'dog' in page
  # The chart of the run's own serving dir (not the profile's, empty here).
  assert 'aria-label="PSNR by version"' in page

  # The pushed model denoises a colour image of that size.
  _write_png(tmp_path / 'mine.png', images[0])
  denoised = _cli(zygote, tmp_path, 'denoise', 'mine.png', '--serving-dir', str(serving),
                  '--output', 'denoised')
  assert os.path.isfile(tmp_path / 'denoised' / 'mine.png'), denoised
  written = tf.io.decode_png(tf.io.read_file(str(tmp_path / 'denoised' / 'mine.png')))
  assert tuple(written.shape) == (12, 20, 3)
  # And one of another size, at its size.
  _write_png(tmp_path / 'bigger.png', _blobs(rng, 1, 17, 23, 3)[0])
  _cli(zygote, tmp_path, 'denoise', 'bigger.png', '--serving-dir', str(serving),
       '--output', 'denoised')
  written = tf.io.decode_png(tf.io.read_file(str(tmp_path / 'denoised' / 'bigger.png')))
  assert tuple(written.shape) == (17, 23, 3)


def test_a_flat_grey_folder_pushes_without_classes(zygote, tmp_path):
  rng = np.random.default_rng(1)
  for index, image in enumerate(_blobs(rng, 50, 16, 16, 1)):
    _write_png(tmp_path / 'flat' / f'{index:03d}.png', image)
  (tmp_path / 'flat' / 'broken.png').write_bytes(b'not an image')
  root, serving, stdout = _run(
      zygote, tmp_path, f'data.image_dir={tmp_path / "flat"}', 'data.eval_percent=20',
      'data.test_percent=20', 'data.max_bad_images=1')
  assert _pushed_input_shape(serving) == (None, 16, 16, 1)
  metrics = _report_metrics(root)
  # The bad image is skipped, and the report and the verdict say so.
  assert metrics['skipped_images'] == 1
  assert '1 bad image(s) of the folder skipped' in stdout
  assert metrics['dataset']['class_names'] == []
  assert not any(metrics['by_class'].values())  # No per-class slices.


def test_a_folder_of_mixed_sizes_trains_on_patches_and_serves_other_sizes(zygote, tmp_path):
  rng = np.random.default_rng(2)
  sizes = [(20, 24), (31, 17), (25, 25), (16, 40)]
  for index in range(48):
    image = _blobs(rng, 1, *sizes[index % len(sizes)], 1)[0]
    _write_png(tmp_path / 'mixed' / ('a' if index % 2 else 'b') / f'{index:03d}.png', image)
  root, serving, _ = _run(
      zygote, tmp_path, f'data.image_dir={tmp_path / "mixed"}', 'data.patch_size=16x16',
      'data.eval_percent=20', 'data.test_percent=20')
  assert _pushed_input_shape(serving) == (None, 16, 16, 1)  # Trained on patches.
  dataset = _report_metrics(root)['dataset']
  assert dataset['image_shape'] == [16, 16, 1]
  # The train split held the whole images (the Trainer crops them every
  # epoch): more values than ten 16x16 patches.
  assert dataset['whole_train_values'] > 10 * 16 * 16
  # Its signatures take two other sizes and give each back at its size.
  [version] = glob.glob(str(serving / '*' / 'saved_model.pb'))
  loaded = tf.saved_model.load(os.path.dirname(version))
  for height, width in ((20, 36), (40, 40)):
    images = tf.constant(rng.uniform(0, 1, (2, height, width, 1)), tf.float32)
    output = loaded.signatures[saved_model.IMAGES_SIGNATURE](images=images)
    assert tuple(output[saved_model.OUTPUT_KEY].shape) == (2, height, width, 1)
    png = tf.io.encode_png(tf.cast(images[0] * 255, tf.uint8))
    denoised = loaded.signatures[saved_model.IMAGE_BYTES_SIGNATURE](
        image_bytes=tf.stack([png]))[saved_model.DENOISED_BYTES_KEY]
    assert tuple(tf.io.decode_png(denoised[0]).shape) == (height, width, 1)
