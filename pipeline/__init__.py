"""The MNIST denoising-autoencoder TFX pipeline: its DAG (pipeline.py), the
local runner, the command line (cli/) and the Kubeflow and Vertex AI
packages, runs and clients (kubeflow/)."""
