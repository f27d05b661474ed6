"""What /proc/cpuinfo says of this machine's CPU: its model name and flags.

Read by the Trainer (which precision to train in) and by the benchmarks (which
CPU a figure belongs to). No TensorFlow import: the benchmarks' provenance
runs in processes that need none.
"""

from typing import List, Optional, Tuple

CPUINFO_PATH = '/proc/cpuinfo'


def read(path: str = CPUINFO_PATH) -> Tuple[Optional[str], List[str]]:
  """The first processor's model name and flags; (None, []) where the file
  cannot be read (not Linux)."""
  try:
    with open(path, encoding='utf-8') as cpuinfo:
      lines = cpuinfo.readlines()
  except OSError:
    return None, []
  def field(name):
    return next((line.split(':', 1)[1].strip() for line in lines
                 if line.startswith(name)), None)
  flags = field('flags')
  return field('model name'), flags.split() if flags else []
