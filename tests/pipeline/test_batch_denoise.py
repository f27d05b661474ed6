"""Denoising a folder with Beam (pipeline/batch_denoise.py): a real SavedModel,
a few 28x28 files the tests write, the DirectRunner in this process."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from pipeline import batch_denoise
from pipeline import denoise
from tests.pipeline.test_denoise import _image
from tests.pipeline.test_denoise import _write_png
from tests.pipeline.test_denoise import invert_model  # pylint: disable=unused-import
from tests.pipeline.test_denoise import unet_model  # pylint: disable=unused-import


def _run(pattern, output, model):
  """denoise_batch's summary and printed lines."""
  stream = io.StringIO()
  summary = batch_denoise.denoise_batch(str(pattern), str(output), model,
                                        stream=stream)
  return summary, stream.getvalue()


def _manifest(output):
  with open(output / batch_denoise.MANIFEST_NAME) as manifest_file:
    return {record['input']: record
            for record in map(json.loads, manifest_file)}


def _scans(folder, names):
  """Writes a different 28x28 PNG at each name under `folder`; their paths."""
  paths = []
  for seed, name in enumerate(names):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_png(path, _image(seed=seed))
    paths.append(str(path))
  return paths


def test_every_input_is_written_under_its_relative_path_as_denoise_writes_it(
    tmp_path, invert_model):
  scans = tmp_path / 'scans'
  paths = _scans(scans, ['a.png', 'sub/b.png'])
  (scans / 'sub' / 'deep').mkdir()
  jpeg = scans / 'sub' / 'deep' / 'c.jpg'
  jpeg.write_bytes(tf.io.encode_jpeg(np.rint(_image(seed=5)[..., None] * 255).astype(
      np.uint8)).numpy())
  paths.append(str(jpeg))
  output = tmp_path / 'out'
  summary, printed = _run(f'{scans}/**', output, invert_model)
  assert (summary.written, summary.skipped, summary.unreadable) == (3, 0, 0)
  assert f'model: {invert_model} (takes 28x28x1 images, HxWxC)' in printed
  assert printed.strip().splitlines()[-1] == summary.line()
  names = ['a.png', 'sub/b.png', 'sub/deep/c.png']
  # Nothing else is left: no manifest shards, no partial files.
  assert sorted(os.listdir(output)) == sorted([
      'a.png', 'sub', batch_denoise.MANIFEST_NAME, batch_denoise.UNREADABLE_NAME])
  assert sorted(os.path.relpath(os.path.join(folder, name), output)
                for folder, _, files in os.walk(output) for name in files) == sorted(
                    names + [batch_denoise.MANIFEST_NAME, batch_denoise.UNREADABLE_NAME])
  manifest = _manifest(output)
  assert sorted(manifest) == sorted(paths)
  for path, name in zip(paths, names):
    assert manifest[path]['output'] == str(output / name)
    assert manifest[path]['status'] == batch_denoise.WRITTEN
    assert (manifest[path]['height'], manifest[path]['width']) == (28, 28)
    assert manifest[path]['seconds'] > 0
  assert (output / batch_denoise.UNREADABLE_NAME).read_text() == ''
  # The single-file command, same model and images: the same PNGs, byte for byte.
  single = tmp_path / 'single'
  denoise.denoise_command(paths, str(single), invert_model, base_directory='')
  for name in names:
    assert (output / name).read_bytes() == (
        single / os.path.basename(name)).read_bytes(), name


def _mtimes(output, names):
  return {name: os.stat(output / name).st_mtime_ns for name in names}


def test_a_rerun_skips_what_is_written_and_writes_only_what_is_missing(
    tmp_path, invert_model):
  scans = tmp_path / 'scans'
  paths = _scans(scans, ['a.png', 'b.png', 'sub/c.png'])
  names = ['a.png', 'b.png', 'sub/c.png']
  output = tmp_path / 'out'
  pattern = f'{scans}/**.png'
  _run(pattern, output, invert_model)
  first = _manifest(output)
  before = _mtimes(output, names)

  summary, _ = _run(pattern, output, invert_model)
  assert (summary.written, summary.skipped, summary.unreadable) == (0, 3, 0)
  assert _mtimes(output, names) == before
  # Skipped inputs keep the line of the run that wrote them.
  assert _manifest(output) == {path: dict(record, status=batch_denoise.SKIPPED)
                               for path, record in first.items()}

  os.remove(output / 'sub' / 'c.png')
  summary, _ = _run(pattern, output, invert_model)
  assert (summary.written, summary.skipped, summary.unreadable) == (1, 2, 0)
  after = _mtimes(output, names)
  assert {name: after[name] for name in names[:2]} == {
      name: before[name] for name in names[:2]}
  manifest = _manifest(output)
  assert [manifest[path]['status'] for path in paths] == [
      batch_denoise.SKIPPED, batch_denoise.SKIPPED, batch_denoise.WRITTEN]
  assert (output / 'sub' / 'c.png').exists()


