"""The pipeline on Kubeflow Pipelines and Vertex AI Pipelines.

compiler: the DAG compiled to a KFP v2 package; entrypoint: every compiled
task's container command; run_compiled: a compiled package run here, task by
task, as a pre-flight check; kfp_client and vertex_client: submitting and
scheduling on each; follow: following a remote run to its end.

Nothing is imported here: the entrypoint runs as `python -m` in every task,
and the CLI's `--help` stays fast.
"""
