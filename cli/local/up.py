"""``wapipe up``: the whole system on this machine, each service its own process, as in production.

Before anything starts: one ``wapipe up`` at a time (a lock in ``./var``), and every port free
(else one line naming the service and the port). Then the topology, then the services; each
one's log lines pass through, and the last is kept, so when one dies ``wapipe up`` says which and
why, and stops the others. Once every service answers, a summary says what runs where.

The plan (``local_env``, ``plan``, ``summary``) is pure; ``run`` does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import aiohttp

from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION
from wapipe.shared.settings import Settings

SANDBOX_PORT: Final = 8090
WORKERS: Final = ("status", "message", "account", "media", "sender", "flows")
EXAMPLE_HANDLER: Final = "wapipe.examples.echo_bot:handle"
EXAMPLE_FLOW_HANDLER: Final = "wapipe.examples.booking_flow:handle"
# The Flows endpoint's key pair, made on the first `wapipe up` against the sandbox; its public
# key is set on the sandbox's number at every start (the sandbox forgets).
LOCAL_FLOWS_KEYS: Final = Path("var") / "flows"
READY_WITHIN_S: Final = 90.0
STOP_WITHIN_S: Final = 30.0  # a service's own shutdown is bounded well within this
INTERRUPT_GRACE_S: Final = 3.0  # after Ctrl-C, for the services to end on theirs
LOCK_FILE: Final = Path("var") / "wapipe-up.lock"

# Used only when the variable is unset, so a fresh clone runs with no setup and no Meta account:
# the sandbox stands in for the Cloud API.
LOCAL_DEFAULTS: Final = {
    "WAPIPE_APP_SECRETS": "local-app-secret",
    "WAPIPE_VERIFY_TOKEN": "local-verify-token",
    "WAPIPE_ACCESS_TOKEN": "local-access-token",
    "WAPIPE_GRAPH_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
}


class UpError(Exception):
    """Why ``wapipe up`` cannot start: one line for the user."""


@dataclass(frozen=True)
class Service:
    name: str  # as the user reads it: "ingress", "worker status", "sandbox"
    args: tuple[str, ...]  # after `wapipe`
    port: int
    ready_url: str
    remedy: str  # what to do when its port is taken


@dataclass(frozen=True)
class Sandbox:
    phone_number_id: str
    display_phone_number: str
    customer: str


def local_env(
    environ: Mapping[str, str], sandbox: Sandbox, working_dir: str
) -> tuple[dict[str, str], list[str]]:
    """The services' environment: ``environ`` plus the local stand-ins for what it lacks; with
    the sandbox playing the Cloud API, its number to send from, the example handler, and the
    working folder as the one local files may be sent from.
    Returns the names defaulted as well."""
    env = dict(environ)
    defaults = dict(LOCAL_DEFAULTS)
    if env.get("WAPIPE_GRAPH_URL") in (None, "", LOCAL_DEFAULTS["WAPIPE_GRAPH_URL"]):
        defaults["WAPIPE_PHONE_NUMBER_ID"] = sandbox.phone_number_id
        defaults["WAPIPE_MESSAGE_HANDLERS"] = EXAMPLE_HANDLER
        # `wapipe send image --file ./examples/shop.png` may upload files of this folder.
        defaults["WAPIPE_SENDER_FILES_DIR"] = working_dir
        defaults["WAPIPE_FLOW_HANDLERS"] = EXAMPLE_FLOW_HANDLER
        if not env.get("WAPIPE_FLOWS_PRIVATE_KEY"):
            defaults["WAPIPE_FLOWS_PRIVATE_KEY_FILE"] = str(LOCAL_FLOWS_KEYS / "private.pem")
    defaulted = []
    for name, value in defaults.items():
        if not env.get(name) and not env.get(name + "_FILE"):
            env[name] = value
            defaulted.append(name)
    return env, defaulted


def plan(
    settings: Settings, env: Mapping[str, str], metrics_ports: Mapping[str, int]
) -> list[Service]:
    host = settings.ingress_host
    services = [
        Service(
            "ingress",
            ("ingress",),
            settings.ingress_port,
            f"http://{host}:{settings.ingress_port}/readyz",
            "set WAPIPE_INGRESS_PORT to move it",
        )
    ]
    for kind in WORKERS:
        port = settings.metrics_port or metrics_ports[kind]
        services.append(
            Service(
                f"worker {kind}",
                ("worker", kind),
                port,
                f"http://{settings.metrics_host}:{port}/healthz",
                "stop what holds it (each worker has its own port here)",
            )
        )
    if env["WAPIPE_GRAPH_URL"] == LOCAL_DEFAULTS["WAPIPE_GRAPH_URL"]:
        # No Meta account needed: the sandbox plays the Cloud API, its webhooks go to the ingress.
        webhook_url = f"http://{host}:{settings.ingress_port}/webhook"
        args = ("sandbox", "--port", str(SANDBOX_PORT), "--webhook-url", webhook_url)
        ready = f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/state"
        remedy = "stop what holds it (the Cloud API's address is fixed here)"
        services.append(Service("sandbox", args, SANDBOX_PORT, ready, remedy))
    return services


def summary(services: list[Service], sandbox: Sandbox | None, env: Mapping[str, str]) -> str:
    lines = ["", "wapipe is up:"]
    for service in services:
        address = service.ready_url.rsplit("/", 1)[0]
        if service.name == "sandbox":
            address = f"{address.removesuffix('/_sandbox')}  (the Cloud API)"
        lines.append(f"  {service.name:<15} {address}")
    database = env.get("WAPIPE_DATABASE_URL") or "sqlite:///var/wapipe.db"
    lines.append(f"  {'database':<15} {database}")
    if sandbox is not None:
        console = f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/console/"
        lines += [
            "",
            f"  sandbox number  {sandbox.display_phone_number}, phone number id "
            f"{sandbox.phone_number_id} (WAPIPE_PHONE_NUMBER_ID)",
            f"  its customer    {sandbox.customer}",
            f"  console         {console}",
            "",
            "Try, in another terminal (or `. .venv/bin/activate` first and drop `.venv/bin/`):",
            f'  .venv/bin/wapipe sandbox customer send {sandbox.customer} --text "hello"',
            f'  .venv/bin/wapipe send text --to {sandbox.customer} --body "Hi from wapipe" --wait',
            "  .venv/bin/wapipe demo",
        ]
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def sandbox_world() -> Sandbox:
    """The business and customer the sandbox starts with (its ids are fixed by its config)."""
    from wapipe.sandbox.config import SandboxConfig

    config = SandboxConfig()
    business = next(iter(config.new_world().businesses.values()))
    return Sandbox(business.phone_number_id, business.display_phone_number, config.customers[0][0])


# --- the checks ----------------------------------------------------------------------------------


@contextlib.contextmanager
def only_one(path: Path = LOCK_FILE) -> Iterator[None]:
    """Held while this `wapipe up` runs; a second one fails at once, saying so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise UpError(
                f"another `wapipe up` is running (pid {holder}, lock {path}): stop it first"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def check_ports(services: list[Service], host: str) -> None:
    for service in services:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host if service.name != "sandbox" else "127.0.0.1", service.port))
            except OSError:
                raise UpError(
                    f"the {service.name} cannot listen on port {service.port}: it is in use "
                    f"(another wapipe, or another program): {service.remedy}"
                ) from None


