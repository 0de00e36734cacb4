"""Restarting the ingress without a gap: a new process listens beside the old one, the old one
hands new connections over and ends what it holds.

    listening_socket(host, port)  ->  bound with SO_REUSEPORT: the kernel spreads new
                                      connections over every process listening on the port
    hand_over(sock, drain)        ->  at SIGTERM: new connections go to the other listener from
                                      now on; for HANDOVER_S this one still accepts what was
                                      queued, and answers on its open connections, each answer
                                      closing its connection; then it stops listening

Why answers that close (``Connection: close``) rather than closing idle connections: a client
may be sending its next request on a kept-alive connection at the instant the server closes it,
and that request is cut. A client told to close opens its next connection, to the new process.

Closing a listener resets the connections waiting in its accept queue (unless the kernel's
``net.ipv4.tcp_migrate_req`` is on), so the old process first steers new connections away: a
classic BPF program on the port's reuseport group (``SO_ATTACH_REUSEPORT_CBPF``, Linux 4.5+)
that picks socket 1, the listener that joined second. With two processes, that is the new one.
Alone, index 1 does not exist and the kernel falls back to its hash, so a process stopping
without a successor keeps accepting until it closes. The group keeps the program; each stop
attaches it again. Where the kernel refuses it, the handover is only the wait.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
from typing import Final

from aiohttp import hdrs, web

log = logging.getLogger(__name__)

# For what was queued on this listener before the steering to be taken, and for every busy
# kept-alive connection to carry one answer that closes it. A connection idle all along is closed
# after, as before.
HANDOVER_S: Final = 1.0
SO_ATTACH_REUSEPORT_CBPF: Final = 51  # <asm-generic/socket.h>
BPF_RET_K: Final = 0x06  # BPF_RET | BPF_K: return the constant k
NEWER_LISTENER: Final = 1


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listener on ``host:port`` that another process may share (SO_REUSEPORT)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        # Worded as asyncio's own bind error, which shared/failures.py turns into one line.
        reason = (exc.strerror or str(exc)).lower()
        message = f"error while attempting to bind on address {address!r}: {reason}"
        raise OSError(exc.errno, message) from None
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class Drain:
    """Set at SIGTERM: from then on every answer closes its connection (``close_when_draining``)."""

    def __init__(self) -> None:
        self.draining = False


async def close_when_draining(request: web.Request, response: web.StreamResponse) -> None:
    """An ``on_response_prepare`` hook: while draining, the answer says ``Connection: close``."""
    if request.app[DRAIN].draining:
        response.force_close()  # the server closes after it
        # aiohttp wrote its headers before this hook runs: tell the client too.
        response.headers[hdrs.CONNECTION] = "close"


DRAIN: Final = web.AppKey("drain", Drain)


async def hand_over(sock: socket.socket, drain: Drain) -> None:
    """Send new connections to the newer listener, then for ``HANDOVER_S`` keep accepting what
    was queued here (the caller's server does) and close each connection after its answer."""
    drain.draining = True
    try:
        steer(sock, NEWER_LISTENER)
    except OSError as exc:
        log.warning("cannot steer new connections away", extra={"error": str(exc)})
    await asyncio.sleep(HANDOVER_S)  # a grace for the accept queue, which nothing signals


def steer(sock: socket.socket, index: int) -> None:
    """Attach to ``sock``'s reuseport group a BPF program choosing listener ``index``."""
    instruction = struct.pack("HBBI", BPF_RET_K, 0, 0, index)
    program = ctypes.create_string_buffer(instruction)
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }, native alignment
    fprog = struct.pack("HP", 1, ctypes.addressof(program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    del program  # only now: the kernel copied the program during the call