def test_bad_files_are_listed_with_their_reasons_and_the_others_written(
    tmp_path, invert_model):
  scans = tmp_path / 'scans'
  _scans(scans, ['good.png', 'twin.png'])
  png = (scans / 'good.png').read_bytes()
  (scans / 'truncated.png').write_bytes(png[:len(png) // 2])
  (scans / 'text.png').write_text('not a picture')
  _write_png(scans / 'big.png', _image(32, 30))
  (scans / 'twin.jpg').write_bytes(png)  # Its output would be twin.png's.
  (scans / 'notes.txt').write_text('scanned on a Tuesday')
  _write_png(scans / 'colour.png', np.stack([_image()] * 3, axis=-1))  # Fine.
  output = tmp_path / 'out'
  summary, printed = _run(f'{scans}/*', output, invert_model)
  assert (summary.written, summary.skipped, summary.unreadable) == (2, 0, 6)
  assert f'6 unreadable (listed in {output}/{batch_denoise.UNREADABLE_NAME})' in printed
  assert sorted(os.listdir(output)) == ['colour.png', 'good.png',
                                        batch_denoise.MANIFEST_NAME,
                                        batch_denoise.UNREADABLE_NAME]
  reasons = (output / batch_denoise.UNREADABLE_NAME).read_text().splitlines()
  expected = {
      'truncated.png': 'truncated.png: cannot be decoded as an image',
      'text.png': 'text.png: cannot be decoded as an image',
      'big.png': 'big.png is 32x30 (HxW); the model takes 28x28',
      'twin.png': f'twin.png and {scans}/twin.jpg would both be written to '
                  f'{output}/twin.png',
      'twin.jpg': f'twin.jpg and {scans}/twin.png would both be written to',
      'notes.txt': "notes.txt: unsupported file type '.txt'",
  }
  assert len(reasons) == len(expected), reasons
  for name, fragment in expected.items():
    assert [reason for reason in reasons
            if reason.startswith(f'{scans}/{fragment}')], (name, reasons)
  manifest = _manifest(output)
  assert len(manifest) == 8
  assert manifest[f'{scans}/good.png']['status'] == batch_denoise.WRITTEN
  assert manifest[f'{scans}/colour.png']['note'] == (
      'colour converted to grey (the model takes 1 channel)')
  assert sorted(record['reason'] for record in manifest.values()
                if record['status'] == batch_denoise.UNREADABLE) == sorted(reasons)


def test_a_pattern_that_matches_nothing_is_a_one_line_error_naming_it(
    tmp_path, invert_model):
  pattern = f'{tmp_path}/scans/**.png'
  with pytest.raises(denoise.DenoiseError) as raised:
    _run(pattern, tmp_path / 'out', invert_model)
  assert str(raised.value) == f'no file matches {pattern}'
  assert not (tmp_path / 'out').exists()


def test_a_missing_model_is_the_error_denoise_gives(tmp_path):
  _scans(tmp_path / 'scans', ['a.png'])
  with pytest.raises(denoise.DenoiseError,
                     match=f'^{tmp_path}/model is not a SavedModel directory'):
    _run(f'{tmp_path}/scans/*.png', tmp_path / 'out', str(tmp_path / 'model'))


def test_an_output_folder_the_pattern_matches_is_refused(tmp_path, invert_model):
  _scans(tmp_path / 'scans', ['a.png'])
  with pytest.raises(denoise.DenoiseError, match='is matched by'):
    _run(f'{tmp_path}/scans/**.png', tmp_path / 'scans' / 'out', invert_model)
  assert not (tmp_path / 'scans' / 'out').exists()


def test_the_handler_answers_each_refused_image_with_its_reason(invert_model):
  # Two shapes in one batch are never stacked; a refused image (NaN, a size
  # the signature rejects) leaves the others of its batch denoised.
  handler = batch_denoise.DenoiserHandler(invert_model)
  assert handler.batch_elements_kwargs()['max_batch_size'] == batch_denoise.MAX_BATCH_SIZE
  model = handler.load_model()
  good = _image()[..., None].astype(np.float32)
  not_finite = good.copy()
  not_finite[0, 0, 0] = np.nan
  batch = [good, np.zeros((14, 14, 1), np.float32), not_finite, good * 0.5]
  answers = [result.inference for result in handler.run_inference(batch, model)]
  np.testing.assert_allclose(answers[0].image, 1 - good, atol=1e-6)
  np.testing.assert_allclose(answers[3].image, 1 - good * 0.5, atol=1e-6)
  assert answers[1].image is None and 'not compatible with expected shape' in answers[1].reason
  assert answers[2].image is None and answers[2].reason.startswith(
      'input images must be finite (no NaN/inf)')


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_a_terminal_shows_a_bar_counting_the_files(tmp_path, invert_model,
                                                    monkeypatch):
  _scans(tmp_path / 'scans', ['a.png', 'b.png'])
  terminal = _Terminal()
  monkeypatch.setattr('sys.stderr', terminal)
  _run(f'{tmp_path}/scans/*.png', tmp_path / 'out', invert_model)
  assert f'{batch_denoise.PROGRESS_DESCRIPTION}: 2 files' in terminal.getvalue()


def test_a_bucket_is_denoised_into_a_bucket(tmp_path, invert_model):
  # Beam's gcsio on the test emulator (tests/gcs_emulator.py); the model local.
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  from tests import gcs_emulator  # pylint: disable=g-import-not-at-top
  paths = _scans(tmp_path / 'scans', ['a.png', 'sub/b.png'])
  with gcs_emulator.running('bucket') as environment, gcs_emulator.applied(environment):
    for path, name in zip(paths, ['a.png', 'sub/b.png']):
      with FileSystems.create(f'gs://bucket/scans/{name}') as uploaded:
        uploaded.write(tf.io.gfile.GFile(path, 'rb').read())
    summary, _ = _run('gs://bucket/scans/**.png', 'gs://bucket/out', invert_model)
    assert (summary.written, summary.skipped, summary.unreadable) == (2, 0, 0)
    written = sorted(metadata.path for metadata in FileSystems.match(
        ['gs://bucket/out/**'])[0].metadata_list)
    assert written == ['gs://bucket/out/a.png', 'gs://bucket/out/manifest.jsonl',
                       'gs://bucket/out/sub/b.png', 'gs://bucket/out/unreadable.txt']
    summary, _ = _run('gs://bucket/scans/**.png', 'gs://bucket/out', invert_model)
    assert (summary.written, summary.skipped) == (0, 2)


def test_the_cli_runs_a_folder_or_a_pattern_as_the_batch_job(tmp_path, invert_model,
                                                            capsys):
  from pipeline import cli  # pylint: disable=g-import-not-at-top
  scans = tmp_path / 'scans'
  _scans(scans, ['a.png', 'sub/b.png'])
  assert cli.main(['denoise', str(scans), '--output', str(tmp_path / 'out'),
                   '--model', invert_model]) == 0
  assert sorted(_manifest(tmp_path / 'out')) == [str(scans / 'a.png'),
                                                 str(scans / 'sub' / 'b.png')]
  assert (tmp_path / 'out' / 'sub' / 'b.png').is_file()
  assert cli.main(['denoise', f'{scans}/*.png', '--output', str(tmp_path / 'top'),
                   '--model', invert_model, '--beam-arg=--runner=DirectRunner']) == 0
  assert sorted(os.listdir(tmp_path / 'top')) == [
      'a.png', batch_denoise.MANIFEST_NAME, batch_denoise.UNREADABLE_NAME]
  capsys.readouterr()
  assert cli.main(['denoise', f'{scans}/*.png', '--output', str(tmp_path / 'x'),
                   '--model', invert_model, '--reference', 'a.png']) == 2
  assert capsys.readouterr().err.strip() == (
      'dae-pipeline: denoise: --reference takes files, not a pattern or folder')


def test_a_fully_convolutional_model_writes_each_image_at_its_own_size(
    tmp_path, unet_model):
  scans = tmp_path / 'scans'
  sizes = {'a.png': (28, 28), 'b.png': (40, 40), 'c.png': (21, 34),
           'd.png': (40, 40)}
  scans.mkdir()
  for seed, (name, size) in enumerate(sizes.items()):
    _write_png(scans / name, _image(*size, seed=seed))
  output = tmp_path / 'out'
  summary, printed = _run(f'{scans}/*.png', output, unet_model)
  assert (summary.written, summary.unreadable) == (4, 0), printed
  assert 'takes images of any size with 1 channel(s)' in printed
  manifest = _manifest(output)
  single = tmp_path / 'single'
  denoise.denoise_command([str(scans / name) for name in sizes], str(single),
                          unet_model, base_directory='')
  for name, size in sizes.items():
    written = tf.io.decode_png((output / name).read_bytes()).numpy()
    assert written.shape == size + (1,)
    assert (manifest[str(scans / name)]['height'],
            manifest[str(scans / name)]['width']) == size
    assert (output / name).read_bytes() == (single / name).read_bytes(), name
