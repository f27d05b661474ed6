"""The serving check's probe: run in a fresh process, it loads a SavedModel
as a model server would and sends canary requests to every signature.

Usage: ``python -m components.serving_check.probe --model_dir DIR
--canaries FILE --image_shape H,W,C --output_dir DIR``. A fresh process
holds nothing of the pipeline's (no Keras objects registered by the Trainer,
no warmed-up graph), so what loads here loads in a server; a model whose
kernel aborts kills this process, not the pipeline's executor.

It writes `RESULT_FILENAME` (JSON: load time, per-signature inputs and
latencies, failures, one line each) and, for the signatures that answered,
`WARMUP_FILENAME`: TFRecords of TF Serving `PredictionLog`s with one
`PredictRequest` per signature (the SavedModel warm-up format,
https://www.tensorflow.org/tfx/serving/saved_model_warmup, as TFX's
InfraValidator writes it: tfx/components/infra_validator/executor.py,
`_convert_to_prediction_log`). It exits 0 whenever it could check; failures
are in the result.

Inputs of each signature are built from its structured_input_signature (the
registry `INPUT_BUILDERS`): float images for a float [N, H, W, C] input,
PNG bytes for a string input named ``*_bytes``, serialized tf.Examples for
any other string input. Every output is checked: shape, dtype, finite,
in [0, 1], and against the examples signature (what the Evaluator's TFMA
called) on the same pixels: within `FLOAT_TOLERANCE`, PNG outputs within
`PNG_TOLERANCE` (one grey level).

A model whose images signature takes any height and width (a fully
convolutional one) is also probed at two other sizes (`other_sizes`: the
canaries tiled and cut, one smaller and one larger, sides not multiples of
the poolings' 4), on every signature but the examples one (which takes the
trained shape): the same checks, against the images signature at that size.
"""

import argparse
import json
import os
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from components.common import names
from components.common import saved_model

RESULT_FILENAME = 'serving_check.json'
WARMUP_FILENAME = 'tf_serving_warmup_requests'
# The signature the Evaluator's predictions came from (TFMA calls it).
REFERENCE_SIGNATURE = saved_model.EXAMPLES_SIGNATURE
BYTES_SUFFIX = '_bytes'
FLOAT_TOLERANCE = 1e-5
# A PNG holds 8-bit pixels: rounding moves a value by at most half a level.
PNG_TOLERANCE = 1.0 / 255 + 1e-6
# Timed single-example requests per canary and signature (after one untimed).
TIMED_ROUNDS = 5
# Result keys.
LOAD_SECONDS = 'load_seconds'
SIGNATURES = 'signatures'
FAILURES = 'failures'
LATENCY_P50_MS = 'latency_p50_ms'
LATENCY_P99_MS = 'latency_p99_ms'
OTHER_SIZES = 'other_sizes'


def other_sizes(height: int, width: int) -> List[Tuple[int, int]]:
  """The (height, width) beside the canaries' at which a model serving any
  size is probed: one smaller, one larger; odd sides, as images come."""
  return [(max(1, height - 5), max(1, width - 3)),
          (2 * height + 3, 2 * width + 1)]


