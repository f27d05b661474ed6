"""`dae-pipeline denoise`: denoises PNG/JPEG/.npy images with a SavedModel.

The model is the newest complete version of the serving directory (what a
model server serves, see components/common/serving_dir.py) or a SavedModel named on
the command line; the image shape it takes is read from its signature: a
fully convolutional model takes images of any height and width and gives
back the same size, another model only the size it was trained on (images
are never resized).

Everything is read and checked before anything is written: a bad file (missing,
undecodable, of the wrong size) is refused with a one-line error naming it, and
no output is half-done. TensorFlow does the decoding, the model and the PNG
encoding; all I/O goes through `tf.io.gfile`, so paths may be buckets. TFX is
not imported (serving_dir needs only its small file-I/O module).
"""

import dataclasses
import io
import os
import posixpath
import re
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components.common import serving_dir
from components.common import saved_model

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
NUMPY_EXTENSION = '.npy'
OUTPUT_EXTENSION = '.png'


class DenoiseError(Exception):
  """A one-line reason why the command cannot run (names the file)."""


@dataclasses.dataclass
class ImageFile:
  """The images of one input file, float32 [N, H, W, C].

  Attributes:
    path: The file.
    images: Its images (one for a PNG/JPEG or a 2-D/3-D .npy).
    stacked: Whether it is a stack ([N, H, W, C] .npy): outputs are numbered.
  """
  path: str
  images: np.ndarray
  stacked: bool

  def labels(self) -> List[str]:
    """How each image is named in messages: the file, or file[i] in a stack."""
    if not self.stacked:
      return [self.path]
    return [f'{self.path}[{index}]' for index in range(len(self.images))]

  def output_names(self) -> List[str]:
    """The output file name of each image: <stem>.png or <stem>-<i>.png."""
    stem = posixpath.splitext(posixpath.basename(self.path))[0]
    if not self.stacked:
      return [stem + OUTPUT_EXTENSION]
    return [f'{stem}-{index}{OUTPUT_EXTENSION}' for index in range(len(self.images))]


def model_directory(model_dir: Optional[str], base_directory: str) -> Tuple[str, str]:
  """The SavedModel directory to use and how to name it in messages.

  Args:
    model_dir: --model, or None for the serving directory's newest version.
    base_directory: The serving directory (config.serving_dir).
  """
  if model_dir:
    check_model_directory(model_dir)
    return model_dir, model_dir
  version = serving_dir.newest_complete_version(base_directory)
  if version is None:
    raise DenoiseError(f'no complete model version in {base_directory} (run the '
                       'pipeline, choose it with --profile/--serving-dir, or '
                       'pass --model DIR)')
  return (serving_dir.version_path(base_directory, version),
          f'version {version} of {base_directory}')


def check_model_directory(model_dir: str) -> None:
  """DenoiseError unless `model_dir` holds a complete SavedModel."""
  if not serving_dir.is_complete(model_dir):
    raise DenoiseError(f'{model_dir} is not a SavedModel directory (no '
                       f'{serving_dir.SAVED_MODEL_FILENAME})')


def load_model(model_dir: str) -> saved_model.Denoiser:
  """The SavedModel's images signature; DenoiseError when it has none."""
  try:
    return saved_model.Denoiser(model_dir)
  except (ValueError, OSError, tf.errors.OpError) as error:
    raise DenoiseError(f'cannot load the model {model_dir}: {error}') from None


def _read_bytes(path: str) -> bytes:
  if not tf.io.gfile.exists(path):
    raise DenoiseError(f'{path}: no such file')
  with tf.io.gfile.GFile(path, 'rb') as image_file:
    return image_file.read()


def _decode_picture(path: str, contents: bytes) -> np.ndarray:
  """A PNG/JPEG's pixels, float32 [H, W, C] in [0, 1]."""
  try:
    pixels = tf.io.decode_image(contents, expand_animations=False).numpy()
  except tf.errors.InvalidArgumentError as error:
    raise DenoiseError(f'{path}: cannot be decoded as an image '
                       f'({op_error_text(error)})') from None
  return pixels.astype(np.float32) / 255.0  # decode_image gives 8 bits.


def _decode_numpy(path: str, contents: bytes) -> Tuple[np.ndarray, bool]:
  """A .npy's images, float32 [N, H, W, C], and whether it is a stack."""
  try:
    array = np.load(io.BytesIO(contents), allow_pickle=False)
  except (ValueError, OSError, EOFError) as error:
    raise DenoiseError(f'{path}: not a .npy array ({error})') from None
  if array.dtype == np.uint8:
    array = array / 255.0
  elif not np.issubdtype(array.dtype, np.floating):
    raise DenoiseError(f'{path}: {array.dtype} pixels; expected floats in '
                       '[0, 1] or uint8')
  if array.ndim == 2:
    return array[None, :, :, None].astype(np.float32), False
  if array.ndim == 3 and array.shape[-1] in (1, 3):
    return array[None].astype(np.float32), False
  if array.ndim == 4:
    return array.astype(np.float32), True
  raise DenoiseError(f'{path}: an array of shape {list(array.shape)}; expected '
                     '[H, W], [H, W, C] (C 1 or 3) or [N, H, W, C]')


