"""Sender benchmark: how closely one ``wapipe worker sender`` paces a number at its limit (20, 80
and 1,000 messages/s), and how far it could go with no limit.

    make bench-sender    (or: python -m tests.bench.sender --rates 20,80,1000 --duration 30)

Each run has a vhost, a database (a temporary SQLite file, or one made for the run on the
PostgreSQL server of ``--database-url``) and a sandbox of its own. The sandbox (core 1) allows
``--rate`` = the limit. Customers write first, so every send is in their 24-hour window and gets
its three statuses, posted 100 to a body (``--batch-max``) to a sink in this process (core 1
too): webhooks cost the sandbox little. limit x ``--duration`` text jobs are queued on
``wa.outbound`` before the sender starts, round-robin over one recipient per
``JOBS_PER_RECIPIENT`` jobs, so no recipient nears a pair limit (the sandbox's 45 per 6 s, the
sender's 20) and only the number's throughput paces. Then one sender (core 0,
``WAPIPE_SENDER_RATE_PER_S`` = the limit, other settings default) sends them all.

The figures come from the sandbox's own log of every Graph request (``--request-log``): rates
per whole second and overall (sender_figures.py), the busiest calendar second (the sandbox's
count) and the busiest one-second window wherever it starts (never above the limit), the
refusals (130429 must be 0), and every job accepted exactly once. How soon the slots come back
(send n to send n + limit) shows the latency that the pacing adds to each second
(workers/pacing.py: a slot is held until a second after its answer). The sender's CPU comes from
/proc, split between the event loop and other threads (aiosqlite's), with the time its loop was
ready but another process had core 0 (RabbitMQ and the database are not pinned).

The comparisons, in the same session, with the sandbox's limits lifted: a bare aiohttp loop on
core 0 posting the same bodies, ``--bare-concurrency`` at once (the sandbox's ceiling on its
core: it is not what holds 1,000/s back); the anchor (``journal`` in ``--ceilings``): the same
bare loop doing the same journal writes as the sender (each job claimed, in batches as the
intake claims them, marked ``sending`` before its POST, and its acceptance and message row
recorded after it, through the sender's group commit), the floor of the sender's CPU per send;
and the sender with a limit of 1,000,000/s (its own ceiling: the headroom above 1,000/s, and
its CPU per send when nothing paces it).
``--profile DIR`` samples each sender with py-spy (``pip install py-spy``) from core 1 and keeps
its collapsed stacks, per thread (``python -m tests.bench.sender_profile`` summarises them).

An A/B in one session: ``--sender-code DIR`` (repeated) runs the sender of each checkout by
turns (``--turns N``, the order reversed every other turn), the harness, sandbox and anchor
this checkout's; a table of medians by code closes the report (pace, CPU per send, its ratio to
the same turn's anchor, the load average). A checkout with ``src/wapipe`` runs from there; an
older one (d52b018: ``wapipe.py`` at its root) from its folder. Appends to results/sender.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aio_pika
import aiohttp
import asyncpg
import msgspec
from aiohttp import web
from sqlalchemy.engine import make_url

from tests.bench.report import publish
from tests.bench.sender_figures import (
    JOBS_PER_RECIPIENT,
    Run,
    Usage,
    code_version,
    report,
    summary,
    usage_now,
)
from tests.helpers import Broker, answers, free_port, publish_raw, wait_until
from wapipe.shared import topology
from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION
from wapipe.shared.eventloop import new_event_loop
from wapipe.shared.schemas.jobs import SendJob, encode_job, routing_key, text_message
from wapipe.shared.storage import send_jobs
from wapipe.shared.storage.database import open_database
from wapipe.shared.storage.messages import outbound_row
from wapipe.workers.sender.intake import INTAKE_BATCH, new_job
from wapipe.workers.sender.journal import Journal
from wapipe.workers.sender.send import message_body
from wapipe.workers.storage import Transactions

RESULTS: Final = Path(__file__).parent / "results" / "sender.md"
TOKEN: Final = "bench-token"
SECRET: Final = "bench-secret"
WEBHOOK_BATCH: Final = 100  # statuses per webhook body
UNLIMITED: Final = 1_000_000  # a rate no run comes near: the ceilings
SENDER_CORE, SANDBOX_CORE = "0", "1"
STALL_S: Final = 30.0  # no send accepted for this long (start-up included): the run failed


@dataclass(frozen=True)
class Options:
    duration_s: float
    ceiling_jobs: int
    bare_concurrency: int
    database_url: str | None  # a PostgreSQL server; None: SQLite
    profile: Path | None
    folder: Path
    codes: tuple[Code, ...] = ()  # the checkouts whose senders run by turns; none: this one
    turns: int = 1
    vhost: str | None = None  # an existing vhost, emptied by each run (a broker slow to make one)


@dataclass(frozen=True)
class Code:
    """A checkout whose sender is measured, and where ``python -m wapipe`` finds its code."""

    folder: Path
    label: str  # its commit, as the results name it
    pythonpath: str | None  # a checkout with src/wapipe (the namespace): that folder first


def checkout(folder: Path) -> Code:
    """``folder``'s sender, checked to be the code that runs: with the namespace (src/wapipe,
    since 403e5d2) its src/ goes first on the path, or the installed editable ``wapipe`` (this
    checkout's) would run instead; before it, ``-m wapipe`` finds the checkout's wapipe.py
    in the working directory."""
    folder = folder.resolve()
    src = folder / "src"
    pythonpath = str(src) if (src / "wapipe").is_dir() else None
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    found = subprocess.check_output(
        [sys.executable, "-c", "import wapipe; print(wapipe.__file__)"], cwd=folder, env=env
    )
    if not Path(found.decode().strip()).resolve().is_relative_to(folder):
        raise SystemExit(f"--sender-code {folder}: python -m wapipe there runs {found.decode()}")
    label = code_version(folder)  # an export (git archive) has none: its folder's name
    return Code(folder, folder.name if label == "unknown" else label, pythonpath)


# --- processes -----------------------------------------------------------------------------------


def service(
    args: list[str], core: str, env: dict[str, str], code: Code | None = None
) -> subprocess.Popen[bytes]:
    """``python -m args`` on ``core``; from ``code`` (another checkout), else this one."""
    command = ["taskset", "-c", core, sys.executable, "-m", *args]
    if code is not None and code.pythonpath is not None:
        env = {**env, "PYTHONPATH": code.pythonpath}
    cwd = code.folder if code is not None else None
    return subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def sink() -> AsyncIterator[str]:
    """Where the sandbox's webhooks go: read, answered 200, forgotten."""

    async def take(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    app = web.Application()
    app.router.add_post("/webhook", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def sandbox(rate: int, jobs: int, webhook_url: str) -> AsyncIterator[tuple[str, str]]:
    """A sandbox at ``rate``/s whose log keeps every send; yields (URL, phone number id)."""
    port = free_port()
    flags = ["--port", str(port), "--rate", str(rate), "--webhook-url", webhook_url]
    flags += ["--batch-max", str(WEBHOOK_BATCH), "--request-log", str(log_size(jobs))]
    env = {
        "WAPIPE_ACCESS_TOKEN": TOKEN,
        "WAPIPE_APP_SECRETS": SECRET,
        "WAPIPE_LOG_LEVEL": "WARNING",
    }
    process = service(["wapipe", "sandbox", *flags], SANDBOX_CORE, env)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until(lambda: answers(f"{url}/_sandbox/state"), timeout=30, step=0.1)
        state = await get_json(f"{url}/_sandbox/state")
        yield url, state["businesses"][0]["phone_number_id"]
    finally:
        stop(process)


def log_size(jobs: int) -> int:
    return 2 * jobs + 10_000


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        return await response.json()


@contextlib.asynccontextmanager
async def database(server_url: str | None, folder: Path) -> AsyncIterator[str]:
    """A temporary SQLite file; or a database made on ``server_url``'s server, dropped after."""
    if server_url is None:
        yield f"sqlite:///{folder / uuid.uuid4().hex}.db"
        return
    name = f"wapipe_bench_{uuid.uuid4().hex[:10]}"
    admin = make_url(server_url).set(drivername="postgresql")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


# --- the work --------------------------------------------------------------------------------


def recipients(jobs: int) -> list[str]:
    return [f"1555{number:07d}" for number in range(max(1, jobs // JOBS_PER_RECIPIENT))]


async def customers_write(url: str, wa_ids: list[str]) -> None:
    """Each customer writes to the business (their 24-hour window opens)."""
    slots = asyncio.Semaphore(32)
    async with aiohttp.ClientSession() as session:

        async def write(wa_id: str) -> None:
            async with slots:
                path = f"{url}/_sandbox/customers/{wa_id}/messages"
                async with session.post(path, json={"type": "text"}) as response:
                    response.raise_for_status()

        await asyncio.gather(*(write(wa_id) for wa_id in wa_ids))


def jobs_for(number: str, count: int) -> list[SendJob]:
    run, to = uuid.uuid4().hex[:8], recipients(count)
    return [
        SendJob(
            idempotency_key=f"bench-{run}-{index}",
            phone_number_id=number,
            to=to[index % len(to)],
            message=text_message(f"Your order {index} is on its way."),
        )
        for index in range(count)
    ]


def wire(job: SendJob) -> bytes:
    """The job as every sender since d52b018 reads it: a phone number's job without
    ``"recipient": null`` (older senders forbid unknown fields, so they dead-letter a job that
    names the BSUID field at all; newer ones take its absence as None)."""
    body = msgspec.json.decode(encode_job(job))
    if body.get("recipient", "") is None:
        del body["recipient"]
    return msgspec.json.encode(body)


async def prefill(amqp_url: str, jobs: list[SendJob]) -> None:
    await topology.declare_at(amqp_url)
    messages = [
        (
            routing_key(job.phone_number_id),
            aio_pika.Message(
                wire(job),
                message_id=job.idempotency_key,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
        )
        for job in jobs
    ]
    await publish_raw(amqp_url, topology.OUTBOUND_EXCHANGE, messages)


async def until_sent(url: str, number: str, jobs: int, process: subprocess.Popen[bytes]) -> Usage:
    """Until the sandbox has accepted ``jobs`` sends (a look a second: looks cost the sandbox);
    the process's CPU from the first look that found a send to the last. A process that makes
    no progress for ``STALL_S`` fails the run."""
    first: Usage | None = None
    sent, progress_at = 0, time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        if process.poll() is not None:
            raise RuntimeError(f"the process measured exited with {process.returncode}")
        now_sent = (await get_json(f"{url}/_sandbox/counts"))[number]["sent"]
        look = usage_now(process.pid, time.monotonic(), now_sent)
        if first is None and now_sent:
            first = look
            if now_sent >= jobs:
                raise RuntimeError("every send accepted between two looks: give it more jobs")
        elif first is not None and now_sent >= jobs:
            return look.since(first)
        if now_sent > sent:
            sent, progress_at = now_sent, time.monotonic()
        elif time.monotonic() - progress_at > STALL_S:
            raise RuntimeError(f"stuck at {sent} of {jobs} sends accepted for {STALL_S:.0f} s")


async def observed(
    what: str,
    limit: float | None,
    jobs: int,
    at: tuple[str, str],
    usage: Usage,
    code: str = "",
    turn: int = 0,
) -> Run:
    """The run as the sandbox saw it."""
    url, number = at
    log = await get_json(f"{url}/_sandbox/requests")
    counts = (await get_json(f"{url}/_sandbox/counts"))[number]
    sends = [r for r in log if r["method"] == "POST" and r["path"].endswith("/messages")]
    if len(log) >= log_size(jobs):
        raise RuntimeError("the sandbox's request log is full: sends may be missing from it")
    if counts["sent"] != jobs:
        raise RuntimeError(f"the sandbox accepted {counts['sent']} sends for {jobs} jobs")
    accepted = sorted(r["at"] for r in sends if r["status"] == 200)
    refusals = Counter(r["code"] for r in sends if r["status"] != 200)
    load = os.getloadavg()[0]
    return Run(what, limit, accepted, counts, refusals, usage, code=code, turn=turn, load=load)


# --- the runs ------------------------------------------------------------------------------------


async def sender_round(
    limit: float | None, jobs: int, options: Options, code: Code | None = None, turn: int = 0
) -> Run:
    what = f"wapipe worker sender at {limit:,.0f}/s" if limit else "wapipe worker sender, no limit"
    label = code.label if code is not None else code_version()
    if options.codes:
        what += f" ({label})"
    rate = limit or UNLIMITED
    async with sink() as webhook_url, sandbox(int(rate), jobs, webhook_url) as (url, number):
        await customers_write(url, recipients(jobs))
        with broker_vhost(options.vhost) as amqp_url:
            await prefill(amqp_url, jobs_for(number, jobs))
            async with database(options.database_url, options.folder) as database_url:
                env = {
                    "WAPIPE_AMQP_URL": amqp_url,
                    "WAPIPE_DATABASE_URL": database_url,
                    "WAPIPE_GRAPH_URL": url,
                    "WAPIPE_ACCESS_TOKEN": TOKEN,
                    "WAPIPE_SENDER_RATE_PER_S": str(rate),
                    "WAPIPE_METRICS_PORT": str(free_port()),
                    "WAPIPE_LOG_LEVEL": "WARNING",
                }
                command = ["wapipe", "worker", "sender"]
                process = service(command, SENDER_CORE, env, code)
                name = f"sender-{rate:.0f}-{label.split()[0]}-{turn}"
                try:
                    with profiling(process, options.profile, name):
                        usage = await until_sent(url, number, jobs, process)
                finally:
                    stop(process)
        return await observed(what, limit, jobs, (url, number), usage, label, turn)


@contextlib.contextmanager
def broker_vhost(existing: str | None) -> Iterator[str]:
    """A vhost of the run's own, deleted after; or ``existing`` (its queues drained by a run
    that ends well: every job is sent)."""
    broker = Broker.local()
    if existing is None:
        with broker.vhost(f"wapipe-sender-bench-{uuid.uuid4().hex[:8]}") as amqp_url:
            yield amqp_url
    else:
        yield str(broker.amqp_url.with_path("/" + existing))


@contextlib.contextmanager
def profiling(process: subprocess.Popen[bytes], folder: Path | None, name: str) -> Iterator[None]:
    """py-spy sampling ``process`` 100 times a second from the other core, idle time included:
    collapsed stacks per thread (speedscope and flamegraph.pl read them), kept in ``folder``."""
    if folder is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"{name}.txt"
    command = [py_spy, "record", "--pid", str(process.pid), "--rate", "100", "--idle"]
    command += ["--threads", "--format", "raw", "-o", str(output)]
    spy = subprocess.Popen(["taskset", "-c", SANDBOX_CORE, *command])
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        spy.wait(timeout=60)


async def bare_round(jobs: int, options: Options, *, journal: bool = False, turn: int = 0) -> Run:
    """The same sends from a bare aiohttp loop, the sandbox's limits lifted: its ceiling; with
    ``journal``, the anchor: the sender's journal writes around each send too."""
    concurrency = options.bare_concurrency
    what = f"bare aiohttp loop{' + journal' if journal else ''}, {concurrency} at once, no limit"
    async with sink() as webhook_url, sandbox(UNLIMITED, jobs, webhook_url) as (url, number):
        await customers_write(url, recipients(jobs))
        async with database(options.database_url, options.folder) as database_url:
            command = ["tests.bench.sender", "--bare-loop", url, "--number", number]
            command += ["--ceiling-jobs", str(jobs), "--bare-concurrency", str(concurrency)]
            if journal:
                command += ["--bare-database", database_url]
            process = service(command, SENDER_CORE, {})
            try:
                name = f"{'bare-journal' if journal else 'bare'}-{turn}"
                with profiling(process, options.profile, name):
                    usage = await until_sent(url, number, jobs, process)
            finally:
                stop(process)
        anchor = "journal" if journal else "bare"
        return await observed(what, None, jobs, (url, number), usage, anchor, turn)


def bare_loop(url: str, number: str, jobs: int, concurrency: int, database_url: str | None) -> None:
    """Post each job's body as the sender builds it, ``concurrency`` at a time, each answered
    200 or the process fails; with ``database_url``, write what the sender's journal writes
    around each. Then wait to be stopped (its CPU is read while it lives)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(post_all(url, number, jobs_for(number, jobs), concurrency, database_url))


async def post_all(
    url: str, number: str, jobs: list[SendJob], concurrency: int, database_url: str | None
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        journal: Journal | None = None
        if database_url is not None:
            transactions = Transactions(
                await stack.enter_async_context(open_database(database_url))
            )
            stack.push_async_callback(transactions.close)
            journal = Journal(transactions)
            writing = asyncio.ensure_future(journal.run())
            stack.callback(writing.cancel)
            for start in range(0, len(jobs), INTAKE_BATCH):  # as the intake claims them
                batch = jobs[start : start + INTAKE_BATCH]
                await journal.claim([new_job(job, encode_job(job), time.time()) for job in batch])
        connector = aiohttp.TCPConnector(limit=concurrency)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=connector, headers=headers)
        )
        pending = iter(jobs)

        async def worker() -> None:
            for job in pending:
                await bare_send(
                    session, f"{url}/{DEFAULT_GRAPH_VERSION}/{number}/messages", job, journal
                )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await asyncio.Event().wait()


async def bare_send(
    session: aiohttp.ClientSession, url: str, job: SendJob, journal: Journal | None
) -> None:
    key = job.idempotency_key
    if journal is not None and not await journal.mark_sending(key):
        raise RuntimeError(f"{key}: not marked")
    body = {"messaging_product": "whatsapp", **message_body(job)}
    async with session.post(url, data=msgspec.json.encode(body)) as answer:
        read = await answer.read()
        if answer.status != 200:
            raise RuntimeError(f"answered {answer.status}: {read.decode()}")
    if journal is not None:
        found = msgspec.json.decode(read)
        wamid, wa_id, now = found["messages"][0]["id"], found["contacts"][0]["wa_id"], time.time()
        change = send_jobs.ACCEPT(key, now, wamid=wamid)
        await journal.write(change, outbound_row(job, wamid, wa_id, now))


async def bench(rates: list[float], ceilings: list[str], options: Options) -> list[Run]:
    """Each turn: every limit with each code, then the ceilings; the codes' order reversed on
    every other turn (A B, B A, ...) so that a drift in the machine's speed favours neither."""
    runs: list[Run] = []
    codes: list[Code | None] = list(options.codes) or [None]
    for turn in range(1, options.turns + 1):
        order = codes if turn % 2 else codes[::-1]
        for limit in rates:
            for code in order:
                jobs = int(limit * options.duration_s)
                runs.append(await sender_round(limit, jobs, options, code, turn))
                print(summary(runs[-1]), flush=True)
        if "bare" in ceilings:
            runs.append(await bare_round(options.ceiling_jobs, options, turn=turn))
            print(summary(runs[-1]), flush=True)
        if "journal" in ceilings:
            runs.append(await bare_round(options.ceiling_jobs, options, journal=True, turn=turn))
            print(summary(runs[-1]), flush=True)
        if "sender" in ceilings:
            for code in order:
                runs.append(await sender_round(None, options.ceiling_jobs, options, code, turn))
                print(summary(runs[-1]), flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates", default="20,80,1000", help="limits, messages/s (comma-separated)"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds at each limit")
    parser.add_argument(
        "--ceilings",
        default="bare,journal,sender",
        help="any of bare, journal (the anchor), sender; or none ('')",
    )
    parser.add_argument("--ceiling-jobs", type=int, default=30_000, help="jobs in each ceiling")
    parser.add_argument("--bare-concurrency", type=int, default=64)
    parser.add_argument("--database-url", help="a PostgreSQL server to make databases on")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy each sender")
    parser.add_argument("--no-write", action="store_true", help="print, do not append results")
    parser.add_argument(
        "--sender-code",
        type=Path,
        action="append",
        metavar="DIR",
        help="run the sender of this checkout (repeat: each by turns; '.' is this one)",
    )
    parser.add_argument("--turns", type=int, default=1, help="times through every run (A/B)")
    parser.add_argument("--vhost", help="use this existing vhost rather than make one per run")
    parser.add_argument("--bare-loop", metavar="SANDBOX_URL", help=argparse.SUPPRESS)
    parser.add_argument("--number", help=argparse.SUPPRESS)
    parser.add_argument("--bare-database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_loop:
        jobs, concurrency = args.ceiling_jobs, args.bare_concurrency
        bare_loop(args.bare_loop, args.number, jobs, concurrency, args.bare_database)
        return
    os.sched_setaffinity(0, {int(SANDBOX_CORE)})  # the sink and the looks stay off core 0
    rates = [float(rate) for rate in args.rates.split(",") if rate]
    ceilings = [name for name in args.ceilings.split(",") if name]
    with tempfile.TemporaryDirectory() as folder:
        options = Options(
            args.duration,
            args.ceiling_jobs,
            args.bare_concurrency,
            args.database_url,
            args.profile,
            Path(folder),
            tuple(checkout(path) for path in args.sender_code or ()),
            args.turns,
            args.vhost,
        )
        runs = asyncio.run(bench(rates, ceilings, options))
    backend = "PostgreSQL" if args.database_url else "SQLite"
    text = report(runs, args.duration, args.ceiling_jobs, backend, args.turns)
    publish(RESULTS, "Sender results", "tests.bench.sender", text, write=not args.no_write)


if __name__ == "__main__":
    main()
