"""`dae-pipeline denoise PATTERN --output DIR`: denoises a bucket with Beam.

A Beam job (the DirectRunner here, Dataflow with `--beam-arg=--runner=...`)
matches the pattern (`**` is recursive), reads and decodes each PNG/JPEG once,
runs the SavedModel's images signature on batches of them through
`RunInference` and writes each output as a PNG under the input's path relative
to the pattern's fixed folder, with the extension `.png`:
`scans/**.png` -> `scans/a/b.png` is written to `<output>/a/b.png`.

Everything goes through Beam's filesystems, so both sides may be buckets.
Besides the images the job writes, in the output directory:

* `manifest.jsonl`: one JSON line per matched input: `input`, `output`,
  `status` ('written', 'skipped' or 'unreadable'), `height`, `width`,
  `seconds` (its reading, its share of its batch's inference and its
  writing), `note` (a channel conversion) and, when unreadable, `reason`.
* `unreadable.txt`: one line per input that could not be denoised, naming it
  and why (undecodable, of another size than the model takes, refused by the
  model, two inputs with one output name). Such inputs are not fatal.

Re-running resumes: the existing outputs are matched first, and an input whose
output exists is not read again. Its manifest line is the one the run that
wrote it recorded (kept from the previous manifest), its status 'skipped'; or,
without one, a 'skipped' line with no height, width or seconds.

On Dataflow the workers need this project's code: pass the pipeline's image
as `--beam-arg=--sdk_container_image=IMAGE` (docs/serving.md).
"""

import dataclasses
import json
import os
import posixpath
import re
import sys
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io import filesystem
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference import base
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np
import tensorflow as tf

from components.common import progress
from components.common import saved_model
from pipeline import denoise

MANIFEST_NAME = 'manifest.jsonl'
UNREADABLE_NAME = 'unreadable.txt'
WRITTEN = 'written'
SKIPPED = 'skipped'
UNREADABLE = 'unreadable'
# Images per model call: small images of a few KB each, so a batch stays a few
# MB even for 128x128 RGB, while amortizing the signature call.
MAX_BATCH_SIZE = 64
PROGRESS_DESCRIPTION = 'denoise'
# The characters that start a wildcard in Beam's match patterns.
_WILDCARD = re.compile(r'[*?\[{]')
# Object stores make an object visible only once written whole; elsewhere
# (local disks, HDFS) a file killed mid-write would look done to the resume
# filter, so it is written under a temporary name and renamed.
_WHOLE_ON_CLOSE_SCHEMES = ('gs', 's3', 'azfs')
_PARTIAL_SUFFIX = '.partial'
_PARTS_PREFIX = '.manifest-part-'
_UNCOMPRESSED = filesystem.CompressionTypes.UNCOMPRESSED


@dataclasses.dataclass
class Summary:
  """What a run did.

  Attributes:
    written: Inputs denoised and written by this run.
    skipped: Inputs whose output an earlier run had written.
    unreadable: Inputs that could not be denoised (listed with reasons).
    manifest: The manifest's path.
    unreadable_list: The list of unreadable inputs' path.
  """
  written: int
  skipped: int
  unreadable: int
  manifest: str
  unreadable_list: str

  def line(self) -> str:
    """One line for people: the counts and where the lists are."""
    total = self.written + self.skipped + self.unreadable
    unreadable = f'{self.unreadable} unreadable'
    if self.unreadable:
      unreadable += f' (listed in {self.unreadable_list})'
    return (f'{total} inputs: {self.written} written, {self.skipped} skipped '
            f'(written before), {unreadable}; manifest {self.manifest}')


@dataclasses.dataclass
class Denoised:
  """The model's answer for one image (RunInference's `inference`).

  Attributes:
    image: The denoised float [H, W, C] image; None when refused.
    reason: Why the model refused the image; None when denoised.
    seconds: The image's share of its batch's inference.
  """
  image: Optional[np.ndarray]
  reason: Optional[str]
  seconds: float


