"""Operations: running on a schedule (`serve`), the local Prefect server, ending every process
started, the task runners (threads, processes, Dask), and steps run in a child process."""
