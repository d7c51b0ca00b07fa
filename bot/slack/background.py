"""What a Slack process runs beside its listeners: the outbox worker with the Slack sinks, and the jobs.

Several replicas may run it: outbox rows are claimed with leases (SKIP LOCKED on PostgreSQL) and
every job is idempotent, so each card, notice and reminder still goes out once.
"""
from __future__ import annotations

from slack_sdk import WebClient

from bot.jobs import Scheduler


class SlackBackground:
    def __init__(self, services, client: WebClient, *, jobs: bool = True) -> None:
        self.app = services.app
        self.worker = self.app.outbox_worker(services.sinks(client))
        self.scheduler = Scheduler(self.app) if jobs else None

    def start(self) -> SlackBackground:
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
