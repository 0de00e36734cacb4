"""How a command fails: one line on stderr, and an exit status from one table.

    exit  meaning
    0     done
    1     failed: the far side answered and refused (the Cloud API, the broker, a job the
          sender failed with its code and title, a template or job that is not there)
    2     usage: a flag, an argument, a file or a value the user gave is not valid
    3     not reachable or not configured: the broker, the database, the sandbox or the
          Cloud API did not answer, a setting is missing or malformed, a port is taken
    130   interrupted (Ctrl-C)

``explain(error, command)`` turns what escaped a command into its line and status, or None for an
error it does not know (which then shows its traceback: a bug to fix). Pure: the error is data.
Library errors are recognised through the modules already loaded (``sys.modules``), so this
module imports no library a command does not use.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import Any, Final

FAILED: Final = 1
USAGE: Final = 2
UNREACHABLE: Final = 3
INTERRUPTED: Final = 130

PLUGINS: Final = {"x-consistent-hash": "rabbitmq_consistent_hash_exchange"}
PORT_SETTINGS: Final = {
    "ingress": "WAPIPE_INGRESS_PORT or --port",
    "sandbox": "--port",
    "worker": "WAPIPE_METRICS_PORT or --metrics-port",
}
EXTRA_MODULES: Final = frozenset({"rich", "matplotlib", "yaml"})  # pyproject's `cli` extra
_EXCHANGE_TYPE: Final = re.compile(r"(?:invalid|unknown) exchange type '([^']+)'")
_REPLY_TEXT: Final = re.compile(r"reply_text='([^']*)'|reply_text=\"([^\"]*)\"")


class CommandError(Exception):
    """A command cannot go on; its message is the one line shown, ``code`` its exit status."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """The exception class ``module.name`` if that module is loaded (else nothing raised it)."""
    found: Any = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _is(error: BaseException, module: str, *names: str) -> bool:
    classes = tuple(c for name in names if (c := _loaded(module, name)) is not None)
    return bool(classes) and isinstance(error, classes)


def explain(error: BaseException, command: str) -> tuple[str, int] | None:
    """The one line (without the ``wapipe <command>:`` prefix) and the exit status."""
    for explainer in (_ours, _cloud_api, _broker, _http, _os):
        found = explainer(error, command)
        if found is not None:
            return found
    return None


def _ours(error: BaseException, command: str) -> tuple[str, int] | None:
    if isinstance(error, CommandError):
        return str(error), error.code
    if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in EXTRA_MODULES:
        return "this command needs the cli extra: pip install 'wapipe[cli]'", UNREACHABLE
    if _is(error, "wapipe.shared.settings", "SettingsError"):
        return f"configuration error: {error}", UNREACHABLE
    if _is(error, "wapipe.cli.templates.file", "TemplateFileError"):
        return str(error), USAGE
    if _is(error, "wapipe.shared.storage.database", "DatabaseUnreachable"):
        return f"cannot use the database at WAPIPE_DATABASE_URL: {_short(str(error))}", UNREACHABLE
    if _is(error, "wapipe.shared.publisher", "PublishError"):
        return str(error), FAILED
    return None


def _cloud_api(error: BaseException, command: str) -> tuple[str, int] | None:
    if not _is(error, "wapipe.shared.cloudapi.errors", "CloudApiError"):
        return None
    code, said = getattr(error, "code", None), getattr(error, "details", None)
    reason = said or getattr(error, "message", "") or str(error)
    reason = f"({code}) {reason}" if code is not None else reason
    if _is(error, "wapipe.shared.cloudapi.errors", "AuthError"):
        return f"the access token was refused: {reason}", FAILED
    if code is None and getattr(error, "http_status", None) is None:  # it never answered
        cause: Any = error.__cause__
        where = f" ({cause.host}:{cause.port})" if hasattr(cause, "host") else ""
        said = "no answer" if cause is None else type(cause).__name__
        return f"cannot reach the Cloud API at WAPIPE_GRAPH_URL{where}: {said}", UNREACHABLE
    return f"the Cloud API refused: {reason}", FAILED


def _broker(error: BaseException, command: str) -> tuple[str, int] | None:
    exceptions = "aiormq.exceptions"
    if not _is(error, exceptions, "AMQPError"):
        return None
    text = str(error)
    if found := _EXCHANGE_TYPE.search(text):
        kind = found.group(1)
        plugin = PLUGINS.get(kind)
        if plugin is None:
            return (
                f"the broker at WAPIPE_AMQP_URL does not know the exchange type {kind!r}: "
                "enable the plugin that provides it",
                UNREACHABLE,
            )
        return (
            f"the broker at WAPIPE_AMQP_URL lacks the plugin {plugin} (exchange type {kind!r}): "
            f"enable it with `rabbitmq-plugins enable {plugin}`",
            UNREACHABLE,
        )
    # A vhost that does not exist is refused with a close aiormq reports as a framing error.
    if _is(error, exceptions, "ProbableAuthenticationError", "ConnectionNotAllowed") or (
        _is(error, exceptions, "InvalidFrameError") and "Connection.Close" in text
    ):
        return (
            f"the broker at WAPIPE_AMQP_URL refused the user, password or vhost{_reply_text(text)}",
            UNREACHABLE,
        )
    if _is(error, exceptions, "AMQPConnectionError"):
        return f"cannot reach the broker at WAPIPE_AMQP_URL{_reply_text(text)}", UNREACHABLE
    return f"the broker refused: {_reply_text(text).lstrip(': ') or _short(text)}", FAILED


def _http(error: BaseException, command: str) -> tuple[str, int] | None:
    if _is(error, "aiohttp", "ClientConnectorError"):
        host, port = getattr(error, "host", "?"), getattr(error, "port", "?")
        return f"nothing answers at {host}:{port}", UNREACHABLE
    if _is(error, "aiohttp", "ClientError"):
        return f"the HTTP request failed: {type(error).__name__}", UNREACHABLE
    return None


def _os(error: BaseException, command: str) -> tuple[str, int] | None:
    if not isinstance(error, OSError):
        return None
    if error.errno == errno.EADDRINUSE:
        setting = PORT_SETTINGS.get(command.split(" ")[0], "its port setting")
        where = error.strerror or str(error)
        return f"the {command} cannot listen: {where} (set {setting} to move it)", UNREACHABLE
    if isinstance(error, ConnectionError | TimeoutError):
        said = os.strerror(error.errno) if error.errno else "no answer"
        return f"cannot reach the broker at WAPIPE_AMQP_URL: {said}", UNREACHABLE
    if error.filename is not None and error.strerror:  # a file or folder it cannot use
        return f"{error.filename}: {error.strerror}", UNREACHABLE
    return _short(str(error)), UNREACHABLE


def _reply_text(text: str) -> str:
    """The broker's own reason out of a frame's repr, if it gave one."""
    found = _REPLY_TEXT.search(text)
    if found:
        return f": {found.group(1) or found.group(2)}"
    return "" if "<" in text else f": {_short(text)}"


def _short(text: str) -> str:
    return " ".join(text.split())[:300] or "no reason given"


def fail(command: str, line: str, code: int) -> int:
    """Print the one line and give the status back."""
    print(f"{command}: {line}", file=sys.stderr)
    return code
