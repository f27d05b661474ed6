"""Whether the Trainer keeps its examples in memory or streams them.

tf.data's `cache()` holds every parsed example in memory after the first
pass: fast for MNIST, but 100,000 RGB images of 128x128 parse to ~25 GB of
float32 noisy and 8-bit clean pixels (data._pack_clean), beyond most
training pods. The Trainer
caches only what fits a budget (a setting, or half the memory it finds) and
otherwise reads the records anew every pass through a shuffle buffer sized
within the same budget, so its memory stays bounded as the data grows.
"""

import dataclasses
import pathlib
from typing import Optional

import psutil

from components.common import dataset_info as dataset_info_lib

MIB = 2**20
# The shuffle buffer's size when the budget allows it, and its least when
# streaming on a small budget (fewer barely shuffles), in examples.
SHUFFLE_BUFFER = 10_000
MIN_SHUFFLE_BUFFER = 1_000
# Of the memory found, the share the cache may take: the model, its
# gradients, tf.data's prefetching and TensorFlow itself need the rest.
FOUND_MEMORY_SHARE = 0.5
# cgroup files holding a container's memory limit (v2, then v1): a pod's
# limit, which the machine's free memory does not show.
CGROUP_LIMIT_FILES = ('/sys/fs/cgroup/memory.max',
                      '/sys/fs/cgroup/memory/memory.limit_in_bytes')
# Bytes of a parsed key of fresh noise (an int64 per example).
KEY_BYTES = 8
FLOAT32_BYTES = 4
UINT8_BYTES = 1


@dataclasses.dataclass(frozen=True)
class InputPlan:
  """How the Trainer reads its examples.

  Attributes:
    cache: Keep the parsed examples in memory after the first pass.
    shuffle_buffer: Examples held by the shuffle buffer.
    needed_bytes: Memory the parsed train and eval examples take.
    budget_bytes: Memory they may take.
    budget_source: Where the budget comes from, in words.
  """
  cache: bool
  shuffle_buffer: int
  needed_bytes: int
  budget_bytes: int
  budget_source: str

  def describe(self) -> str:
    """One line saying which the Trainer chose, and why."""
    sizes = (f'{self.needed_bytes / MIB:,.0f} MiB of parsed examples, budget '
             f'{self.budget_bytes / MIB:,.0f} MiB ({self.budget_source})')
    if self.cache:
      return f'examples cached in memory ({sizes})'
    return (f'examples streamed from the records through a shuffle buffer of '
            f'{self.shuffle_buffer:,} ({sizes})')


def example_bytes(info: dataset_info_lib.DatasetInfo, fresh_noise: bool) -> int:
  """Memory one parsed example takes: the float32 noisy image and the 8-bit
  clean one (data._pack_clean), or (fresh noise) the 8-bit clean image and
  its noise key."""
  if fresh_noise:
    return info.pixels * UINT8_BYTES + KEY_BYTES
  return info.pixels * (FLOAT32_BYTES + UINT8_BYTES)


def train_bytes(train_examples: int, info: dataset_info_lib.DatasetInfo,
                fresh_noise: bool) -> int:
  """Memory the parsed train split takes: its examples of the dataset's
  shape, or (a train split of whole images, `data.patch_size`) the values
  the ExampleGen counted, float32 noisy and 8-bit clean (the Trainer crops
  after the cache, so it holds whole images)."""
  if info.whole_train_images:
    return info.whole_train_values * (FLOAT32_BYTES + UINT8_BYTES)
  return train_examples * example_bytes(info, fresh_noise)


def _cgroup_limit_bytes() -> Optional[int]:
  """The container's memory limit; None where there is none (or no cgroup)."""
  for name in CGROUP_LIMIT_FILES:
    try:
      text = pathlib.Path(name).read_text().strip()
    except OSError:
      continue
    if text.isdigit():
      return int(text)
    return None  # 'max': no limit.
  return None


def found_memory_bytes() -> int:
  """Memory available to this process: the machine's available memory, or
  the container's limit where that is lower."""
  available = psutil.virtual_memory().available
  limit = _cgroup_limit_bytes()
  return min(available, limit) if limit else available


def plan_input(train_examples: int, eval_examples: int,
               info: dataset_info_lib.DatasetInfo, fresh_noise: bool,
               budget_mb: Optional[int]) -> InputPlan:
  """Caches the examples when they fit the budget; streams them otherwise.

  Args:
    train_examples: Examples of the train split.
    eval_examples: Examples of the eval split.
    info: The dataset's description (the shape of its images).
    fresh_noise: Whether the Trainer draws fresh noise (it then caches clean
      images and keys, not noisy and clean images).
    budget_mb: The training setting `cache_budget_mb`; None: a share of the
      memory found.
  """
  if budget_mb is None:
    budget_bytes = int(found_memory_bytes() * FOUND_MEMORY_SHARE)
    source = f'{FOUND_MEMORY_SHARE:.0%} of the memory found'
  else:
    budget_bytes = budget_mb * MIB
    source = 'training.cache_budget_mb'
  train = train_bytes(train_examples, info, fresh_noise)
  needed = train + eval_examples * example_bytes(info, fresh_noise)
  cache = needed <= budget_bytes
  per_example = example_bytes(info, fresh_noise)
  if info.whole_train_images and train_examples:
    # The shuffle buffer holds whole train images: their mean, rounded up.
    per_example = max(1, -(-train // train_examples))
  # Streaming keeps only the shuffle buffer: within the budget where it can.
  shuffle_buffer = SHUFFLE_BUFFER if cache else max(
      MIN_SHUFFLE_BUFFER, min(SHUFFLE_BUFFER, budget_bytes // per_example))
  return InputPlan(cache=cache, shuffle_buffer=shuffle_buffer,
                   needed_bytes=needed, budget_bytes=budget_bytes,
                   budget_source=source)
