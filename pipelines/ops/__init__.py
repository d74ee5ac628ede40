"""Operations: running on a schedule (`serve`), the local Prefect server, ending every process
started, and the task runners (threads, processes, Dask)."""