def batch_pattern(images: Sequence[str]) -> Optional[str]:
  """The pattern `dae-pipeline denoise` runs as a Beam job: its one argument
  when that has a wildcard, every file under it when it is a folder (or a
  bucket prefix); None: the files are denoised one by one in this process."""
  if len(images) != 1:
    return None
  if _WILDCARD.search(images[0]):
    return images[0]
  if tf.io.gfile.isdir(images[0]):
    return FileSystems.join(images[0].rstrip('/'), '**')
  return None


def pattern_folder(pattern: str) -> str:
  """The pattern's fixed folder: up to the last '/' before its first wildcard
  ('' when none), to which outputs keep their inputs' relative paths."""
  found = _WILDCARD.search(pattern)
  fixed = pattern[:found.start()] if found else pattern
  return fixed[:fixed.rfind('/') + 1]


def output_name(path: str, folder: str) -> str:
  """The output's path relative to the output directory: the input's relative
  to `folder`, with the extension .png."""
  relative = path[len(folder):] if path.startswith(folder) else posixpath.basename(path)
  return posixpath.splitext(relative)[0] + denoise.OUTPUT_EXTENSION


def _record(path: str, output: Optional[str], status: str, **fields) -> Dict[str, Any]:
  """A manifest line's fields, every key present."""
  record = {'input': path, 'output': output, 'status': status, 'height': None,
            'width': None, 'seconds': None, 'note': None}
  record.update(fields)
  return record


def _unreadable(path: str, reason: str, output: Optional[str] = None) -> Dict[str, Any]:
  return _record(path, output, UNREADABLE, reason=reason)


def _first_line(error: Exception) -> str:
  return (str(error).strip().splitlines() or [type(error).__name__])[0]


class _Route(beam.DoFn):
  """Per output name, from its inputs, existing output and earlier manifest
  line: a path to denoise (main output), or a finished manifest record
  ('done': skipped, or two inputs that would share the output)."""

  def __init__(self, output_dir: str):
    self._output_dir = output_dir

  def process(self, element: Tuple[str, Dict[str, List[Any]]]) -> Iterable:
    name, found = element
    # No inputs: an output or a manifest line of no current input.
    inputs = sorted(found['inputs'])
    output = FileSystems.join(self._output_dir, name)
    if len(inputs) > 1:
      for path in inputs:
        others = ', '.join(other for other in inputs if other != path)
        yield beam.pvalue.TaggedOutput('done', _unreadable(
            path, f'{path} and {others} would both be written to {output}'))
    elif inputs and found['outputs']:
      earlier = [record for record in found['earlier']
                 if record.get('input') == inputs[0]
                 and record.get('status') != UNREADABLE]
      yield beam.pvalue.TaggedOutput('done', dict(
          earlier[0], status=SKIPPED) if earlier else _record(
              inputs[0], output, SKIPPED))
    elif inputs:
      yield inputs[0], output


class _ReadImage(beam.DoFn):
  """Reads and decodes one input, in the model's channels: (key, image) for
  RunInference, or an unreadable record ('unreadable')."""

  def __init__(self, image_shape: Sequence[int]):
    self._image_shape = tuple(image_shape)

  def process(self, element: Tuple[str, str]) -> Iterable:
    path, output = element
    start = time.perf_counter()
    notes = []
    try:
      image = self._image(path, notes)
    except denoise.DenoiseError as error:
      yield beam.pvalue.TaggedOutput(UNREADABLE, _unreadable(path, str(error), output))
    else:
      # The note names the file, as its manifest line does: keep what follows.
      note = notes[0].split(': ', 1)[-1] if notes else None
      yield ((path, output, int(image.shape[0]), int(image.shape[1]),
              time.perf_counter() - start, note), image)

  def _image(self, path: str, notes: List[str]) -> np.ndarray:
    """The file's image, [H, W, C] float; DenoiseError naming it if bad."""
    extension = posixpath.splitext(path)[1].lower()
    if extension not in denoise.IMAGE_EXTENSIONS:
      raise denoise.DenoiseError(f'{path}: unsupported file type '
                                 f'{extension or "(none)"!r} (PNG or JPEG)')
    try:
      with FileSystems.open(path, compression_type=_UNCOMPRESSED) as image_file:
        contents = image_file.read()
    except (IOError, OSError) as error:
      raise denoise.DenoiseError(
          f'{path}: cannot be read ({_first_line(error)})') from None
    return denoise.fit_to_model(denoise.picture_file(path, contents),
                                self._image_shape, say=notes.append).images[0]


