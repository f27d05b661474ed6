"""The pipeline's job as one plain Keras script: the end-to-end yardstick.

    python -m bench.plain_keras [--profile full|smoke]

Loads MNIST through the same TFDS builder, adds the same noise in memory,
trains the same model with the same recipe and number of steps, and
evaluates the test split with the same metrics: everything the pipeline does
except validation, statistics, artifacts, MLMD, blessing and pushing. Prints
one JSON line: the wall seconds of each phase and the test metrics.
"""

import argparse
import json
import sys
import time



def main(argv=None) -> int:
  start = time.perf_counter()
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--profile', default='full')
  parser.add_argument('--max-train-steps', type=int, default=None,
                      help="cap training steps (as the pipeline's "
                      'training.max_train_steps)')
  args = parser.parse_args(argv)
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from bench import common  # pylint: disable=g-import-not-at-top
  from components.common import metrics  # pylint: disable=g-import-not-at-top
  from components.trainer import architectures  # pylint: disable=g-import-not-at-top
  from components.trainer import model as model_lib  # pylint: disable=g-import-not-at-top
  from components.trainer import plan as trainer_plan  # pylint: disable=g-import-not-at-top
  from components.trainer import strategy  # pylint: disable=g-import-not-at-top
  import pipeline_config  # pylint: disable=g-import-not-at-top
  config = pipeline_config.load_profile(args.profile)
  if args.max_train_steps is not None:
    config = pipeline_config.with_overrides(
        config, {'training.max_train_steps': args.max_train_steps})
  data, training = config.data, config.training
  phases = {'imports': time.perf_counter() - start}

  mark = time.perf_counter()
  mnist = common.load_mnist(data.source_dir)
  train_images, train_labels = mnist['train']
  test_images, test_labels = mnist['test']
  sizes = common.split_sizes(data, data.source_dir)
  train = (train_images[:sizes['train']], train_labels[:sizes['train']])
  test = (test_images[:sizes['test']], test_labels[:sizes['test']])
  phases['load'] = time.perf_counter() - mark

  mark = time.perf_counter()
  train_clean, train_noisy = common.noisy_copy(*train, config.noise)
  test_clean, test_noisy = common.noisy_copy(*test, config.noise)
  phases['noise'] = time.perf_counter() - mark

  mark = time.perf_counter()
  keras.utils.set_random_seed(training.seed)
  # The Trainer's precision policy.
  strategy.choose_placement(allow_mixed_precision=training.mixed_precision)
  plan = trainer_plan.plan_training(sizes['train'], training.batch_size,
                                    training.epochs, training.max_train_steps)
  epochs, per_epoch = plan.epochs, plan.steps_per_epoch
  model = model_lib.compile_model(
      architectures.build_model(training.architecture, training.loss,
                                common.mnist_info().image_shape), training.loss,
      training.learning_rate, schedule=training.lr_schedule,
      total_steps=epochs * per_epoch)
  dataset = (tf.data.Dataset.from_tensor_slices((train_noisy, train_clean))
             .shuffle(10_000, seed=training.seed).repeat()
             .batch(training.batch_size).prefetch(tf.data.AUTOTUNE))
  model.fit(dataset, epochs=epochs, steps_per_epoch=per_epoch, verbose=2,
            shuffle=False)  # The dataset shuffles itself.
  phases['train'] = time.perf_counter() - mark

  mark = time.perf_counter()
  denoised = model.predict(test_noisy, batch_size=1000, verbose=0)
  test_metrics = metrics.metrics_of_arrays(test_clean, denoised)
  phases['evaluate'] = time.perf_counter() - mark
  print(json.dumps({'profile': args.profile, 'train_steps': epochs * per_epoch,
                    'seconds': round(time.perf_counter() - start, 1),
                    'phases': {name: round(value, 1) for name, value in phases.items()},
                    'metrics': test_metrics, 'images_trained': int(
                        epochs * per_epoch * training.batch_size)}))
  return 0


if __name__ == '__main__':
  sys.exit(main())
