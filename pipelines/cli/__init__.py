"""The command line (`authorgraph ...`, typer) and what it prints or writes for people:
result formats, the progress line, the HTML report."""
