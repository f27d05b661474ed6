"""Names that the components, the pipeline and the CLI share, defined once.

Feature names, node ids, artifact keys and property names. This module
imports nothing: the CLI and run summaries read MLMD by these names without
importing TFX, and an edit elsewhere does not change the components' code
fingerprints.
"""

# Written by TfdsExampleGen (and the names of TFDS's MNIST features).
# Shapes and class names are the dataset's (components/common/dataset_info.py).
IMAGE = 'image'  # int64 [H*W*C]: raw pixels 0..255, row-major, channels last.
# int64 [1] each, on every example of a patch_size dataset: the image's
# size, so that a train split of whole images of any size can be reshaped.
HEIGHT = 'height'
WIDTH = 'width'
LABEL = 'label'  # int64 [1]: the class; absent when the dataset has no labels.

# Written by NoiseTransform.
CLEAN = 'clean'  # float [H*W*C] in [0, 1]: what the model must reconstruct.
NOISY = 'noisy'  # float [H*W*C], [0, 1] scale (outside it when unclipped).
NOISE_LEVEL = 'noise_level'  # float [1]: the stddev, or salt-and-pepper amount.

# Custom property of the Examples artifacts of TfdsExampleGen and
# NoiseTransform: JSON {split: number of examples}, for progress totals.
SPLIT_SIZES_PROPERTY = 'split_sizes'
# Custom property of TfdsExampleGen's Examples of an image folder: how many
# bad images it skipped (data.max_bad_images).
SKIPPED_IMAGES_PROPERTY = 'skipped_images'
# Custom property of NoiseTransform's Examples: JSON of the noise settings that
# made them (components/common/noise/__init__.py), which the Trainer reads to
# draw fresh noise of the same kind every pass (training.fresh_noise).
NOISE_SPEC_PROPERTY = 'noise_spec'

# Option names of the training settings (architectures are a registry:
# components/trainer/architectures.py).
LOSSES = ('bce', 'mse', 'l1')
LR_SCHEDULES = ('cosine', 'constant')

# Node ids of the pipeline (pipeline/pipeline.py), by which MLMD records runs.
NOISE_TRANSFORM_NODE = 'NoiseTransform'
SCHEMA_GEN_NODE = 'SchemaGen'
TRAINER_NODE = 'Trainer'
SERVED_MODEL_NODE = 'ServedModel'
EVALUATOR_NODE = 'Evaluator'
SERVING_CHECK_NODE = 'ServingCheck'
VISUAL_REPORT_NODE = 'VisualReport'
PUSHER_NODE = 'Pusher'

# The serving dir's folder of push records (components/common/push_records.py),
# which TF Serving ignores: it loads numeric version directories only.
PUSH_RECORDS_DIRNAME = '.push-records'

# Output keys read after a run.
NOISY_EXAMPLES_KEY = 'noisy_examples'  # NoiseTransform's Examples.
REPORT_KEY = 'report'  # VisualReport's directory of pictures and metrics.
HTML_REPORT_KEY = 'html_report'  # The same report as one HTML page.
INFRA_BLESSING_KEY = 'blessing'  # ServingCheck's InfraBlessing.
# TFX's names (tfx/types/standard_component_specs.py; not imported: TFX's
# import takes seconds): the Trainer's TensorBoard logs, the Pusher's output.
MODEL_RUN_KEY = 'model_run'
PUSHED_MODEL_KEY = 'pushed_model'

# Custom properties of the PushedModel: TFX's Pusher's
# (tfx/components/pusher/executor.py), then ours.
PUSHED_PROPERTY = 'pushed'
PUSHED_DESTINATION_PROPERTY = 'pushed_destination'
PUSHED_VERSION_PROPERTY = 'pushed_version'
ALREADY_SERVED_VERSION_PROPERTY = 'already_served_version'
NOT_PUSHED_REASON_PROPERTY = 'not_pushed_reason'
# Of the Evaluator's ModelBlessing, as TFX's Evaluator writes it
# (tfx/components/evaluator/constants.py, ARTIFACT_PROPERTY_BLESSED_KEY).
MODEL_BLESSED_PROPERTY = 'blessed'
# Of the InfraBlessing: as TFX's InfraValidator names its flag (its
# executor's _BLESSED_KEY), then ours, why it was not blessed.
INFRA_BLESSED_PROPERTY = 'blessed'
# Its flag of a blessing that carries a stamped model (_MODEL_FLAG_KEY; TFX's
# Pusher reads it as _INFRA_BLESSING_MODEL_FLAG_KEY).
INFRA_HAS_MODEL_PROPERTY = 'has_model'
SERVING_FAILURE_PROPERTY = 'failure'
# ServedModel's parameter: the serving dir it reads (the run's, which
# `dae-pipeline report` charts the history of).
SERVING_DIR_PARAMETER = 'serving_dir'
# Of ServedModel's Model: what the serving dir served when it ran.
SERVED_VERSION_PROPERTY = 'served_version'
SERVED_PATH_PROPERTY = 'served_path'
SERVED_FINGERPRINT_PROPERTY = 'served_fingerprint'
