"""A small synthetic playbook library and a deterministic embedder, so these tests run in seconds."""
from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from knowledge.keyword import tokenize


class HashingEmbedder:
    """Bag of tokens hashed into 256 dimensions: same words → close vectors. Counts its work."""

    name = "hashing-test"

    def __init__(self) -> None:
        self.embedded = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in tokenize(text):
                out[row, int(hashlib.md5(tok.encode()).hexdigest(), 16) % 256] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def doc(slug: str, lang: str, *, stage: str = "any", gate: str = "none", role: str = "all", topic: str = "t",
        title: str, sections: dict[str, str]) -> str:
    body = "\n\n".join(f"## {h}\n\n{textwrap.dedent(t).strip()}" for h, t in sections.items())
    return (f"---\nid: {slug}\ntitle: \"{title}\"\nlang: {lang}\nstage: {stage}\ngate: {gate}\nrole: {role}\n"
            f"topic: {topic}\n---\n\n# {title}\n\nIntro of {title}.\n\n{body}\n")


LIBRARY = {
    "stage-bid.en.md": doc("stage-bid", "en", stage="bid", topic="stage", title="Bid stage", sections={
        "Goal of the stage": "Submit a compliant tender on time with an approved quote.",
        "AR checklist": "- Confirm the tender deadline\n- Align pricing with the SR",
        "SR checklist": "- Finish the technical response\n- Check margin against the floor price",
        "FR checklist": "- Confirm delivery capacity for the bid",
    }),
    "stage-bid.zh.md": doc("stage-bid", "zh", stage="bid", topic="stage", title="投标阶段", sections={
        "阶段目标": "按时提交合规的投标文件，并附已批准的报价。",
        "AR 清单": "- 确认投标截止时间\n- 与方案经理对齐价格",
        "SR 清单": "- 完成技术应答\n- 对照底价检查毛利",
        "FR 清单": "- 确认投标的交付能力",
    }),
    "gate-atc.en.md": doc("gate-atc", "en", stage="negotiate", gate="ATC", topic="decision-gate",
                          title="ATC contract decision", sections={
        "Who decides": "The director decides first, then finance checks payment terms.",
        "FR checklist": "- Sign off deliverability\n- List delivery risks",
        "AR checklist": "- Bring the final payment terms",
    }),
    "collections.en.md": doc("collections", "en", stage="won", role="AR", topic="collections",
                             title="Collections playbook", sections={
        "Escalation ladder": "Overdue invoices escalate: reminder email, call from the AR, manager call, legal letter.",
        "Promise to pay": "Record the date and amount the customer promises and follow up the day after.",
    }),
    "collections.zh.md": doc("collections", "zh", stage="won", role="AR", topic="collections",
                             title="回款手册", sections={
        "催收升级": "逾期发票逐级升级：提醒邮件、客户经理致电、主管致电、律师函。",
        "承诺付款": "记录客户承诺付款的日期和金额，次日跟进。",
    }),
}


@dataclass
class KnowledgeSettings:
    playbooks_dir: str
    chroma_path: str
    chroma_url: str | None = None


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for name, text in LIBRARY.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def settings(library: Path, tmp_path: Path) -> KnowledgeSettings:
    return KnowledgeSettings(playbooks_dir=str(library), chroma_path=str(tmp_path / "chroma"))


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()