def _tiled(noisy: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
  """The canaries [N, H, W, C] repeated side by side and cut to `size`: an
  image of another size with the canaries' noise and content."""
  height, width = size
  repeats = (1, -(-height // noisy.shape[1]), -(-width // noisy.shape[2]), 1)
  return np.tile(noisy, repeats)[:, :height, :width, :]


def takes_any_size(signatures) -> bool:
  """Whether the model's images signature takes any height and width."""
  if saved_model.IMAGES_SIGNATURE not in signatures:
    return False
  _, inputs = signatures[saved_model.IMAGES_SIGNATURE].structured_input_signature
  return any(spec.shape.rank == 4 and spec.shape[1] is None
             and spec.shape[2] is None for spec in inputs.values())


class CheckFailed(Exception):
  """A signature answered wrongly; the message is the one-line reason."""


def _quantized(pixels: np.ndarray) -> np.ndarray:
  """The pixels a PNG of them holds, back on the [0, 1] scale."""
  return np.round(np.clip(pixels, 0.0, 1.0) * 255.0) / 255.0


def _png_batch(pixels: np.ndarray) -> tf.Tensor:
  """[N] PNG bytes of [N, H, W, C] pixels in [0, 1]."""
  levels = tf.constant(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
  return tf.stack([tf.io.encode_png(image) for image in levels])


def _example_batch(pixels: np.ndarray) -> tf.Tensor:
  """[N] serialized tf.Examples holding `pixels` as their noisy images."""
  return tf.constant([tf.train.Example(features=tf.train.Features(feature={
      names.NOISY: tf.train.Feature(float_list=tf.train.FloatList(
          value=image.reshape(-1)))})).SerializeToString() for image in pixels])


class InputBuilder(NamedTuple):
  """How to feed one kind of signature input."""
  kind: str
  accepts: Callable[[str, tf.TensorSpec], bool]
  build: Callable[[np.ndarray], tf.Tensor]
  # Whether the input carries 8-bit pixels (the reference then sees those).
  quantizes: bool = False


INPUT_BUILDERS = (
    InputBuilder('images', lambda name, spec: spec.dtype.is_floating
                 and spec.shape.rank == 4,
                 lambda pixels: tf.constant(pixels, tf.float32)),
    InputBuilder('png_bytes', lambda name, spec: spec.dtype == tf.string
                 and name.endswith(BYTES_SUFFIX), _png_batch, quantizes=True),
    InputBuilder('examples', lambda name, spec: spec.dtype == tf.string,
                 _example_batch),
)


def _builders(name: str, signature) -> Dict[str, InputBuilder]:
  """{input name: its builder} of a signature; CheckFailed for an input no
  builder feeds."""
  _, inputs = signature.structured_input_signature
  chosen = {}
  for input_name, spec in sorted(inputs.items()):
    builder = next((builder for builder in INPUT_BUILDERS
                    if builder.accepts(input_name, spec)), None)
    if builder is None:
      raise CheckFailed(f'signature {name!r}: no canary for input '
                        f'{input_name!r} ({spec.dtype.name} {spec.shape})')
    chosen[input_name] = builder
  return chosen


def _one_line(error: Exception) -> str:
  """An error's type and the last line of its message that is not a node
  reference: a TF op error reads 'Graph execution error:', then where the
  node was defined, then what failed, then '[[{{node ...}}]]'."""
  text = getattr(error, 'message', None) or str(error)
  lines = [line.strip() for line in text.splitlines()
           if line.strip() and not line.strip().startswith('[[')]
  return f'{type(error).__name__}: {lines[-1] if lines else "no message"}'


def _call(name: str, signature, builders: Dict[str, InputBuilder],
          pixels: np.ndarray, at: str = '') -> Dict[str, np.ndarray]:
  """The signature's outputs for `pixels`; CheckFailed when the call fails
  (`at`: where, told after 'canaries', e.g. ' at 23x25')."""
  try:
    outputs = signature(**{input_name: builder.build(pixels)
                           for input_name, builder in builders.items()})
  except Exception as error:  # pylint: disable=broad-except
    raise CheckFailed(f'signature {name!r} failed on its canaries{at}: '
                      f'{_one_line(error)}') from error
  return {key: value.numpy() for key, value in outputs.items()}


def _check_float_output(where: str, value: np.ndarray, expected_shape: Tuple,
                        reference: np.ndarray,
                        reference_name: str = REFERENCE_SIGNATURE) -> None:
  if value.shape != expected_shape:
    raise CheckFailed(f'{where} has shape {list(value.shape)}, not '
                      f'{list(expected_shape)}')
  if value.dtype != np.float32:
    raise CheckFailed(f'{where} is {value.dtype}, not float32')
  if not np.all(np.isfinite(value)):
    raise CheckFailed(f'{where} has non-finite values (NaN/inf)')
  if value.min() < 0.0 or value.max() > 1.0:
    raise CheckFailed(f'{where} leaves [0, 1]: {value.min():.4g}..'
                      f'{value.max():.4g}')
  difference = float(np.max(np.abs(value - reference)))
  if not difference <= FLOAT_TOLERANCE:  # NaN differences too.
    raise CheckFailed(f'{where} differs from {reference_name!r} by '
                      f'{difference:.3g} (> {FLOAT_TOLERANCE:g})')


def _check_png_output(where: str, value: np.ndarray, expected_shape: Tuple,
                      reference: np.ndarray,
                      reference_name: str = REFERENCE_SIGNATURE) -> None:
  if value.shape != expected_shape[:1]:
    raise CheckFailed(f'{where} has shape {list(value.shape)}, not '
                      f'[{expected_shape[0]}] (one PNG per image)')
  try:
    images = np.stack([tf.io.decode_png(encoded, channels=expected_shape[3]
                                        ).numpy() for encoded in value])
  except Exception as error:  # pylint: disable=broad-except
    raise CheckFailed(f'{where} is not PNG images: {_one_line(error)}') from error
  if images.shape != expected_shape:
    raise CheckFailed(f'{where} decodes to {list(images.shape)}, not '
                      f'{list(expected_shape)}')
  difference = float(np.max(np.abs(images / 255.0 - reference)))
  if not difference <= PNG_TOLERANCE:
    raise CheckFailed(f'{where} differs from {reference_name!r} by '
                      f'{difference * 255:.3g} grey levels (> 1)')


def _reference_output(outputs: Dict[str, np.ndarray],
                      name: str = REFERENCE_SIGNATURE) -> np.ndarray:
  """A reference signature's images: its OUTPUT_KEY, or its sole output."""
  if saved_model.OUTPUT_KEY in outputs:
    return outputs[saved_model.OUTPUT_KEY]
  if len(outputs) == 1:
    return next(iter(outputs.values()))
  raise CheckFailed(f'signature {name!r} has no '
                    f'{saved_model.OUTPUT_KEY!r} output (it has {sorted(outputs)})')


def _check_outputs(name: str, outputs: Dict[str, np.ndarray], shape: Tuple,
                   expected: np.ndarray, reference_name: str,
                   at: str = '') -> None:
  """Checks each output of a signature against the reference's images."""
  for key, value in sorted(outputs.items()):
    where = f'signature {name!r} output {key!r}{at}'
    if value.dtype == object:  # tf.string.
      _check_png_output(where, value, shape, expected, reference_name)
    elif np.issubdtype(value.dtype, np.floating):
      _check_float_output(where, value, shape, expected, reference_name)
    else:
      raise CheckFailed(f'{where} is {value.dtype}: neither images nor PNGs')


def check_other_sizes(name: str, signature, images_signature,
                      noisy: np.ndarray) -> List[List[int]]:
  """Checks a signature of a model serving any size at `other_sizes` of the
  canaries, against the images signature at that size; the sizes checked
  ([] for a signature of examples, which take the trained shape).

  Raises:
    CheckFailed: naming the signature, the size and why.
  """
  builders = _builders(name, signature)
  if any(builder.kind == 'examples' for builder in builders.values()):
    return []
  quantizes = any(builder.quantizes for builder in builders.values())
  checked = []
  for size in other_sizes(*noisy.shape[1:3]):
    at = ' at {}x{}'.format(*size)
    pixels = _tiled(noisy, size)
    pixels = (_quantized(pixels) if quantizes else pixels).astype(np.float32)
    outputs = _call(name, signature, builders, pixels, at)
    expected = _reference_output(_call(
        saved_model.IMAGES_SIGNATURE, images_signature,
        _builders(saved_model.IMAGES_SIGNATURE, images_signature), pixels, at),
                                 saved_model.IMAGES_SIGNATURE)
    _check_outputs(name, outputs, pixels.shape, expected,
                   saved_model.IMAGES_SIGNATURE, at)
    checked.append(list(size))
  return checked


def _timed_ms(function: Callable[[], object]) -> float:
  start = time.perf_counter()
  function()
  return (time.perf_counter() - start) * 1000.0


def check_signature(name: str, signature, reference, noisy: np.ndarray,
                    any_size_reference=None
                    ) -> Tuple[dict, predict_pb2.PredictRequest, List[float]]:
  """Checks one signature on the canaries `noisy` ([N, H, W, C]), and with
  `any_size_reference` (the images signature of a model serving any size)
  at other sizes too (`check_other_sizes`).

  Returns:
    (its summary for the result, the warm-up request of its canaries, the
    milliseconds of its timed single-example requests).

  Raises:
    CheckFailed: naming the signature and why.
  """
  builders = _builders(name, signature)
  pixels = (_quantized(noisy) if any(builder.quantizes
                                     for builder in builders.values())
            else noisy).astype(np.float32)
  outputs = _call(name, signature, builders, pixels)
  expected = _reference_output(_call(
      REFERENCE_SIGNATURE, reference, _builders(REFERENCE_SIGNATURE, reference),
      pixels))
  _check_outputs(name, outputs, pixels.shape, expected, REFERENCE_SIGNATURE)
  sizes = (check_other_sizes(name, signature, any_size_reference, noisy)
           if any_size_reference is not None else [])
  latencies = []
  for index in range(len(pixels)):
    single = pixels[index:index + 1]
    _call(name, signature, builders, single)  # Untimed: the first may trace.
    latencies += [_timed_ms(lambda: _call(name, signature, builders, single))
                  for _ in range(TIMED_ROUNDS)]
  request = predict_pb2.PredictRequest(
      model_spec=model_pb2.ModelSpec(signature_name=name))
  for input_name, builder in builders.items():
    request.inputs[input_name].CopyFrom(
        tf.make_tensor_proto(builder.build(pixels).numpy()))
  summary = {'inputs': {input_name: builder.kind
                        for input_name, builder in builders.items()},
             'outputs': sorted(outputs),
             OTHER_SIZES: sizes,
             LATENCY_P50_MS: float(np.percentile(latencies, 50)),
             LATENCY_P99_MS: float(np.percentile(latencies, 99))}
  return summary, request, latencies


def read_canaries(path: str, image_shape: Tuple[int, ...]) -> np.ndarray:
  """The noisy images [N, H, W, C] of the serialized examples in `path`."""
  serialized = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
  parsed = tf.io.parse_example(serialized, {names.NOISY: (
      tf.io.FixedLenFeature([int(np.prod(image_shape))], tf.float32))})
  return parsed[names.NOISY].numpy().reshape((-1,) + tuple(image_shape))


def probe(model_dir: str, noisy: np.ndarray, output_dir: str) -> dict:
  """Loads the model, checks every signature on `noisy`, writes the result
  and the warm-up requests into `output_dir`; returns the result."""
  start = time.perf_counter()
  loaded = tf.saved_model.load(model_dir)
  result = {LOAD_SECONDS: time.perf_counter() - start, SIGNATURES: {},
            FAILURES: []}
  signatures = loaded.signatures
  requests, latencies = [], []
  if REFERENCE_SIGNATURE not in signatures:
    result[FAILURES].append(
        f'no {REFERENCE_SIGNATURE!r} signature, the one the Evaluator called '
        f'(it has {sorted(signatures)})')
  else:
    any_size_reference = (signatures[saved_model.IMAGES_SIGNATURE]
                          if takes_any_size(signatures) else None)
    for name in sorted(signatures):
      try:
        summary, request, timed = check_signature(
            name, signatures[name], signatures[REFERENCE_SIGNATURE], noisy,
            any_size_reference)
      except CheckFailed as failure:
        result[FAILURES].append(str(failure))
        continue
      except Exception as error:  # pylint: disable=broad-except
        # Answers no check foresaw (a reference of another shape, ...).
        result[FAILURES].append(f'signature {name!r}: {_one_line(error)}')
        continue
      result[SIGNATURES][name] = summary
      requests.append(request)
      latencies += timed
  if latencies:
    result[LATENCY_P50_MS] = float(np.percentile(latencies, 50))
    result[LATENCY_P99_MS] = float(np.percentile(latencies, 99))
  with tf.io.TFRecordWriter(os.path.join(output_dir, WARMUP_FILENAME)) as writer:
    for request in requests:
      writer.write(prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request)
      ).SerializeToString())
  with tf.io.gfile.GFile(os.path.join(output_dir, RESULT_FILENAME), 'w') as out:
    json.dump(result, out, indent=1, sort_keys=True)
  return result


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model_dir', required=True)
  parser.add_argument('--canaries', required=True,
                      help='a TFRecord file of serialized noisy tf.Examples')
  parser.add_argument('--image_shape', required=True, help='H,W,C')
  parser.add_argument('--output_dir', required=True)
  args = parser.parse_args(argv)
  image_shape = tuple(int(side) for side in args.image_shape.split(','))
  probe(args.model_dir, read_canaries(args.canaries, image_shape),
        args.output_dir)
  return 0


if __name__ == '__main__':
  sys.exit(main())
