"""The MNIST denoising-autoencoder TFX pipeline: its DAG and its runners."""
