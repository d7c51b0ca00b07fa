"""LangGraph checkpoints on the app database (SQLite or PostgreSQL), through SQLAlchemy.

Conversation memory per chat thread lives beside the business data, in tables created by the
Alembic migration (0004), so one backup, one connection pool and several replicas share it.
Each checkpoint is stored whole (channel values inline): conversations are short, and one row
per step keeps reads to a single query. Old checkpoints of a thread are pruned to `keep` so a
long-lived Slack thread does not grow without bound.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from sqlalchemy import Engine, and_, delete, select

from domain.db.tables import agent_checkpoint_writes as W
from domain.db.tables import agent_checkpoints as C
from domain.db.upsert import insert_for


class SqlCheckpointSaver(BaseCheckpointSaver[str]):
    def __init__(self, engine: Engine, *, keep: int = 50) -> None:
        super().__init__()
        self.engine = engine
        self.keep = keep

    # -- reads ------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        thread_id, ns = conf["thread_id"], conf.get("checkpoint_ns", "")
        q = select(C).where(C.c.thread_id == thread_id, C.c.checkpoint_ns == ns)
        if checkpoint_id := get_checkpoint_id(config):
            q = q.where(C.c.checkpoint_id == checkpoint_id)
        else:
            q = q.order_by(C.c.checkpoint_id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
            if row is None:
                return None
            return self._tuple(conn, row)

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        q = select(C).order_by(C.c.thread_id, C.c.checkpoint_id.desc())
        if config is not None:
            conf = config["configurable"]
            q = q.where(C.c.thread_id == conf["thread_id"])
            if conf.get("checkpoint_ns") is not None:
                q = q.where(C.c.checkpoint_ns == conf["checkpoint_ns"])
            if checkpoint_id := get_checkpoint_id(config):
                q = q.where(C.c.checkpoint_id == checkpoint_id)
        if before is not None and (before_id := get_checkpoint_id(before)):
            q = q.where(C.c.checkpoint_id < before_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            out = []
            for row in rows:
                if filter and not all(row["metadata"].get(k) == v for k, v in filter.items()):
                    continue
                out.append(self._tuple(conn, row))
                if limit is not None and len(out) >= limit:
                    break
        yield from out

    def _tuple(self, conn, row) -> CheckpointTuple:
        thread_id, ns, checkpoint_id = row["thread_id"], row["checkpoint_ns"], row["checkpoint_id"]
        writes = conn.execute(
            select(W.c.task_id, W.c.channel, W.c.type, W.c.value, W.c.task_path, W.c.idx).where(
                W.c.thread_id == thread_id, W.c.checkpoint_ns == ns, W.c.checkpoint_id == checkpoint_id)
            .order_by(W.c.task_path, W.c.task_id, W.c.idx)).all()
        parent = row["parent_checkpoint_id"]
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}},
            checkpoint=self.serde.loads_typed((row["type"], row["checkpoint"])),
            metadata=row["metadata"],
            parent_config=({"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                                             "checkpoint_id": parent}} if parent else None),
            pending_writes=[(w.task_id, w.channel, self.serde.loads_typed((w.type, w.value))) for w in writes],
        )

    # -- writes -----------------------------------------------------------------------------

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        conf = config["configurable"]
        thread_id, ns = conf["thread_id"], conf.get("checkpoint_ns", "")
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = json.loads(json.dumps(get_checkpoint_metadata(config, metadata), default=str))
        row = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"],
               "parent_checkpoint_id": conf.get("checkpoint_id"), "type": type_, "checkpoint": blob,
               "metadata": meta, "created_at": datetime.now(UTC).replace(tzinfo=None)}
        with self.engine.begin() as conn:
            conn.execute(self._upsert(C, row, ["thread_id", "checkpoint_ns", "checkpoint_id"], replace=True))
            self._prune(conn, thread_id, ns)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        conf = config["configurable"]
        thread_id, ns, checkpoint_id = conf["thread_id"], conf.get("checkpoint_ns", ""), conf["checkpoint_id"]
        with self.engine.begin() as conn:
            for idx, (channel, value) in enumerate(writes):
                type_, blob = self.serde.dumps_typed(value)
                special = WRITES_IDX_MAP.get(channel, idx)
                row = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id,
                       "task_id": task_id, "idx": special, "channel": channel, "type": type_, "value": blob,
                       "task_path": task_path}
                # Special writes (errors, interrupts) replace; ordinary ones are written once.
                conn.execute(self._upsert(W, row, ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"],
                                          replace=special < 0))

    def delete_thread(self, thread_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(W).where(W.c.thread_id == thread_id))
            conn.execute(delete(C).where(C.c.thread_id == thread_id))

    def _prune(self, conn, thread_id: str, ns: str) -> None:
        old = conn.execute(select(C.c.checkpoint_id).where(C.c.thread_id == thread_id, C.c.checkpoint_ns == ns)
                           .order_by(C.c.checkpoint_id.desc()).offset(self.keep)).scalars().all()
        if old:
            conn.execute(delete(W).where(and_(W.c.thread_id == thread_id, W.c.checkpoint_ns == ns,
                                              W.c.checkpoint_id.in_(old))))
            conn.execute(delete(C).where(and_(C.c.thread_id == thread_id, C.c.checkpoint_ns == ns,
                                              C.c.checkpoint_id.in_(old))))

    def _upsert(self, table, row: dict, keys: list[str], *, replace: bool):
        ins = insert_for(self.engine.dialect.name)(table).values(**row)
        if replace:
            return ins.on_conflict_do_update(index_elements=keys,
                                             set_={k: v for k, v in row.items() if k not in keys})
        return ins.on_conflict_do_nothing(index_elements=keys)

    # -- async: the agent runs sync; these keep the interface whole -------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(self, config, *, filter=None, before=None, limit=None):
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path: str = "") -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)
