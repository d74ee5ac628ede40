"""`python -m authorgraph.pipelines` runs the authorgraph CLI."""

from authorgraph.pipelines.cli.commands import main

if __name__ == "__main__":
    main()
