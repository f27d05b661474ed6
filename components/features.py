"""Feature names and shapes shared by the components (defined once here)."""

# Written by TfdsExampleGen (and the names of TFDS's MNIST features).
IMAGE = 'image'  # int64 [784]: raw pixels 0..255, row-major 28x28.
LABEL = 'label'  # int64 [1]: the digit 0..9.

# Written by NoiseTransform.
CLEAN = 'clean'  # float [784] in [0, 1]: what the model must reconstruct.
NOISY = 'noisy'  # float [784], [0, 1] scale (outside it when unclipped).
NOISE_LEVEL = 'noise_level'  # float [1]: the stddev, or salt-and-pepper amount.

IMAGE_SHAPE = (28, 28, 1)
PIXELS = 28 * 28
