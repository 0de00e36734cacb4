"""Business logic named in the settings: ``module:function`` strings loaded as async functions
(the message worker's ``WAPIPE_MESSAGE_HANDLERS``, the flows worker's ``WAPIPE_FLOW_HANDLERS``)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import Any

from wapipe.shared.settings import SettingsError


def load_async_functions(names: Sequence[str], variable: str) -> list[Any]:
    """The functions named "module:function"; one clear error, naming ``variable``, for a name
    that is none or not async."""
    functions = []
    for name in names:
        module_name, _, function_name = name.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise SettingsError(f"{variable}: cannot load {name!r}: {exc}") from None
        if not inspect.iscoroutinefunction(function):
            raise SettingsError(f"{variable}: {name!r} is not an async function")
        functions.append(function)
    return functions
