"""The command line: `python -m marvel` and its `--help`."""
