"""The periodic jobs (expire quotes and approvals, invoice due dates, dunning) and a scheduler.

Each job runs in its own transaction as the system user, so one failing job does not hold back
the others. `Scheduler` runs them every `jobs_interval_minutes` on a daemon thread beside the
outbox worker (console chat, `ltc worker`); on PostgreSQL several workers may run them at once:
every job is idempotent (expired stays expired, a milestone is invoiced once, dunning only rises).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date

from domain.actor import Channel
from domain.services import approvals, billing, collections, quotes, reminders
from domain.settings import Settings, get_settings

log = logging.getLogger("ltc.jobs")


def daily_jobs(as_of: date | None = None, settings: Settings | None = None) -> list[tuple[str, Callable]]:
    settings = settings or get_settings()
    return [
        ("quotes expired", lambda actor, uow: len(quotes.expire_quotes(actor=actor, uow=uow, as_of=as_of))),
        ("approvals expired", lambda actor, uow: approvals.expire_approvals(actor=actor, uow=uow)),
        ("date milestones invoiced", lambda actor, uow: billing.bill_due_milestones(actor=actor, uow=uow, as_of=as_of)),
        ("dunning reminders", lambda actor, uow: len(collections.run_dunning(actor=actor, uow=uow, as_of=as_of).raised)),
        ("chat reminders", lambda actor, uow: _reminders(actor, uow, as_of, settings)),
    ]


def _reminders(actor, uow, as_of: date | None, s: Settings) -> int:
    return reminders.raise_reminders(actor=actor, uow=uow, as_of=as_of, remind_after_hours=s.approval_remind_hours,
                                     escalate_after_hours=s.approval_escalate_hours,
                                     quote_notice_days=s.quote_expiry_notice_days,
                                     milestone_notice_days=s.milestone_notice_days,
                                     digest_weekday=s.pipeline_digest_weekday).total


def run_jobs(app, as_of: date | None = None) -> list[tuple[str, int]]:
    """(label, how many) per job. A failing job does not stop the ones after it; its error is raised at the end."""
    system = app.system_actor(Channel.SYSTEM)
    results, failed = [], None
    for label, job in daily_jobs(as_of, app.settings):
        try:
            with app.uow() as uow:
                n = job(system, uow)
                uow.commit()
        except Exception as e:
            log.warning("job %r failed: %r", label, e)
            failed = failed or e
            continue
        results.append((label, n))
    if failed is not None:
        raise failed
    return results


class Scheduler:
    def __init__(self, app, *, interval_seconds: float | None = None) -> None:
        self.app = app
        self.interval = interval_seconds or app.settings.jobs_interval_minutes * 60
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="ltc-jobs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = run_jobs(self.app)
                self.runs += 1
                log.info("jobs: %s", ", ".join(f"{label} {n}" for label, n in done))
            except Exception:  # a bad run is logged and retried next interval, never kills the thread
                log.exception("scheduled jobs failed")
            self._stop.wait(self.interval)
