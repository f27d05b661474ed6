"""What raises the DAE's quality per unit of compute: a sweep of training recipes.

    python -m bench.recipes --train OUT [--parallel N] [--deadline S]
    python -m bench.recipes --evaluate OUT      (or: make bench-recipes RECIPES_DIR=OUT)
    python -m bench.recipes --average OUT/A.weights.npz OUT/B.weights.npz ...

Each recipe is the pipeline's own model code (components/trainer/model.py:
`build_unet`, `compile_model`) trained on the pipeline's training images and
noise (sigma 0.2, unclipped; bench/common.py `noisy_copy`) held in memory, so
that the recipes differ only in what they name. `--train` runs on any Keras 3
backend and needs no TensorFlow: on a GPU machine it runs under JAX (jitted),
each recipe in its own process, one at a time unless `--parallel N` (processes
sharing one GPU time-slice it), and writes per recipe
OUT/NAME.json (test PSNR from the mean MSE, seconds, losses) and
OUT/NAME.weights.npz. `--evaluate` (TensorFlow backend, this project's
environment) loads each recipe's weights into the same model built here,
scores the test set with the Evaluator's metric classes
(components/common/metrics.py), times a float32 training step of each model
on this machine's CPU, and writes bench/results/recipes.json and the table
of docs/benchmarks.md, keeping the recorded rows of recipes OUT did not train.

The training images are MNIST's first `train_examples` training images in
the order the pipeline's TFDS builder stores them: `--order FILE` gives that
order (written by `--write-order FILE`, which needs TFDS) for machines
without TFDS; without it the IDX files' own order is used.

`--average` scores the mean of trained recipes' outputs on the test set, each
pair's and all of them, with the correlation of each pair's per-pixel errors:
whether what a family of models leaves is error of its own (averaging removes
it) or error they share.
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import gzip
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np

from bench import classical
from bench import common
from components.tfds_example_gen import settings as example_gen_settings
from components.common import noise
from components.trainer import model as model_lib
from components.trainer import plan as plan_lib
import pipeline_config

NAME = 'recipes'
HEADLINE_NOISE = pipeline_config.NoiseSpec(kind='gaussian', stddev=0.2)


# The sweep's baseline differs from today's pipeline default in these two:
# it was the default when the sweep was recorded (bench/results/recipes.json
# has its provenance), and its best same-cost change, `mse-batch32`, has been the
# default since. Kept, so that a re-run means what the recorded rows mean.
BASELINE_LOSS = 'bce'
BASELINE_BATCH_SIZE = 128


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One way of training the DAE; the defaults are the sweep's baseline: the
  pipeline's defaults, but for BASELINE_LOSS and BASELINE_BATCH_SIZE.

  Attributes:
    name: Short identifier (file names, the table).
    change: What differs from the baseline, in words.
    architecture: 'unet' or 'unet_large' (components/trainer/model.py).
    unet: Overrides of the architecture's UNetSpec fields.
    loss, learning_rate, epochs, batch_size, seed: as in TrainingSpec.
    warmup_fraction: Fraction of the steps the rate warms up over.
    weight_decay: AdamW's decoupled weight decay (0: Adam).
    fresh_noise: New noise every epoch (as TrainingSpec.fresh_noise: epoch
      0 the fixed copy's, then noise.redraw_keys), instead of one fixed copy.
  """
  name: str
  change: str
  architecture: str = 'unet'
  unet: Dict[str, object] = dataclasses.field(default_factory=dict)
  loss: str = BASELINE_LOSS
  learning_rate: float = pipeline_config.TrainingSpec.learning_rate
  epochs: int = pipeline_config.TrainingSpec.epochs
  batch_size: int = BASELINE_BATCH_SIZE
  seed: int = pipeline_config.TrainingSpec.seed
  warmup_fraction: float = 0.0
  weight_decay: float = 0.0
  fresh_noise: bool = pipeline_config.TrainingSpec.fresh_noise


