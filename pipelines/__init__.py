"""authorgraph pipelines: orchestration (config, stages, the Prefect flow) at the top, the
extract, transform and load stages, the CLI and operations in subpackages."""
