"""What a chat process runs beside its listeners: the outbox worker with every surface's sinks, and
the jobs.

One worker per process, with the sinks of every configured surface (Slack and WeCom): an outbox
message is claimed by one worker only, so a worker that served one surface would starve the other.
Several replicas may run it: rows are claimed with leases (SKIP LOCKED on PostgreSQL) and every
job is idempotent, so each card, notice and reminder still goes out once per surface.
"""
from __future__ import annotations

from bot.jobs import Scheduler


class ChatBackground:
    def __init__(self, app, sinks: list, *, jobs: bool = True) -> None:
        self.app = app
        self.worker = app.outbox_worker(sinks)
        self.scheduler = Scheduler(app) if jobs else None

    def start(self) -> ChatBackground:
        self.app.after_commit.append(self.worker.kick)  # cards go out right after the commit that asks
        self.worker.start()
        if self.scheduler is not None:
            self.scheduler.start()
        return self

    def stop(self) -> None:
        if self.worker.kick in self.app.after_commit:
            self.app.after_commit.remove(self.worker.kick)
        self.worker.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        for sink in self.worker.sinks:  # e.g. the App Home refresher's pending timers
            close = getattr(sink, "close", None)
            if close is not None:
                close()