# `--train` starts them costliest first (`by_cost`), so that the deadline
# cuts short the quick recipes, not the long ones: a run that meets the
# deadline is cut short, and none starts within 30 s of it.
RECIPES = (
    Recipe('large-fresh-30', 'unet_large, 30 epochs, fresh noise every epoch',
           architecture='unet_large', epochs=30, fresh_noise=True),
    Recipe('large-30', 'unet_large, 30 epochs', architecture='unet_large', epochs=30),
    Recipe('fresh', 'fresh noise every epoch', fresh_noise=True),
    Recipe('epochs30', 'baseline, 30 epochs', epochs=30),
    Recipe('baseline', 'the earlier default profile (BCE, batch 128)'),
    Recipe('seed7', 'baseline, another seed (the spread of one run)', seed=7),
    Recipe('mse', 'MSE loss instead of BCE', loss='mse'),
    Recipe('l1', 'L1 (mean absolute error) loss instead of BCE', loss='l1'),
    Recipe('lr1e-3', 'peak rate 1e-3', learning_rate=1e-3),
    Recipe('lr4e-3', 'peak rate 4e-3', learning_rate=4e-3),
    Recipe('batchnorm', 'batch normalisation in every block',
           unet={'batch_norm': True}),
    Recipe('batchnorm-lr4e-3', 'batch normalisation, peak rate 4e-3',
           unet={'batch_norm': True}, learning_rate=4e-3),
    Recipe('warmup', 'linear warm-up over the first 5% of steps',
           warmup_fraction=0.05),
    Recipe('adamw', 'AdamW, weight decay 1e-4', weight_decay=1e-4),
    Recipe('bilinear', 'bilinear upsampling + 3x3 conv instead of transposed conv',
           unet={'upsampling': 'bilinear'}),
    Recipe('bottleneck128', 'bottleneck of 128 channels (32/64/128)',
           unet={'widths': (32, 64, 128)}),
    Recipe('three-convs', 'three convolutions per block', unet={'convs_per_block': 3}),
    Recipe('batch64', 'batch of 64 (twice the steps)', batch_size=64),
    Recipe('epochs12', '12 epochs', epochs=12),
    Recipe('epochs16', '16 epochs', epochs=16),
    Recipe('large-8', 'unet_large, 8 epochs', architecture='unet_large'),
    Recipe('large-12', 'unet_large, 12 epochs', architecture='unet_large', epochs=12),
    Recipe('batchnorm-three-convs', 'batch normalisation, three convolutions per block',
           unet={'batch_norm': True, 'convs_per_block': 3}),
    Recipe('batchnorm-epochs12', 'batch normalisation, 12 epochs',
           unet={'batch_norm': True}, epochs=12),
    # MSE (linear output clipped to [0, 1], since 4ae224e) with the changes
    # above that do not cost more CPU time per epoch.
    Recipe('mse-fresh', 'MSE loss, fresh noise every epoch', loss='mse',
           fresh_noise=True),
    Recipe('mse-batchnorm', 'MSE loss, batch normalisation in every block',
           loss='mse', unet={'batch_norm': True}),
    Recipe('mse-batch64', 'MSE loss, batch of 64 (twice the steps)', loss='mse',
           batch_size=64),
    Recipe('mse-lr1e-3', 'MSE loss, peak rate 1e-3', loss='mse', learning_rate=1e-3),
    Recipe('mse-epochs16', 'MSE loss, 16 epochs', loss='mse', epochs=16),
    # The single changes that beat the default by more than a seed's spread
    # (batch64, three-convs, batchnorm), stacked.
    Recipe('batch64-three-convs', 'batch of 64, three convolutions per block',
           batch_size=64, unet={'convs_per_block': 3}),
    Recipe('mse-batch64-three-convs',
           'MSE loss, batch of 64, three convolutions per block', loss='mse',
           batch_size=64, unet={'convs_per_block': 3}),
    Recipe('batch64-batchnorm', 'batch of 64, batch normalisation',
           batch_size=64, unet={'batch_norm': True}),
    Recipe('batch64-batchnorm-three-convs',
           'batch of 64, batch normalisation, three convolutions per block',
           batch_size=64, unet={'batch_norm': True, 'convs_per_block': 3}),
    Recipe('batch32', 'batch of 32 (four times the steps)', batch_size=32),
    Recipe('mse-batch32', 'MSE loss, batch of 32 (four times the steps)',
           loss='mse', batch_size=32),
    Recipe('large-fresh-8', 'unet_large, fresh noise every epoch',
           architecture='unet_large', fresh_noise=True),
    Recipe('fresh-epochs30', 'fresh noise every epoch, 30 epochs',
           fresh_noise=True, epochs=30),
    # The default's compute spent on width instead of epochs (trained on a
    # CPU): a quarter of its epochs at ~4x the multiply-adds per
    # image, against the same quarter, and half, of the default.
    Recipe('mse-batch32-epochs2', 'MSE loss, batch of 32, 2 epochs', loss='mse',
           batch_size=32, epochs=2),
    Recipe('mse-batch32-widths64-epochs2',
           'MSE loss, batch of 32, widths 64/128/128 (~4x the multiply-adds), 2 epochs',
           loss='mse', batch_size=32, epochs=2, unet={'widths': (64, 128, 128)}),
    Recipe('mse-batch32-epochs4', 'MSE loss, batch of 32, 4 epochs', loss='mse',
           batch_size=32, epochs=4),
    # unet_large with fresh noise (27.09 dB after 30 epochs at BCE/128) under
    # what made the default better: MSE, and smaller batches (more updates).
    Recipe('large-fresh-mse-30', 'unet_large, fresh noise, MSE loss, 30 epochs',
           architecture='unet_large', fresh_noise=True, loss='mse', epochs=30),
    Recipe('large-fresh-mse-batch64-20',
           'unet_large, fresh noise, MSE loss, batch of 64, 20 epochs',
           architecture='unet_large', fresh_noise=True, loss='mse',
           batch_size=64, epochs=20),
    Recipe('large-fresh-mse-batch32-12',
           'unet_large, fresh noise, MSE loss, batch of 32, 12 epochs',
           architecture='unet_large', fresh_noise=True, loss='mse',
           batch_size=32, epochs=12),
    # Those three land at 27.05-27.07 with train = test MSE: more epochs, or
    # more channels, on BCE/128.
    Recipe('large-fresh-60', 'unet_large, fresh noise, 60 epochs',
           architecture='unet_large', fresh_noise=True, epochs=60),
    Recipe('large-widths96-fresh-30',
           'unet_large at widths 96/192/384 (~2.2x the multiply-adds), fresh noise, 30 epochs',
           architecture='unet_large', fresh_noise=True, epochs=30,
           unet={'widths': (96, 192, 384)}),
)
RECIPES_BY_NAME = {recipe.name: recipe for recipe in RECIPES}


