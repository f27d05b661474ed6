"""TFMA's default extractors, then a progress bar of the examples evaluated.

TFX's Evaluator takes extractors from the function `custom_extractors` of the
module its `module_path` names (tfx/components/evaluator/executor.py:
`udf_utils.try_get_fn(exec_properties, 'custom_extractors')`, called with
`eval_shared_model`, `eval_config` and `tensor_adapter_config`) and hands
them to `tfma.ExtractEvaluateAndWriteResults`, which otherwise builds
`tfma.default_extractors` from the same three. So the defaults come first,
unchanged, and the last extractor passes what they make through, counting
it: they end by unbatching (`UnbatchExtractor`, then `SliceKeyExtractor`),
so each element is one example whose predictions are made, and the bar
advances with the model's work, not with reading.

The executor (executor.py) names this module and gives the number of
examples to expect (the split sizes NoiseTransform recorded) before TFX
builds the Beam pipeline; the DoFn keeps that total, so it also travels to
remote Beam workers.
"""

from typing import List, Optional

import apache_beam as beam
import tensorflow_model_analysis as tfma

from components.common import progress

STAGE_NAME = 'CountEvaluatedExamples'
# The bar's description.
DESCRIPTION = 'evaluate'

# TFX reloads the module it is named by before it calls `custom_extractors`
# (tfx/utils/import_utils.py: `importlib.reload` in import_func_from_module):
# the total the executor set must survive that.
_expected_examples: Optional[int] = globals().get('_expected_examples')


def expect_examples(count: Optional[int]) -> None:
  """Sets the total of the next evaluation's bar (None: unknown, no ETA)."""
  global _expected_examples
  _expected_examples = count


def custom_extractors(eval_shared_model, eval_config,
                      tensor_adapter_config) -> List[tfma.extractors.Extractor]:
  """TFMA's defaults for these arguments, then the counting extractor."""
  defaults = tfma.default_extractors(
      eval_shared_model=eval_shared_model, eval_config=eval_config,
      tensor_adapter_config=tensor_adapter_config)
  counting = beam.ParDo(progress.CountProgress(
      DESCRIPTION, _expected_examples))
  return defaults + [tfma.extractors.Extractor(stage_name=STAGE_NAME,
                                               ptransform=counting)]
