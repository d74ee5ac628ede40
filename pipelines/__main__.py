"""`python -m pipelines` runs the authorgraph CLI."""

from pipelines.cli import main

if __name__ == "__main__":
    main()