def _idx_bytes(source_dir: str, split: str, key: str) -> bytes:
  path = os.path.join(source_dir, example_gen_settings.SOURCE_FILENAMES[f'{split}_{key}'])
  with gzip.open(path, 'rb') as idx_file:
    return idx_file.read()


def image_shape(source_dir: Optional[str] = None) -> tuple:
  """(rows, columns, 1): the images' shape, as MNIST's IDX image header says."""
  return common.mnist_info(source_dir).image_shape


def read_idx(source_dir: str, split: str):
  """(uint8 images [N, rows x columns], int64 labels [N]) of a split's
  gzipped IDX files.

  Numpy alone (the TFDS builder's checks live in sources, which needs
  TensorFlow), so that training runs where only Keras and a backend are.
  """
  def payload(key: str, header_bytes: int) -> np.ndarray:
    return np.frombuffer(_idx_bytes(source_dir, split, key), np.uint8,
                         offset=header_bytes)
  pixels = payload('data', example_gen_settings.IDX_IMAGES_HEADER_BYTES)
  labels = payload('labels', example_gen_settings.IDX_LABELS_HEADER_BYTES)
  rows, columns, _ = image_shape(source_dir)
  return pixels.reshape(-1, rows * columns), labels.astype(np.int64)


def write_order(path: str) -> None:
  """Saves the permutation that puts the IDX training images in TFDS's order."""
  images, labels = read_idx(pipeline_config.default_source_dir(), 'train')
  position = {image.tobytes() + bytes([label]): index
              for index, (image, label) in enumerate(zip(images, labels))}
  tfds_images, tfds_labels = common.load_mnist()['train']
  order = np.array([position[image.reshape(-1).tobytes() + bytes([label])]
                    for image, label in zip(tfds_images, tfds_labels)], np.int32)
  np.save(path, order)


