"""A compiled training loop for MultiWorkerMirroredStrategy.

Keras 3's `Model.fit` fails under MultiWorkerMirroredStrategy ("Attempt to
convert a value (PerReplica...)", keras-team/keras#20585, open; Keras 3.15's
TF trainer still reduces every step output per replica), so several workers
train with this loop instead: `strategy.run` of one step inside a
`tf.function` (compiled, never eager), gradients all-reduced by the strategy,
the loss averaged over the global batch. Under the mixed_float16 policy Keras
wraps the optimizer in a `LossScaleOptimizer` (GPUs): the step scales the loss
before taking gradients and the optimizer unscales them (and skips steps whose
gradients overflow), as `fit` does; float16 gradients would underflow to zero
without it. The chief logs the loss to TensorBoard.
"""

import keras
import tensorflow as tf

from components.trainer import model as model_lib


def train(model: keras.Model, strategy: tf.distribute.Strategy, loss: str,
          dataset: tf.data.Dataset, steps: int, global_batch: int,
          log_dir: str) -> float:
  """Trains `model` (built and compiled in `strategy.scope()`) for `steps`.

  Args:
    model: The compiled model; its optimizer is used.
    strategy: A (multi-worker) tf.distribute strategy.
    loss: One of model.LOSSES.
    dataset: Repeated batches of (noisy, clean), `global_batch` images each.
    steps: Number of optimisation steps.
    global_batch: Images per step over all replicas.
    log_dir: TensorBoard directory of this worker.

  Returns:
    The last step's loss.
  """
  with strategy.scope():
    per_pixel = model_lib.make_loss(loss)
    per_pixel.reduction = None
  iterator = iter(strategy.experimental_distribute_dataset(dataset))

  @tf.function
  def train_step(iterator):
    def step(noisy, clean):
      with tf.GradientTape() as tape:
        denoised = model(noisy, training=True)
        per_image = tf.reduce_mean(per_pixel(clean, denoised), axis=[1, 2])
        step_loss = tf.nn.compute_average_loss(per_image,
                                               global_batch_size=global_batch)
        # A no-op unless the optimizer scales losses (LossScaleOptimizer).
        scaled_loss = model.optimizer.scale_loss(step_loss)
      gradients = tape.gradient(scaled_loss, model.trainable_variables)
      model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
      return step_loss
    losses = strategy.run(step, args=next(iterator))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

  writer = tf.summary.create_file_writer(log_dir)
  last = float('nan')
  with writer.as_default():
    for index in range(steps):
      last = float(train_step(iterator))
      tf.summary.scalar('loss', last, step=index)
  return last
