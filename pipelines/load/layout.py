"""The warehouse folder's layout, named once: every path a run writes or a reader opens.

authorgraph.duckdb            the published database (replaced whole, never written in place)
current -> versions/<run_id>  the published Parquet tables and run state (a symlink swap)
parquet -> current/parquet    a stable path to the published Parquet tables
versions/<run_id>/            parquet/*.parquet, state/ and outputs.json of one run
.staging/<run_id>/            a run in progress (removed by the next run if it was killed)
quarantine/                   a copy of each rejected file that was read
data_docs/                    the Great Expectations Data Docs site
run_log.jsonl                 runs that published nothing
.lock                         the writer lock
"""

from __future__ import annotations

DUCKDB_FILE = "authorgraph.duckdb"
CURRENT_LINK = "current"
PARQUET_DIR = "parquet"
VERSIONS_DIR = "versions"
STATE_DIR = "state"
STAGING_DIR = ".staging"
QUARANTINE_DIR = "quarantine"
DATA_DOCS_DIR = "data_docs"
RUN_LOG = "run_log.jsonl"
LOCK_FILE = ".lock"
OUTPUTS_FILE = "outputs.json"