def training_images(order_path: Optional[str]):
  """(images uint8 [N, 28, 28], labels): the full profile's train split."""
  images, labels = read_idx(pipeline_config.default_source_dir(), 'train')
  if order_path:
    order = np.load(order_path)
    images, labels = images[order], labels[order]
  count = common.split_sizes(pipeline_config.DataSpec())['train']
  return images[:count], labels[:count]


def training_data(order_path: Optional[str]):
  """(noisy, clean) float32 [N, 28, 28, 1]: the full profile's train split."""
  clean, noisy = common.noisy_copy(*training_images(order_path), HEADLINE_NOISE)
  return noisy, clean


class FreshNoiseBatches(keras.utils.PyDataset):
  """Shuffled (noisy, clean) batches whose noise is new every epoch.

  Epoch e corrupts each image with draw e of its noise (noise.redraw_keys),
  as the Trainer does with `training.fresh_noise`: epoch 0 is the fixed copy
  of `training_data`.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray,
               spec: noise.NoiseSpec, batch_size: int, seed: int,
               **kwargs):
    super().__init__(**kwargs)
    flat = images.reshape(len(images), -1)
    self._clean = flat.astype(np.float32) / 255.0
    self._keys = noise.example_keys(flat, labels)
    self._spec, self._batch_size = spec, batch_size
    self._shuffle = np.random.default_rng(seed)
    self._order = self._shuffle.permutation(len(flat))
    self.epoch = 0

  def __len__(self) -> int:
    return plan_lib.steps_per_pass(len(self._clean), self._batch_size)

  def __getitem__(self, index: int):
    chosen = self._order[index * self._batch_size:(index + 1) * self._batch_size]
    draws = np.full(len(chosen), self.epoch)
    noisy, _ = noise.add_noise(
        self._clean[chosen], noise.redraw_keys(self._keys[chosen], draws),
        self._spec)
    shape = (-1,) + image_shape()
    return noisy.reshape(shape), self._clean[chosen].reshape(shape)

  def on_epoch_end(self) -> None:
    self.epoch += 1
    self._order = self._shuffle.permutation(len(self._clean))


def test_data():
  """(noisy, clean) float32 [10000, 28, 28, 1]: the headline test setting."""
  images, labels = read_idx(pipeline_config.default_source_dir(), 'test')
  clean, noisy = common.noisy_copy(images, labels, HEADLINE_NOISE)
  return noisy, clean


def build_uncompiled(recipe: Recipe) -> keras.Model:
  """The recipe's model, not compiled (pipeline code; see module docstring)."""
  spec = dataclasses.replace(model_lib.UNET_SPECS[recipe.architecture],
                             **recipe.unet)
  return model_lib.build_unet(spec, loss=recipe.loss,
                              image_shape=image_shape())


def build(recipe: Recipe, total_steps: int = 0):
  """The recipe's compiled model (pipeline code; see module docstring)."""
  return model_lib.compile_model(
      build_uncompiled(recipe), recipe.loss, recipe.learning_rate,
      # Keras's JAX backend runs a step op by op unless it is jitted (~200 ms
      # vs a few ms per step on an H200); TensorFlow's runs it as a graph.
      jit_compile=keras.backend.backend() == 'jax',
      schedule='cosine', total_steps=total_steps,
      warmup_steps=int(recipe.warmup_fraction * total_steps),
      weight_decay=recipe.weight_decay)


def save_weights(model, path: str) -> None:
  """The model's weights, in order, as float32 arrays (any backend)."""
  np.savez(path, *[np.asarray(weight, np.float32) for weight in model.get_weights()])


