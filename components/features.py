"""Feature names, shapes and option names shared by the components.

Defined once here (the noise kinds: components/noise_transform/kinds.py);
`pipeline_config` takes the option lists from this module,
so component code needs no import of the CLI's configuration (and an edit of
that configuration's code does not change the components' code fingerprints).
"""

# Written by TfdsExampleGen (and the names of TFDS's MNIST features).
# Shapes and class names are the dataset's (components/dataset_info.py).
IMAGE = 'image'  # int64 [H*W*C]: raw pixels 0..255, row-major, channels last.
LABEL = 'label'  # int64 [1]: the class; absent when the dataset has no labels.

# Written by NoiseTransform.
CLEAN = 'clean'  # float [H*W*C] in [0, 1]: what the model must reconstruct.
NOISY = 'noisy'  # float [H*W*C], [0, 1] scale (outside it when unclipped).
NOISE_LEVEL = 'noise_level'  # float [1]: the stddev, or salt-and-pepper amount.

# Custom property of the Examples artifacts of TfdsExampleGen and
# NoiseTransform: JSON {split: number of examples}, for progress totals.
SPLIT_SIZES_PROPERTY = 'split_sizes'
# Custom property of NoiseTransform's Examples: JSON of the noise settings that
# made them (components/noise_transform/noise.py), which the Trainer reads to
# draw fresh noise of the same kind every pass (training.fresh_noise).
NOISE_SPEC_PROPERTY = 'noise_spec'

# The vendored source: four gzipped IDX files in a directory, keyed as TFDS's
# stock builder keys them, and the IDX headers before their pixels / labels.
SOURCE_FILENAMES = {
    'train_data': 'train-images-idx3-ubyte.gz',
    'train_labels': 'train-labels-idx1-ubyte.gz',
    'test_data': 't10k-images-idx3-ubyte.gz',
    'test_labels': 't10k-labels-idx1-ubyte.gz',
}
IDX_IMAGES_HEADER_BYTES = 16
IDX_LABELS_HEADER_BYTES = 8

# Option names of the components' settings.
ARCHITECTURES = ('article', 'unet', 'unet_large')
LOSSES = ('bce', 'mse', 'l1')
LR_SCHEDULES = ('cosine', 'constant')