class DenoiserHandler(base.ModelHandler[np.ndarray, base.PredictionResult,
                                        saved_model.Denoiser]):
  """RunInference over a SavedModel's images signature (saved_model.Denoiser).

  Beam's TensorFlow handlers cannot load Keras 3 exports; this one calls the
  signature on [N, H, W, C] float batches. Images of different shapes are
  never stacked together, and an image the model refuses (one of its in-graph
  checks) is answered with the reason instead of failing its whole batch.
  """

  def __init__(self, model_dir: str, max_batch_size: int = MAX_BATCH_SIZE):
    """Args: the SavedModel directory; the most images per model call."""
    super().__init__(min_batch_size=1, max_batch_size=max_batch_size)
    self._model_dir = model_dir

  def load_model(self) -> saved_model.Denoiser:
    return denoise.load_model(self._model_dir)

  def run_inference(self, batch: Sequence[np.ndarray], model: saved_model.Denoiser,
                    inference_args: Optional[Dict[str, Any]] = None
                    ) -> Iterable[base.PredictionResult]:
    by_shape: Dict[Tuple[int, ...], List[int]] = {}
    for index, image in enumerate(batch):
      by_shape.setdefault(tuple(image.shape), []).append(index)
    answers: List[Optional[Denoised]] = [None] * len(batch)
    for indices in by_shape.values():
      for index, answer in zip(indices, _denoise_images(
          model, [batch[index] for index in indices])):
        answers[index] = answer
    return [base.PredictionResult(image, answer)
            for image, answer in zip(batch, answers)]

  def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
    return sum(image.nbytes for image in batch)

  def get_metrics_namespace(self) -> str:
    return 'dae_denoise'


def _denoise_images(model: saved_model.Denoiser,
                    images: Sequence[np.ndarray]) -> List[Denoised]:
  """The model's answers for images of one shape: all at once, or each alone
  when the model refuses the batch (to tell which image it refuses)."""
  start = time.perf_counter()
  try:
    outputs = model(np.stack(images))
  except tf.errors.InvalidArgumentError as error:
    if len(images) == 1:
      return [Denoised(None, denoise.model_error_reason(error),
                       time.perf_counter() - start)]
    return [answer for image in images for answer in _denoise_images(model, [image])]
  share = (time.perf_counter() - start) / len(images)
  return [Denoised(output, None, share) for output in outputs]


class _WriteOutput(beam.DoFn):
  """Writes one denoised PNG through Beam's filesystems; yields its manifest
  record (or an unreadable one, when the model refused the image)."""

  def process(self, element: Tuple[tuple, base.PredictionResult]) -> Iterable:
    (path, output, height, width, seconds, note), result = element
    answer: Denoised = result.inference
    if answer.image is None:
      yield _unreadable(path, f'{path}: the model refused it: {answer.reason}', output)
    else:
      start = time.perf_counter()
      _write_file(output, denoise.encode_png(answer.image))
      seconds += answer.seconds + time.perf_counter() - start
      yield _record(path, output, WRITTEN, height=height, width=width,
                    seconds=round(seconds, 4), note=note)


def _write_file(path: str, contents: bytes) -> None:
  """Writes `contents` to `path` so that it never exists half-written."""
  if FileSystems.get_scheme(path) in _WHOLE_ON_CLOSE_SCHEMES:
    with FileSystems.create(path, mime_type='image/png',
                            compression_type=_UNCOMPRESSED) as output_file:
      output_file.write(contents)
    return
  partial = f'{path}{_PARTIAL_SUFFIX}-{uuid.uuid4().hex}'
  with FileSystems.create(partial, compression_type=_UNCOMPRESSED) as output_file:
    output_file.write(contents)
  FileSystems.rename([partial], [path])


