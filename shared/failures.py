"""What a command says when it cannot go on: one line naming the cause, and its exit status.

``explain(error, service)`` turns what escaped a command into that line, or None for an error
it does not know (which then shows its traceback: a bug to fix). Pure: the error is data.

    a port in use                   the service, the address, the setting that moves it
    an exchange type the broker
    does not know                   the plugin missing and how to turn it on
    the broker refusing the login   the variable to fix
    the broker not answering        the variable, and the reason
    another OSError                 as it is (a file or folder that cannot be used)
"""

from __future__ import annotations

import errno
import re
from typing import Final

import aiormq

PLUGINS: Final = {"x-consistent-hash": "rabbitmq_consistent_hash_exchange"}
PORT_SETTINGS: Final = {
    "ingress": "WAPIPE_INGRESS_PORT or --port",
    "sandbox": "--port",
    "worker": "WAPIPE_METRICS_PORT or --metrics-port",
}
_EXCHANGE_TYPE: Final = re.compile(r"(?:invalid|unknown) exchange type '([^']+)'")


def explain(error: BaseException, service: str) -> tuple[str, int] | None:
    """The one line (without the ``wapipe:`` prefix) and the exit status, if we know the error."""
    text = str(error)
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        setting = PORT_SETTINGS.get(service.split(" ")[0], "its port setting")
        where = error.strerror or text
        return f"the {service} cannot listen: {where} (set {setting} to move it)", 1
    if isinstance(error, aiormq.exceptions.AMQPError) and (found := _EXCHANGE_TYPE.search(text)):
        kind = found.group(1)
        plugin = PLUGINS.get(kind)
        if plugin is None:
            return (
                f"the broker at WAPIPE_AMQP_URL does not know the exchange type {kind!r}: "
                "enable the plugin that provides it",
                1,
            )
        return (
            f"the broker at WAPIPE_AMQP_URL lacks the plugin {plugin} (exchange type {kind!r}): "
            f"enable it with `rabbitmq-plugins enable {plugin}`",
            1,
        )
    if _refused_login(error, text):
        return (
            f"the broker at WAPIPE_AMQP_URL refused the user, password or vhost: {_short(text)}",
            1,
        )
    if isinstance(error, aiormq.exceptions.AMQPConnectionError | ConnectionError):
        return f"cannot reach the broker at WAPIPE_AMQP_URL: {_short(text)}", 1
    if isinstance(error, OSError):  # a file or folder it cannot use
        return _short(text), 1
    return None


def _refused_login(error: BaseException, text: str) -> bool:
    # A vhost that does not exist is refused with a close aiormq reports as a framing error.
    exceptions = aiormq.exceptions
    return isinstance(
        error, exceptions.ProbableAuthenticationError | exceptions.ConnectionNotAllowed
    ) or (isinstance(error, exceptions.InvalidFrameError) and "Connection.Close" in text)


def _short(text: str) -> str:
    return " ".join(text.split())[:300] or "no reason given"
