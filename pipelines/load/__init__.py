"""Load: publish the tables into the warehouse folder (staging, atomic swap, writer lock, run
state, safe file I/O, folder checks, the analytics views) and read them back."""