def _check_pattern(pattern: str) -> None:
  """DenoiseError naming the pattern when it matches no file."""
  try:
    matched = FileSystems.match([pattern], limits=[1])[0].metadata_list
  except (IOError, OSError) as error:
    raise denoise.DenoiseError(f'cannot match {pattern}: {_first_line(error)}') from None
  if not matched:
    raise denoise.DenoiseError(f'no file matches {pattern}')


def _absolute(path: str) -> str:
  return path if FileSystems.get_scheme(path) else os.path.abspath(path)


def _check_output_apart(pattern: str, output_dir: str) -> None:
  """DenoiseError when outputs would match the pattern: a re-run would read
  them as inputs, or they would overwrite the inputs themselves."""
  pattern_regex = re.compile(filesystem.FileSystem.translate_pattern(_absolute(pattern)))
  for name in ('image.png', 'folder/image.png'):
    if pattern_regex.match(_absolute(FileSystems.join(output_dir, name))):
      raise denoise.DenoiseError(
          f'the output directory {output_dir} is matched by {pattern}: outputs '
          'would be read as inputs or overwrite them; choose another --output')


def _earlier_records(output_dir: str, record: Dict[str, Any]) -> Iterable:
  """(output name, record) of a previous manifest's line written here."""
  prefix = output_dir + '/'
  output = record.get('output') or ''
  if output.startswith(prefix):
    yield output[len(prefix):], record


def _parse_line(line: str) -> Iterable[Dict[str, Any]]:
  try:
    record = json.loads(line)
  except ValueError:
    return  # A line cut short by an interrupted merge: its input is redone.
  if isinstance(record, dict):
    yield record


