"""authorgraph pipelines: configuration, extract, the Prefect flow and the CLI."""
