"""``python -m wapipe ARGS``: the same as ``wapipe ARGS`` (how ``wapipe up`` starts its
services, and how the tests run the command)."""

from wapipe.cli.main import entry

entry()