def build_pipeline(pipeline: beam.Pipeline, pattern: str, output_dir: str,
                   model_dir: str, image_shape: Sequence[int],
                   earlier_manifest: Optional[str], parts_prefix: str,
                   show_progress: bool) -> None:
  """Adds the job's steps to `pipeline`; the manifest goes to sharded text
  files at `parts_prefix`, merged by `denoise_batch` when the job is done."""
  folder = pattern_folder(pattern)
  inputs = (pipeline
            | 'MatchInputs' >> fileio.MatchFiles(
                pattern, empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
            | 'KeyInputs' >> beam.Map(
                lambda metadata: (output_name(metadata.path, folder), metadata.path)))
  # Matched first, so that inputs already written are not read again.
  outputs = (pipeline
             | 'MatchOutputs' >> fileio.MatchFiles(
                 FileSystems.join(output_dir, '**'),
                 empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
             | 'Written' >> beam.Filter(
                 lambda metadata: metadata.path.endswith(denoise.OUTPUT_EXTENSION))
             | 'KeyOutputs' >> beam.Map(
                 lambda metadata: (metadata.path[len(output_dir) + 1:], metadata.path)))
  branches = {'inputs': inputs, 'outputs': outputs}
  if earlier_manifest:
    branches['earlier'] = (pipeline
                           | 'ReadEarlier' >> beam.io.ReadFromText(earlier_manifest)
                           | 'ParseEarlier' >> beam.FlatMap(_parse_line)
                           | 'KeyEarlier' >> beam.FlatMap(
                               lambda record: _earlier_records(output_dir, record)))
  else:
    branches['earlier'] = pipeline | 'NoEarlier' >> beam.Create([])
  routed = (branches
            | 'ByOutput' >> beam.CoGroupByKey()
            | 'Route' >> beam.ParDo(_Route(output_dir)).with_outputs('done', main='todo'))
  images = (routed.todo
            | 'Read' >> beam.ParDo(_ReadImage(image_shape)).with_outputs(
                UNREADABLE, main='images'))
  written = (images.images
             | 'Denoise' >> base.RunInference(
                 base.KeyedModelHandler(DenoiserHandler(model_dir)))
             | 'Write' >> beam.ParDo(_WriteOutput()))
  records = ((routed.done, images[UNREADABLE], written)
             | 'AllRecords' >> beam.Flatten())
  if show_progress:
    records = records | 'Progress' >> beam.ParDo(progress.CountProgress(
        PROGRESS_DESCRIPTION, total=None, unit='files'))
  _ = (records
       | 'Lines' >> beam.Map(lambda record: json.dumps(record, sort_keys=True))
       | 'WriteManifestParts' >> beam.io.WriteToText(parts_prefix))


def _merge_manifest(parts_prefix: str, output_dir: str) -> Summary:
  """Joins the manifest's shards into manifest.jsonl, lists the unreadable
  inputs, removes the shards; the counts."""
  manifest = FileSystems.join(output_dir, MANIFEST_NAME)
  unreadable_list = FileSystems.join(output_dir, UNREADABLE_NAME)
  counts = {WRITTEN: 0, SKIPPED: 0, UNREADABLE: 0}
  shards = sorted(metadata.path for metadata in FileSystems.match(
      [parts_prefix + '*'])[0].metadata_list)
  with FileSystems.create(manifest, compression_type=_UNCOMPRESSED) as manifest_file, \
      FileSystems.create(unreadable_list, compression_type=_UNCOMPRESSED) as list_file:
    for shard in shards:
      with FileSystems.open(shard, compression_type=_UNCOMPRESSED) as shard_file:
        for line in shard_file:
          record = json.loads(line)
          counts[record['status']] += 1
          manifest_file.write(line)
          if record['status'] == UNREADABLE:
            list_file.write(record['reason'].encode() + b'\n')
  # Files, not a folder: a local folder would stay behind, emptied.
  FileSystems.delete(shards)
  return Summary(counts[WRITTEN], counts[SKIPPED], counts[UNREADABLE], manifest,
                 unreadable_list)


def denoise_batch(pattern: str, output_dir: str, model_dir: str,
                  beam_args: Sequence[str] = (), stream=None) -> Summary:
  """`dae-pipeline denoise PATTERN --output DIR`: denoises every matched file.

  Args:
    pattern: The inputs, a Beam file pattern (local or gs://; `*` within a
      folder, `**` across folders), e.g. 'gs://bucket/scans/**.png'.
    output_dir: Where the PNGs, manifest.jsonl and unreadable.txt go (a
      folder or bucket URI); outputs keep their paths relative to the
      pattern's fixed folder.
    model_dir: The SavedModel directory (the caller picks the newest served
      version with denoise.model_directory).
    beam_args: Beam pipeline options, e.g. ['--runner=DataflowRunner',
      '--project=...', '--region=...', '--temp_location=gs://...']; none: the
      DirectRunner in this process.
    stream: Where the model and summary lines go; stdout by default.

  Returns:
    The counts of written, skipped and unreadable inputs.

  Raises:
    DenoiseError: The model or the pattern is unusable (one line naming it).
  """
  stream = stream or sys.stdout
  output_dir = output_dir.rstrip('/')
  # The cheap checks first: loading the model takes seconds.
  _check_pattern(pattern)
  _check_output_apart(pattern, output_dir)
  denoise.check_model_directory(model_dir)
  denoiser = denoise.load_model(model_dir)
  print(denoise.model_line(model_dir, denoiser), file=stream)
  earlier = FileSystems.join(output_dir, MANIFEST_NAME)
  parts_prefix = FileSystems.join(output_dir, _PARTS_PREFIX + uuid.uuid4().hex)
  # A bar on a terminal only: a log gets the summary line alone.
  show_progress = progress.enabled() and sys.stderr.isatty()
  with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
    build_pipeline(pipeline, pattern, output_dir, model_dir,
                   denoiser.serving_shape,
                   earlier if FileSystems.exists(earlier) else None,
                   parts_prefix, show_progress)
  progress.close_shared(PROGRESS_DESCRIPTION)
  summary = _merge_manifest(parts_prefix, output_dir)
  print(summary.line(), file=stream)
  return summary
