"""The sender: send jobs from ``wa.send.<shard>`` to the Cloud API, each once, within every limit.

    wa.send.0..7 ──> intake: decode, claim the keys (send_jobs) ──> one lane per phone number
                                                                     │ recipient FIFOs, paced
    wa.send.status (failed statuses) ──> link to the job             ▼
                                                 mark "sending" ─> POST /messages ─> record ─>
                                                 outbound.accepted | outbound.failed ─> ack

Once per key: a job is claimed in ``send_jobs`` when it arrives and marked ``sending``
(committed, and only from ``queued``, so of two holders one sends) before its call leaves;
its answer is recorded before the ack. Whatever comes again (a redelivery, a repeat, a replica
taking over a shard) finds its record: done jobs publish their event again and are acked; a job
found ``sending`` lost its answer with its holder and becomes ``unknown``: never sent again
blindly, it is settled by the status Meta sends for it, which carries the callback data the
sender set (the job's own, or ``wapipe:<idempotency key>``), or failed after
``WAPIPE_SENDER_SETTLE_S`` without one. A call that times out is ``unknown`` the same way.

Pacing across replicas: each number's jobs hash to one shard queue, and a shard has one active
consumer (RabbitMQ's single active consumer, shared/topology.py). So one process owns a number
at a time and paces it exactly with local state (workers/pacing.py), with no shared limiter on
the hot path; more replicas stand by and take over a shard within seconds of its owner's death.
A new owner starts a number with a second's silence, as the old owner's last second is unknown.
The price: one number's rate is one process's (the benchmark: 98.8 % of 1,000/s on one core),
and the active consumer of a shard is the replica that subscribed first (RabbitMQ 3.x has no
priorities for it), so shards gather on one replica rather than spread.

Each recipient has its own FIFO, so one customer's messages go in order, one at a time, paced by
the pair rate, while others' go on. Held jobs are unacked, so a recipient holds only what it can
send within ``PARK_AFTER_S``; the rest wait in a wait queue (parked), not in the prefetch.

The Cloud API's answers (shared/cloudapi/errors.py):
transient: the recipient's next try after a back-off, up to ``WAPIPE_SENDER_MAX_ATTEMPTS``; a
130429 or 131048: the number waits and slows down; 131056: that recipient backs off (1, 4, 16,
64, 256 s); 4 or 80007: the number pauses, growing; a refused token or a blocked account: the
number pauses ``WAPIPE_SENDER_PAUSE_S`` (the token file is read again) and tries again, its
jobs held (parked, for a pause of ``PARK_AFTER_S`` or more); permanent: ``outbound.failed``
with the code and title.

The parts, each a module of this package, each given its collaborators explicitly (none
writes another's state; imports run one way, down this list but for service and core):

    service   the process: the consumers, tending, shutdown
    core      assembles the parts; a lane's host (sends and parks as tasks)
    intake    receive, decode, claim by key, admit into a lane
    send      one send, from its mark to its record
    parking   wait queues, a parked job's place in line, and the park's publish
    lane      one number: recipients' lines, pauses (no I/O; clock passed in)
    slots     a number's throughput slots: the protocol a paced send follows
    held      the jobs held: their deliveries and place in line, from claim to ack
    acks      their settlement: acks of a loop turn as one multiple ack per run of tags
    journal   the group commit of claims, marks and state changes (send_jobs)
    policy    what an error means: retry, hold, slow, pause, fail or unknown (pure)
    settle    unknown outcomes and failed statuses, linked back to their jobs
    events    outbound.accepted / outbound.failed (pure)
    metrics   the sender's own
"""

from wapipe.workers.sender.parking import PARK_AFTER_S
from wapipe.workers.sender.service import KIND

__all__ = ["KIND", "PARK_AFTER_S"]