def picture_file(path: str, contents: bytes) -> ImageFile:
  """A PNG/JPEG file's image from its bytes; DenoiseError naming it if bad."""
  return ImageFile(path, _decode_picture(path, contents)[None], False)


def read_image_file(path: str) -> ImageFile:
  """The images of a PNG, JPEG or .npy file; DenoiseError naming it if bad."""
  extension = posixpath.splitext(path)[1].lower()
  if extension not in IMAGE_EXTENSIONS + (NUMPY_EXTENSION,):
    raise DenoiseError(f'{path}: unsupported file type {extension or "(none)"!r} '
                       '(PNG, JPEG or .npy)')
  contents = _read_bytes(path)
  if extension == NUMPY_EXTENSION:
    images, stacked = _decode_numpy(path, contents)
    return ImageFile(path, images, stacked)
  return picture_file(path, contents)


def fit_to_model(image_file: ImageFile, image_shape: Sequence[int],
                 say: Callable[[str], None] = print) -> ImageFile:
  """The file's images in the model's channels; DenoiseError if of another size.

  Grey becomes RGB for a 3-channel model and colour grey for a 1-channel one
  (told to `say`, printed by default); an alpha channel is dropped.

  Args:
    image_file: The images.
    image_shape: (height, width, channels) the model takes
      (Denoiser.serving_shape): height and width None for any size.
    say: Where the conversions are told.
  """
  height, width, channels = image_shape
  images = image_file.images
  if height is not None and images.shape[1:3] != (height, width):
    raise DenoiseError(
        f'{image_file.path} is {images.shape[1]}x{images.shape[2]} (HxW); the '
        f'model takes {height}x{width}')
  if images.shape[-1] in (2, 4):  # Grey or colour with alpha.
    images = images[..., :-1]
  if images.shape[-1] == 3 and channels == 1:
    images = tf.image.rgb_to_grayscale(images).numpy()
    say(f'{image_file.path}: colour converted to grey (the model takes 1 channel)')
  elif images.shape[-1] == 1 and channels == 3:
    images = tf.image.grayscale_to_rgb(tf.constant(images)).numpy()
    say(f'{image_file.path}: grey converted to RGB (the model takes 3 channels)')
  if images.shape[-1] != channels:
    raise DenoiseError(f'{image_file.path} has {images.shape[-1]} channels; the '
                       f'model takes {channels}')
  return dataclasses.replace(image_file, images=images)


# Lines of TensorFlow's frame around an error raised in a graph, not its reason.
_GRAPH_ERROR_FRAME = re.compile(
    r'Graph execution error|Detected at node|<stack traces|\[\[')


# TensorFlow's wrapping of an eager op's message: the function node before
# it ('{{function_node __wrapped__DecodeImage_device_/job:localhost/...}}')
# and the op's name after it (' [Op:DecodeImage] name: ').
_OP_ERROR_WRAPPING = re.compile(r'^\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\].*$')


def op_error_text(error: tf.errors.OpError) -> str:
  """An eager op's message in words: its first line, TensorFlow's wrapping cut."""
  return _OP_ERROR_WRAPPING.sub('', error.message.strip().splitlines()[0]).strip()


def model_error_reason(error: tf.errors.OpError) -> str:
  """The message of an in-graph check (saved_model.py), else the error's first
  line that is not TensorFlow's frame (e.g. a shape check's message)."""
  found = re.search(r'assertion failed: \[(.*?)\] \[', error.message)
  if found:
    return found.group(1)
  lines = [line.strip() for line in error.message.strip().splitlines()]
  reasons = [line for line in lines if line and not _GRAPH_ERROR_FRAME.match(line)]
  return (reasons or lines)[0]


def denoise_file(denoiser: saved_model.Denoiser, image_file: ImageFile) -> np.ndarray:
  """The model's output for the file's images; DenoiseError if it refuses them."""
  try:
    return denoiser(image_file.images)
  except tf.errors.InvalidArgumentError as error:
    raise DenoiseError(f'{image_file.path}: the model refused it: '
                       f'{model_error_reason(error)}') from None


def encode_png(image: np.ndarray) -> bytes:
  """A [H, W, C] float image as PNG bytes: clipped to [0, 1], 8 bits."""
  pixels = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
  return tf.io.encode_png(pixels).numpy()


def _check_output_names(image_files: Sequence[ImageFile], output_dir: str,
                        protected: Sequence[str]) -> None:
  """Refuses inputs whose outputs would overwrite each other, or overwrite
  one of the `protected` files (the inputs and references)."""
  kept = {os.path.abspath(path) for path in protected if '://' not in path}
  kept |= {path for path in protected if '://' in path}
  seen = {}
  for image_file in image_files:
    for name in image_file.output_names():
      if name in seen:
        raise DenoiseError(f'{image_file.path} and {seen[name]} would both be '
                           f'written to {name}')
      seen[name] = image_file.path
      path = _output_path(output_dir, name)
      if (path if '://' in path else os.path.abspath(path)) in kept:
        raise DenoiseError(f'the output {path} would overwrite an input; '
                           'choose another --output directory')