def metrics_ports() -> dict[str, int]:
    return {
        kind: importlib.import_module(f"wapipe.workers.{kind}").KIND.metrics_port
        for kind in WORKERS
    }


# --- running -------------------------------------------------------------------------------------


async def supervise(env: dict[str, str], services: list[Service], banner: str) -> int:
    """Run every service until one exits or we are told to stop; then stop them all."""
    children = {
        service.name: await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wapipe",
            *service.args,
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        for service in services
    }
    last_lines: dict[str, str] = {}
    relays = [
        asyncio.create_task(_relay(name, child.stderr, last_lines, sys.stderr))
        for name, child in children.items()
        if child.stderr is not None
    ]
    stop = asyncio.Event()
    told: list[int] = []  # the signal that stops us
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stopper(stop, told, signum))
    exits = {asyncio.create_task(child.wait()): name for name, child in children.items()}
    stopping = asyncio.create_task(stop.wait())
    ready = asyncio.create_task(_all_ready(services, banner, env))
    done, _ = await asyncio.wait([*exits, stopping], return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    died = [exits[task] for task in done if task in exits]
    # Ctrl-C at a terminal reaches every service too: let them end on it, and signal only
    # those still running (a second signal mid-shutdown can stall aiohttp's).
    await _stop(list(children.values()), grace_s=INTERRUPT_GRACE_S if told[:1] == [2] else 0)
    await asyncio.gather(*relays, return_exceptions=True)
    stopping.cancel()
    if stop.is_set() or not died:  # Ctrl-C reaches the services too: some may end first
        return 0
    name = died[0]
    why = last_lines.get(name, "no message")
    print(
        f"wapipe up: the {name} exited (code {children[name].returncode}): {why}; "
        "stopped the others",
        file=sys.stderr,
    )
    code = children[name].returncode
    return code if code is not None and code > 0 else 1


def _stopper(stop: asyncio.Event, told: list[int], signum: int) -> Callable[[], None]:
    def on_signal() -> None:
        told.append(signum)
        stop.set()

    return on_signal


async def _stop(children: list[asyncio.subprocess.Process], grace_s: float) -> None:
    """After ``grace_s`` for them to end by themselves, SIGTERM to each still running; SIGKILL
    to any still running STOP_WITHIN_S later."""
    if grace_s:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), grace_s)
    for child in children:
        if child.returncode is None:
            child.terminate()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), STOP_WITHIN_S)
    except TimeoutError:
        for child in children:
            if child.returncode is None:
                child.kill()
        await asyncio.gather(*(child.wait() for child in children))