def load_weights(model, path: str) -> None:
  """Sets weights saved by `save_weights` on an identically built model."""
  with np.load(path) as arrays:
    model.set_weights([arrays[f'arr_{index}'] for index in range(len(arrays.files))])


def multiply_adds_per_image(model: keras.Model) -> int:
  """Multiply-adds of one image's forward pass through the model's
  convolutions (the rest of the model is a rounding error): each output
  position of a convolution, or input position of a transposed one, times the
  size of its kernel."""
  total = 0
  for layer in model.layers:
    if isinstance(layer, keras.layers.Conv2DTranspose):
      positions = int(np.prod(layer.input.shape[1:3]))
    elif isinstance(layer, keras.layers.Conv2D):
      positions = int(np.prod(layer.output.shape[1:3]))
    else:
      continue
    total += positions * int(np.prod(layer.kernel.shape))
  return total


def by_cost(names: Sequence[str]) -> List[str]:
  """The recipes NAMES, costliest first: epochs times the model's
  multiply-adds per image (then the smaller batch, whose steps are more).
  An estimate: on a GPU a small batch's steps cost more than their
  multiply-adds."""
  def cost(name):
    recipe = RECIPES_BY_NAME[name]
    return (recipe.epochs * multiply_adds_per_image(build_uncompiled(recipe)),
            -recipe.batch_size)
  return sorted(names, key=cost, reverse=True)


def _deadline_callback(deadline: float) -> keras.callbacks.Callback:
  """A callback that stops training at wall-clock time `deadline` and says so
  in its `cut_short`."""

  class StopAtDeadline(keras.callbacks.Callback):
    cut_short = False

    def on_train_batch_end(self, batch, logs=None):
      if time.time() > deadline:
        self.model.stop_training = True
        self.cut_short = True

  return StopAtDeadline()


def training_device() -> str:
  """What trains: the accelerator's name under JAX ('NVIDIA H100 80GB HBM3'),
  else the backend's default ('cpu')."""
  if keras.backend.backend() == 'jax':
    import jax  # pylint: disable=g-import-not-at-top
    return jax.devices()[0].device_kind
  return 'cpu'


def train_one(recipe: Recipe, out_dir: str, order_path: Optional[str],
              deadline: float) -> Dict[str, object]:
  """Trains one recipe; writes OUT/NAME.json and OUT/NAME.weights.npz."""
  keras.utils.set_random_seed(recipe.seed)
  if recipe.fresh_noise:
    # Threads: numpy releases the GIL in the noise's array operations.
    inputs = (FreshNoiseBatches(*training_images(order_path), HEADLINE_NOISE,
                                recipe.batch_size, recipe.seed, workers=8),)
    steps_per_epoch = len(inputs[0])
    batching = {}
  else:
    noisy, clean = training_data(order_path)
    inputs = (noisy, clean)
    steps_per_epoch = plan_lib.steps_per_pass(len(noisy), recipe.batch_size)
    batching = {'batch_size': recipe.batch_size, 'shuffle': True}
  model = build(recipe, recipe.epochs * steps_per_epoch)
  stop = _deadline_callback(deadline)
  start = time.time()
  history = model.fit(*inputs, epochs=recipe.epochs, verbose=2,
                      callbacks=[stop], **batching)
  fit_seconds = time.time() - start
  test_noisy, test_clean = test_data()
  denoised = model.predict(test_noisy, batch_size=1000, verbose=0)
  save_weights(model, os.path.join(out_dir, f'{recipe.name}.weights.npz'))
  result = {'recipe': dataclasses.asdict(recipe), 'backend': keras.backend.backend(),
            'device': training_device(),
            'parameters': model.count_params(),
            'epochs_run': len(history.history['loss']),
            'cut_short': stop.cut_short, 'fit_seconds': round(fit_seconds, 1),
            'train_loss': [round(v, 6) for v in history.history['loss']],
            'test_psnr_db': classical.psnr_of_mean_mse(test_clean, denoised)}
  with open(os.path.join(out_dir, f'{recipe.name}.json'), 'w') as output:
    json.dump(result, output, indent=1)
  return result


