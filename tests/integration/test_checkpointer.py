"""Conversation memory on the app database: SqlCheckpointSaver on SQLite and PostgreSQL.

The LangGraph checkpointer contract: the latest checkpoint of a thread, one by id, listing newest
first (before / limit / metadata filter), pending writes round trip, deleting a thread, plus our own
rule (old checkpoints pruned to `keep`) and two chat threads written at once.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import ERROR, empty_checkpoint

from bot.agent.checkpointer import SqlCheckpointSaver
from domain.db import tables as t


def cid(n: int) -> str:
    """Checkpoint ids sort by time (uuid6); these sort by n."""
    return f"1f0c0000-0000-6000-8000-{n:012d}"


def config(thread: str, checkpoint_id: str | None = None, ns: str = "") -> dict:
    conf = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def checkpoint(n: int, **values) -> dict:
    cp = empty_checkpoint()
    cp["id"] = cid(n)
    cp["channel_values"] = values
    cp["channel_versions"] = {k: n for k in values}
    return cp


def save(saver: SqlCheckpointSaver, thread: str, *steps: int, ns: str = "", source: str = "loop") -> list[dict]:
    """Put checkpoints `steps` in order, each the child of the one before; returns their configs."""
    saved, parent = [], config(thread, ns=ns)
    for n in steps:
        parent = saver.put(parent, checkpoint(n, step=n), {"source": source, "step": n, "parents": {}}, {})
        saved.append(parent)
    return saved


@pytest.fixture
def saver(engine) -> SqlCheckpointSaver:
    return SqlCheckpointSaver(engine)


def writes_of(engine, thread: str | None = None) -> int:
    q = select(func.count()).select_from(t.agent_checkpoint_writes)
    if thread is not None:
        q = q.where(t.agent_checkpoint_writes.c.thread_id == thread)
    with engine.connect() as conn:
        return conn.execute(q).scalar_one()


def ids(tuples) -> list[str]:
    return [tp.config["configurable"]["checkpoint_id"] for tp in tuples]


# --------------------------------------------------------------------------- reads


def test_get_tuple_returns_the_latest_checkpoint_with_its_parent(saver):
    save(saver, "chat-1", 1, 2, 3)

    latest = saver.get_tuple(config("chat-1"))

    assert latest.checkpoint["id"] == cid(3) and latest.checkpoint["channel_values"] == {"step": 3}
    assert latest.parent_config == config("chat-1", cid(2))
    assert latest.metadata == {"source": "loop", "step": 3, "parents": {}}
    assert latest.pending_writes == []


def test_get_tuple_by_id_and_unknown_threads(saver):
    save(saver, "chat-1", 1, 2, 3)

    assert saver.get_tuple(config("chat-1", cid(2))).checkpoint["channel_values"] == {"step": 2}
    assert saver.get_tuple(config("chat-1", cid(1))).parent_config is None
    assert saver.get_tuple(config("chat-1", cid(9))) is None
    assert saver.get_tuple(config("chat-2")) is None


def test_messages_round_trip_with_their_types_and_tool_calls(saver):
    history = [HumanMessage("new lead Acme", id="h1"),
               AIMessage("", tool_calls=[{"name": "create_lead", "args": {"company": "Acme"}, "id": "c1"}],
                         usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}),
               ToolMessage('{"status": "ok"}', tool_call_id="c1", name="create_lead", artifact={"lead": {"id": 1}}),
               AIMessage("创建了线索 LEAD-00001")]
    saver.put(config("chat-1"), checkpoint(1, messages=history), {"source": "loop", "step": 1}, {})

    back = saver.get_tuple(config("chat-1")).checkpoint["channel_values"]["messages"]

    assert back == history
    assert back[1].tool_calls[0]["args"] == {"company": "Acme"} and back[2].artifact == {"lead": {"id": 1}}


def test_list_is_newest_first_with_before_limit_and_metadata_filter(saver):
    save(saver, "chat-1", 1, 2, 3, 4)
    save(saver, "chat-2", 5, source="input")

    assert ids(saver.list(config("chat-1"))) == [cid(4), cid(3), cid(2), cid(1)]
    assert ids(saver.list(config("chat-1"), before=config("chat-1", cid(3)))) == [cid(2), cid(1)]
    assert ids(saver.list(config("chat-1"), limit=2)) == [cid(4), cid(3)]
    assert ids(saver.list(config("chat-1"), filter={"step": 2})) == [cid(2)]
    assert ids(saver.list(config("chat-1"), filter={"source": "input"})) == []
    assert ids(saver.list(None, filter={"source": "input"})) == [cid(5)]
    assert ids(saver.list(config("chat-1", cid(3)))) == [cid(3)]
    assert len(list(saver.list(None))) == 5


def test_namespaces_are_kept_apart(saver):
    save(saver, "chat-1", 1, 2)
    save(saver, "chat-1", 3, ns="tools:subgraph")

    assert saver.get_tuple(config("chat-1")).checkpoint["id"] == cid(2)
    assert saver.get_tuple(config("chat-1", ns="tools:subgraph")).checkpoint["id"] == cid(3)
    assert ids(saver.list(config("chat-1", ns="tools:subgraph"))) == [cid(3)]


# --------------------------------------------------------------------------- writes


def test_pending_writes_round_trip_in_task_order(saver):
    [first] = save(saver, "chat-1", 1)
    saver.put_writes(first, [("messages", [AIMessage("hi")]), ("count", 7)], task_id="task-b", task_path="~a")
    saver.put_writes(first, [("messages", [HumanMessage("yo")])], task_id="task-a", task_path="~a")

    writes = saver.get_tuple(config("chat-1")).pending_writes

    assert writes == [("task-a", "messages", [HumanMessage("yo")]),
                      ("task-b", "messages", [AIMessage("hi")]), ("task-b", "count", 7)]


def test_an_ordinary_write_is_kept_once_and_an_error_write_is_replaced(saver):
    [first] = save(saver, "chat-1", 1)
    saver.put_writes(first, [("count", 1)], task_id="task-a")
    saver.put_writes(first, [("count", 2)], task_id="task-a")  # a replayed task: the first write stands
    saver.put_writes(first, [(ERROR, "first failure")], task_id="task-a")
    saver.put_writes(first, [(ERROR, "second failure")], task_id="task-a")

    writes = saver.get_tuple(first).pending_writes

    assert sorted(writes, key=str) == sorted([("task-a", "count", 1), ("task-a", ERROR, "second failure")], key=str)


def test_putting_the_same_checkpoint_again_replaces_it(saver):
    saver.put(config("chat-1"), checkpoint(1, step="draft"), {"source": "loop", "step": 1}, {})
    saver.put(config("chat-1"), checkpoint(1, step="final"), {"source": "update", "step": 1}, {})

    [only] = list(saver.list(config("chat-1")))

    assert only.checkpoint["channel_values"] == {"step": "final"} and only.metadata["source"] == "update"


def test_delete_thread_removes_its_checkpoints_and_writes_only(saver, engine):
    [one] = save(saver, "chat-1", 1)
    [two] = save(saver, "chat-2", 2)
    saver.put_writes(one, [("count", 1)], task_id="task-a")
    saver.put_writes(two, [("count", 2)], task_id="task-a")

    saver.delete_thread("chat-1")

    assert saver.get_tuple(config("chat-1")) is None
    assert writes_of(engine, "chat-1") == 0
    assert saver.get_tuple(config("chat-2")).pending_writes == [("task-a", "count", 2)]


def test_old_checkpoints_are_pruned_to_keep_with_their_writes(engine):
    saver = SqlCheckpointSaver(engine, keep=3)
    saved = save(saver, "chat-1", 1, 2)
    saver.put_writes(saved[0], [("count", 1)], task_id="task-a")
    save(saver, "chat-1", 3, 4, 5)
    save(saver, "chat-2", 6)

    assert ids(saver.list(config("chat-1"))) == [cid(5), cid(4), cid(3)]
    assert writes_of(engine) == 0  # the pruned checkpoint's writes went with it
    assert ids(saver.list(config("chat-2"))) == [cid(6)]  # other threads keep theirs


# --------------------------------------------------------------------------- concurrency


def test_two_chat_threads_write_at_once(engine):
    saver = SqlCheckpointSaver(engine, keep=10)
    start, errors = threading.Barrier(2), []

    def chat(thread: str, base: int) -> None:
        try:
            start.wait(timeout=10)
            parent = config(thread)
            for n in range(base, base + 15):
                parent = saver.put(parent, checkpoint(n, step=n), {"source": "loop", "step": n}, {})
                saver.put_writes(parent, [("count", n)], task_id=f"task-{n}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=chat, args=("chat-a", 100)), threading.Thread(target=chat, args=("chat-b", 200))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)

    assert errors == []
    for thread, base in (("chat-a", 100), ("chat-b", 200)):
        kept = list(saver.list(config(thread)))
        assert ids(kept) == [cid(n) for n in range(base + 14, base + 4, -1)]
        assert kept[0].pending_writes == [(f"task-{base + 14}", "count", base + 14)]