def _output_path(output_dir: str, name: str) -> str:
  return f'{output_dir.rstrip("/")}/{name}'


def read_references(paths: Sequence[str], image_files: Sequence[ImageFile],
                    image_shape: Sequence[int]) -> List[ImageFile]:
  """The clean references, one file per input file, checked against it."""
  if len(paths) != len(image_files):
    raise DenoiseError(f'{len(paths)} --reference files for {len(image_files)} '
                       'images; give one per image, in the same order')
  references = []
  for path, image_file in zip(paths, image_files):
    reference = fit_to_model(read_image_file(path), image_shape)
    if len(reference.images) != len(image_file.images):
      raise DenoiseError(f'{path} holds {len(reference.images)} images but '
                         f'{image_file.path} {len(image_file.images)}')
    if reference.images.shape[1:3] != image_file.images.shape[1:3]:
      raise DenoiseError(
          f'{path} is {_size_name(reference.images)} (HxW) but '
          f'{image_file.path} {_size_name(image_file.images)}')
    references.append(reference)
  return references


def _size_name(images: np.ndarray) -> str:
  """'28x28' for images [N, 28, 28, C]."""
  return f'{images.shape[1]}x{images.shape[2]}'


def model_line(description: str, denoiser: saved_model.Denoiser) -> str:
  """The line that names the model and the images it takes."""
  height, width, channels = denoiser.image_shape
  if denoiser.any_size:
    return (f'model: {description} (takes images of any size with {channels} '
            f'channel(s); trained on {height}x{width}x{channels}, HxWxC)')
  return f'model: {description} (takes {height}x{width}x{channels} images, HxWxC)'


def quality_lines(image_file: ImageFile, denoised: np.ndarray,
                  reference: ImageFile) -> List[str]:
  """Per image: PSNR and SSIM of the input and of the output vs the reference.

  PSNR is tf.image.psnr and SSIM metrics.ssim (tf.image.ssim's definition),
  both with max_val 1: the Evaluator's per-image metrics.
  """
  from components.common import metrics  # pylint: disable=g-import-not-at-top
  clean = tf.constant(reference.images)
  figures = []
  for images in (image_file.images, denoised):
    images = tf.constant(images, tf.float32)
    try:
      ssim = metrics.ssim(clean, images, max_val=1.0).numpy()
    except ValueError as error:  # Images smaller than SSIM's window.
      raise DenoiseError(f'{reference.path}: {error}') from None
    figures.append((tf.image.psnr(clean, images, max_val=1.0).numpy(), ssim))
  (psnr_in, ssim_in), (psnr_out, ssim_out) = figures
  return [f'{label}: PSNR {psnr_in[index]:.1f} -> {psnr_out[index]:.1f} dB, '
          f'SSIM {ssim_in[index]:.2f} -> {ssim_out[index]:.2f}'
          for index, label in enumerate(image_file.labels())]


def write_outputs(output_dir: str, image_file: ImageFile,
                  denoised: np.ndarray) -> str:
  """Writes one PNG per image of the file; returns the line that says so."""
  tf.io.gfile.makedirs(output_dir)
  paths = [_output_path(output_dir, name) for name in image_file.output_names()]
  for path, image in zip(paths, denoised):
    with tf.io.gfile.GFile(path, 'wb') as png_file:
      png_file.write(encode_png(image))
  if len(paths) == 1:
    return f'wrote {paths[0]}'
  return (f'wrote {len(paths)} images of {image_file.path} to {paths[0]} .. '
          f'{posixpath.basename(paths[-1])}')


def denoise_command(images: Sequence[str], output_dir: str,
                    model_dir: Optional[str], base_directory: str,
                    references: Optional[Sequence[str]] = None) -> None:
  """`dae-pipeline denoise`: reads and checks everything, then writes.

  Args:
    images: The input files (PNG, JPEG or .npy).
    output_dir: Where the PNGs go (a path or bucket URI).
    model_dir: --model, or None for the newest complete served version.
    base_directory: The serving directory (config.serving_dir).
    references: Clean files, one per input, for PSNR/SSIM lines; or None.

  Raises:
    DenoiseError: A bad file or model, named in one line; nothing written.
  """
  directory, description = model_directory(model_dir, base_directory)
  # The files first: loading the model takes seconds.
  image_files = [read_image_file(path) for path in images]
  denoiser = load_model(directory)
  print(model_line(description, denoiser))
  image_files = [fit_to_model(image_file, denoiser.serving_shape)
                 for image_file in image_files]
  clean_files = (read_references(references, image_files, denoiser.serving_shape)
                 if references else None)
  _check_output_names(image_files, output_dir,
                      list(images) + list(references or []))
  outputs = [denoise_file(denoiser, image_file) for image_file in image_files]
  quality = ([line for image_file, denoised, clean_file
              in zip(image_files, outputs, clean_files)
              for line in quality_lines(image_file, denoised, clean_file)]
             if clean_files else [])
  for image_file, denoised in zip(image_files, outputs):
    print(write_outputs(output_dir, image_file, denoised))
  for line in quality:
    print(line)