def train_all(names: Sequence[str], out_dir: str, parallel: int,
              order_path: Optional[str], deadline_seconds: float) -> int:
  """Trains recipes `parallel` at a time, each in its own process."""
  os.makedirs(out_dir, exist_ok=True)
  deadline = time.time() + deadline_seconds

  def launch(name):
    if time.time() > deadline - 30:
      return name, 'not started (deadline)'
    command = [sys.executable, '-m', 'bench.recipes', '--train-one', name,
               '--out', out_dir, '--deadline-at', str(deadline)]
    if order_path:
      command += ['--order', order_path]
    with open(os.path.join(out_dir, f'{name}.log'), 'w') as log:
      code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                            check=False).returncode
    return name, f'exit {code}'

  with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    for name, state in pool.map(launch, by_cost(names)):
      summary = os.path.join(out_dir, f'{name}.json')
      if os.path.exists(summary):
        with open(summary) as f:
          result = json.load(f)
        state += (f", {result['test_psnr_db']:.3f} dB, {result['epochs_run']} "
                  f"epochs in {result['fit_seconds']} s"
                  + (' (cut short)' if result['cut_short'] else ''))
      print(f'{name}: {state}', flush=True)
  return 0


def cpu_step_seconds(model, batch_size: int, steps: int = 5) -> float:
  """Median wall seconds of one float32 training step on this machine's CPU."""
  rng = np.random.default_rng(0)
  noisy = rng.random((batch_size, 28, 28, 1), np.float32)
  clean = rng.random((batch_size, 28, 28, 1), np.float32)
  model.train_on_batch(noisy, clean)  # Traces the step.
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    model.train_on_batch(noisy, clean)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def evaluate(out_dir: str,
             recorded: Optional[Dict[str, object]] = None) -> Dict[str, object]:
  """Scores every trained recipe in OUT_DIR (see module docstring).

  Args:
    out_dir: A `--train` output folder.
    recorded: An earlier result (bench/results/recipes.json): its rows of
      recipes that OUT_DIR did not train are kept, each with the date and
      commit it was scored at, so that one sweep adds to the table.
  """
  from components.common import metrics  # pylint: disable=g-import-not-at-top
  test_noisy, test_clean = test_data()
  train_examples = common.split_sizes(pipeline_config.DataSpec())['train']
  provenance = common.provenance()
  rows = {}
  for recipe in RECIPES:
    summary = os.path.join(out_dir, f'{recipe.name}.json')
    if not os.path.exists(summary):
      continue
    with open(summary) as f:
      trained = json.load(f)
    steps_per_epoch = plan_lib.steps_per_pass(train_examples, recipe.batch_size)
    model = build(recipe, recipe.epochs * steps_per_epoch)
    load_weights(model, os.path.join(out_dir, f'{recipe.name}.weights.npz'))
    denoised = model.predict(test_noisy, batch_size=500, verbose=0)
    scores = metrics.metrics_of_arrays(test_clean, denoised)
    step_seconds = cpu_step_seconds(model, recipe.batch_size)
    rows[recipe.name] = {
        'change': recipe.change, 'recipe': dataclasses.asdict(recipe),
        'parameters': model.count_params(),
        'epochs_run': trained['epochs_run'], 'cut_short': trained['cut_short'],
        'train_backend': trained['backend'],
        'train_device': trained.get('device', 'unrecorded'),
        'train_fit_seconds': trained['fit_seconds'],
        'train_loss_last': trained['train_loss'][-1],
        'psnr': round(scores['psnr'], 3), 'ssim': round(scores['ssim'], 4),
        'mse': round(scores['mse'], 6),
        'psnr_on_train_machine': round(trained['test_psnr_db'], 3),
        'cpu_step_seconds': round(step_seconds, 4),
        'cpu_fit_minutes_estimate': round(
            step_seconds * steps_per_epoch * recipe.epochs / 60, 1),
        'scored': provenance['date'], 'scored_at_commit': provenance['commit'],
        'scored_on': provenance['machine']}
    print(f"{recipe.name}: {rows[recipe.name]['psnr']:.3f} dB, SSIM "
          f"{rows[recipe.name]['ssim']:.4f}, {step_seconds:.3f} s/step here",
          flush=True)
  return dict(provenance, noise=dataclasses.asdict(HEADLINE_NOISE),
              train_examples=train_examples, test_images=len(test_clean),
              recipes=with_recorded_rows(rows, recorded))


