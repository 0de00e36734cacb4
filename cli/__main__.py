"""``python -m cli ARGS``: the same as ``wapipe ARGS`` (how wapipe up starts its services)."""

from cli.main import entry

entry()
