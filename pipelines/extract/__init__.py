"""Extract: list the seeds folder (rules E1-E6), read and parse the files in batches, and the
keys (code and settings fingerprints) the parse cache is valid under."""