def average_outputs(clean: np.ndarray,
                    outputs: Dict[str, np.ndarray]) -> Dict[str, object]:
  """How much averaging models' outputs gains, and how alike their errors are.

  Near the error no denoiser can remove, models err alike and their average
  gains little; error of the models' own averages out. Scored with the
  Evaluator's metric classes.

  Args:
    clean: [N, 28, 28, 1] target images.
    outputs: Each model's name and its [N, 28, 28, 1] denoised images.

  Returns:
    {'models': {name: metrics}, 'pairs': {'a+b': {'psnr', 'ssim',
    'residual_correlation'}}, 'all': metrics of the mean of every output}:
    residual_correlation is Pearson's r of the two models' per-pixel errors
    (denoised - clean).
  """
  from components.common import metrics  # pylint: disable=g-import-not-at-top
  if len(outputs) < 2:
    raise ValueError(f'averaging needs two models or more, got {list(outputs)}')
  def score(names):
    mean = np.mean([outputs[name] for name in names], axis=0, dtype=np.float64)
    return metrics.metrics_of_arrays(clean, mean.astype(np.float32))
  errors = {name: (np.asarray(output, np.float64) - clean).ravel()
            for name, output in outputs.items()}
  names = list(outputs)
  pairs = {}
  for index, first in enumerate(names):
    for second in names[index + 1:]:
      scores = score([first, second])
      pairs[f'{first}+{second}'] = {
          'psnr': scores['psnr'], 'ssim': scores['ssim'],
          'residual_correlation': float(
              np.corrcoef(errors[first], errors[second])[0, 1])}
  return {'models': {name: score([name]) for name in names}, 'pairs': pairs,
          'all': score(names)}


def average_weights(paths: Sequence[str]) -> Dict[str, object]:
  """`average_outputs` of recipes' trained weights (OUT/NAME.weights.npz, the
  recipe named by the file) on the headline test set."""
  named = [(path, os.path.basename(path).removesuffix('.weights.npz'))
           for path in paths]
  for path, name in named:
    if name not in RECIPES_BY_NAME:
      raise ValueError(f'{path}: {name!r} is no recipe; known: '
                       f'{sorted(RECIPES_BY_NAME)}')
  repeated = sorted(name for name, count in
                    collections.Counter(name for _, name in named).items()
                    if count > 1)
  if repeated:
    raise ValueError(f'recipes {repeated} given more than once: each model is '
                     'named by its recipe')
  test_noisy, test_clean = test_data()
  outputs = {}
  for path, name in named:
    model = build_uncompiled(RECIPES_BY_NAME[name])
    load_weights(model, path)
    outputs[name] = model.predict(test_noisy, batch_size=500, verbose=0)
  return average_outputs(test_clean, outputs)


def with_recorded_rows(rows: Dict[str, Dict[str, object]],
                       recorded: Optional[Dict[str, object]]
                       ) -> Dict[str, Dict[str, object]]:
  """`rows`, plus the rows of `recorded` (an earlier result) of recipes that
  `rows` lacks, each stamped with the date, commit and machine it was scored
  at unless it already says so."""
  merged = dict(rows)
  for name, row in (recorded or {}).get('recipes', {}).items():
    if name not in merged:
      merged[name] = dict({'scored': recorded['date'],
                           'scored_at_commit': recorded['commit'],
                           'scored_on': recorded['machine']}, **row)
  return merged


def _delta(row: Dict[str, object], baseline: Optional[Dict[str, object]]) -> str:
  """PSNR minus the default's, where both ran the same epochs of the same
  schedule (a run cut short is compared only with one cut at the same point)."""
  if (baseline is None or row['epochs_run'] != baseline['epochs_run'] or
      row['recipe']['epochs'] != baseline['recipe']['epochs'] or
      row['cut_short'] != baseline['cut_short']):
    return '-'
  return f"{row['psnr'] - baseline['psnr']:+.2f}"