async def _relay(
    name: str, stream: asyncio.StreamReader, last_lines: dict[str, str], out: IO[str]
) -> None:
    """Pass a service's log output on as it comes (in chunks: a line however long never stops
    the service on a full pipe), keeping its last line: what it said before it died."""
    tail = b""
    while chunk := await stream.read(65536):
        out.write(chunk.decode(errors="replace"))
        out.flush()
        tail = (tail + chunk)[-16384:]
        lines = [line for line in tail.decode(errors="replace").splitlines() if line.strip()]
        if lines:
            last_lines[name] = _gist(lines[-1])


def _gist(line: str) -> str:
    """A JSON log line's message and error; any other line as it is."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "msg" not in entry:
        return line
    error = entry.get("error") or (entry.get("exc") or "").strip().rsplit("\n", 1)[-1]
    return f"{entry['msg']}: {error}" if error else str(entry["msg"])


async def _all_ready(services: list[Service], banner: str, env: Mapping[str, str]) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for service in services:
            while not await _answers(session, service.ready_url):
                if time.monotonic() > deadline:
                    print(f"wapipe up: the {service.name} is not ready yet", file=sys.stderr)
                    return
                await asyncio.sleep(0.2)
        if any(service.name == "sandbox" for service in services):
            await _set_sandbox_flows_key(session, env)
    print(banner, flush=True)


def local_flows_key(env: Mapping[str, str]) -> Path | None:
    """The local pair's public key when the endpoint uses the local private key (made now if
    it is missing); None when the user set a key of their own."""
    private = env.get("WAPIPE_FLOWS_PRIVATE_KEY_FILE")
    if env.get("WAPIPE_FLOWS_PRIVATE_KEY") or private != str(LOCAL_FLOWS_KEYS / "private.pem"):
        return None
    if not (LOCAL_FLOWS_KEYS / "private.pem").exists():
        from wapipe.shared.flows.keys import write_pair

        write_pair(LOCAL_FLOWS_KEYS)
    return LOCAL_FLOWS_KEYS / "public.pem"


async def _set_sandbox_flows_key(session: aiohttp.ClientSession, env: Mapping[str, str]) -> None:
    """The sandbox's number gets the local public key, as `wapipe flows keys upload` would."""
    public = LOCAL_FLOWS_KEYS / "public.pem"
    number = env.get("WAPIPE_PHONE_NUMBER_ID")
    if not number or not public.exists() or local_flows_key(env) is None:
        return
    version = env.get("WAPIPE_GRAPH_VERSION", DEFAULT_GRAPH_VERSION)
    url = f"{env['WAPIPE_GRAPH_URL']}/{version}/{number}"
    headers = {"Authorization": f"Bearer {env['WAPIPE_ACCESS_TOKEN']}"}
    form = {"business_public_key": public.read_text()}
    try:
        async with session.post(
            f"{url}/whatsapp_business_encryption", data=form, headers=headers
        ) as response:
            if response.status != 200:
                print("wapipe up: the sandbox refused the Flows public key", file=sys.stderr)
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"wapipe up: cannot set the Flows public key: {exc}", file=sys.stderr)


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def run(settings: Settings, environ: Mapping[str, str]) -> int:
    """``wapipe up``; raises UpError (one line) when it cannot start."""
    from wapipe.shared.topology import declare_at

    sandbox = sandbox_world()
    env, defaulted = local_env(environ, sandbox, os.getcwd())
    services = plan(settings, env, metrics_ports())
    with only_one():
        local_flows_key(env)  # the endpoint reads it at start: made before the ingress starts
        check_ports(services, settings.ingress_host)
        if defaulted:
            print(f"wapipe up: local defaults for {', '.join(defaulted)}", file=sys.stderr)
        if "WAPIPE_LOG_FORMAT" not in env and sys.stderr.isatty():
            env["WAPIPE_LOG_FORMAT"] = "text"  # their stderr is our pipe: keep it readable
        asyncio.run(declare_at(settings.amqp_url))
        local = sandbox if any(s.name == "sandbox" for s in services) else None
        return asyncio.run(supervise(env, services, summary(services, local, env)))
