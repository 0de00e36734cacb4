"""``python -m wapipe.cli ARGS``: the same as ``wapipe ARGS``."""

from wapipe.cli.main import entry

entry()