def render_table(result: Dict[str, object]) -> str:
  """The Markdown table of docs/benchmarks.md, best PSNR first."""
  rows = result['recipes']
  cells = []
  for name, row in sorted(rows.items(), key=lambda item: -item[1]['psnr']):
    epochs = (f"{row['epochs_run']} of {row['recipe']['epochs']} (cut short)"
              if row['cut_short'] else str(row['epochs_run']))
    # When a row was scored stays in the results file (`scored`); the CPU
    # it was scored on is shown: the CPU columns differ by machine.
    trained_on = (f"{row['train_device'].replace('NVIDIA ', '')}; "
                  f"scored on {common.describe_cpu(row['scored_on'])}")
    cells.append((f'`{name}`', row['change'], epochs, f"{row['parameters']:,}",
                  f"{row['psnr']:.2f}", _delta(row, rows.get('baseline')),
                  f"{row['ssim']:.4f}", trained_on,
                  f"{row['train_fit_seconds']:.0f}",
                  f"{row['cpu_step_seconds'] * 1000:.0f}",
                  f"{row['cpu_fit_minutes_estimate']:.0f}"))
  backends = sorted({row['train_backend'] for row in rows.values()})
  return '\n'.join([
      common.provenance_line(result) + f" Trained with Keras on {', '.join(backends)}"
      ' (where: the *trained on* column); each row scored and its'
      ' CPU step timed on the CPU its *scored* column names.', '',
      common.markdown_table(
          ('recipe', 'change from the baseline', 'epochs', 'parameters',
           'test PSNR dB', 'vs baseline (same epochs)', 'SSIM',
           'trained on; scored', 'train s',
           'CPU ms/step (scoring CPU)', 'CPU fit min (est., all epochs)'), cells)])


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--train', metavar='OUT')
  parser.add_argument('--train-one', metavar='NAME')
  parser.add_argument('--out')
  parser.add_argument('--only', default='', help='comma-separated recipe names')
  parser.add_argument('--parallel', type=int, default=1)
  parser.add_argument('--deadline', type=float, default=3600,
                      help='seconds after which runs are cut short')
  parser.add_argument('--deadline-at', type=float)
  parser.add_argument('--order', help='the TFDS order (see --write-order)')
  parser.add_argument('--write-order', metavar='FILE')
  parser.add_argument('--evaluate', metavar='OUT')
  parser.add_argument('--average', nargs='+', metavar='WEIGHTS',
                      help='OUT/NAME.weights.npz files: score their averaged '
                      'outputs and how alike their errors are')
  parser.add_argument('--render', action='store_true',
                      help='rewrite the docs/benchmarks.md table from the results file')
  args = parser.parse_args(argv)
  if args.write_order:
    write_order(args.write_order)
    return 0
  if args.render:
    return common.render_recorded(NAME, render_table)
  if args.average:
    print(json.dumps(average_weights(args.average), indent=1))
    return 0
  if args.evaluate:
    result = evaluate(args.evaluate, common.read_recorded(NAME))
    common.write_json(f'{NAME}.json', result)
    common.replace_section(NAME, render_table(result))
    print(render_table(result))
    return 0
  if args.train_one:
    train_one(RECIPES_BY_NAME[args.train_one], args.out, args.order,
              args.deadline_at)
    return 0
  if args.train:
    names = [name for name in args.only.split(',') if name] or [
        recipe.name for recipe in RECIPES]
    unknown = sorted(set(names) - set(RECIPES_BY_NAME))
    if unknown:
      parser.error(f'unknown recipes {unknown}; known: {sorted(RECIPES_BY_NAME)}')
    return train_all(names, args.train, args.parallel, args.order, args.deadline)
  parser.error('one of --train, --evaluate, --average, --write-order')
  return 2


if __name__ == '__main__':
  sys.exit(main())
