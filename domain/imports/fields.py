"""What can be imported: the kinds, their fields, and how a file's headers map onto them.

Headers match case-, space- and punctuation-insensitively ("Close Date" = "close_date"), so our
own export's headers (the field names) map to themselves and many foreign ones map on their own.
A few common aliases of other CRMs (Salesforce, HubSpot) are known; anything else is mapped with
an explicit mapping (`{"Opportunity Name": "name"}`, `--map "Opportunity Name=name"`), which
always wins. Map a header to "-" to ignore it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from domain.errors import ValidationFailed
from domain.rbac import UseCase

IGNORE = "-"


@dataclass(frozen=True)
class Field:
    name: str
    required: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kind:
    name: str
    fields: tuple[Field, ...]
    use_case: UseCase
    # Columns our export adds for people to read (refs, computed values): ignored on import.
    read_only: tuple[str, ...] = ()

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


OWNER = Field("owner", aliases=("owner email", "owner name", "assigned to"))

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("leads", (
        Field("company", True, ("company name", "organization", "organisation", "公司", "公司名称")),
        Field("contact_name", True, ("contact", "full name", "name", "contact person", "联系人", "姓名")),
        Field("source", aliases=("lead source", "来源", "线索来源")),
        Field("title", aliases=("job title", "职位")),
        Field("email", aliases=("email address", "e mail", "邮箱")),
        Field("phone", aliases=("phone number", "mobile", "mobile phone", "电话", "手机")),
        Field("region", aliases=("区域", "地区")),
        Field("need", aliases=("description", "需求")),
        Field("budget", aliases=("预算",)),
        Field("currency", aliases=("币种",)),
        Field("timeline"),
        Field("authority"),
        Field("notes", aliases=("note", "comments", "备注")),
        Field("status", aliases=("lead status", "状态")),
        Field("disqualify_reason", aliases=("disqualification reason",)),
        Field("owner", aliases=(*OWNER.aliases, "lead owner", "负责人")),
    ), UseCase.CREATE_LEAD, ("ref", "owner_name", "score", "created_at")),
    Kind("accounts", (
        Field("name", True, ("account name", "company", "company name", "客户", "客户名称")),
        Field("industry", aliases=("行业",)),
        Field("region", aliases=("区域", "地区")),
        Field("tier", aliases=("客户级别",)),
        Field("owner", aliases=(*OWNER.aliases, "account owner", "客户经理")),
    ), UseCase.CREATE_ACCOUNT, ("ref", "owner_name", "created_at")),
    Kind("contacts", (
        Field("account", True, ("account name", "company", "company name", "客户", "客户名称")),
        Field("name", True, ("full name", "contact name", "contact", "联系人", "姓名")),
        Field("title", aliases=("job title", "职位")),
        Field("email", aliases=("email address", "e mail", "邮箱")),
        Field("phone", aliases=("phone number", "mobile", "mobile phone", "电话", "手机")),
        Field("decision_role", aliases=("role", "decision chain role", "角色")),
        Field("relationship", aliases=("relationship strength",)),
        # Only used to own an account the file names but we do not have (--missing-account create).
        Field("owner", aliases=(*OWNER.aliases, "contact owner", "account owner")),
    ), UseCase.ADD_CONTACT, ("ref",)),
    Kind("opportunities", (
        Field("name", True, ("opportunity name", "opportunity", "deal name", "deal", "商机", "商机名称")),
        Field("account", True, ("account name", "company", "company name", "客户", "客户名称")),
        Field("amount", True, ("deal amount", "金额")),
        Field("stage", True, ("deal stage", "opportunity stage", "阶段")),
        Field("currency", aliases=("opportunity currency", "amount currency", "币种")),
        Field("close_date", aliases=("expected close date", "closing date", "预计签约日期")),
        Field("created_on", aliases=("created date", "create date", "created", "创建日期")),
        Field("owner", aliases=(*OWNER.aliases, "opportunity owner", "deal owner", "客户经理")),
        Field("next_step", aliases=("下一步",)),
        Field("customer_need", aliases=("description", "need", "客户需求")),
        Field("budget", aliases=("预算",)),
        Field("competitors", aliases=("competitor", "竞争对手")),
        Field("close_reason", aliases=("loss reason", "lost reason", "reason", "关闭原因")),
    ), UseCase.CREATE_OPPORTUNITY, ("ref", "probability", "owner_name")),
)}


def key(header: str) -> str:
    """The comparable form of a header: "Close Date", "close_date" and " CLOSE-date " meet."""
    text = unicodedata.normalize("NFKC", header or "").casefold()
    return re.sub(r"[\s_\-.:/()]+", " ", text).strip()


def kind_named(name: str) -> Kind:
    found = KINDS.get((name or "").strip().lower())
    if found is None:
        raise ValidationFailed(f"Cannot import '{name}'", field="kind", allowed=list(KINDS))
    return found


@dataclass
class Columns:
    """Where each field of the kind is in the file (column index and the header as written)."""

    kind: Kind
    at: dict[str, int] = field(default_factory=dict)
    header_of: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # headers nobody maps: reported, not fatal

    def has(self, name: str) -> bool:
        return name in self.at

    def header(self, name: str | None) -> str | None:
        """The file's header for a field (errors name what the user sees), else the field's name."""
        if name is None:
            return None
        return self.header_of.get(name, name)


def parse_mapping(pairs: list[str] | tuple[str, ...] | None, *, option: str = "map") -> dict[str, str]:
    """["Opportunity Name=name", …] → {"Opportunity Name": "name"} (the last '=' separates)."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        source, sep, target = str(pair).rpartition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValidationFailed(f"--{option} '{pair}' is not SOURCE=TARGET (e.g. \"Closed Won=won\")",
                                   field=option)
        out[source.strip()] = target.strip()
    return out


def resolve_columns(kind: Kind, headers: list[str], mapping: dict[str, str] | None = None) -> Columns:
    """Match the file's headers to the kind's fields: explicit mapping, then field names, then aliases."""
    mapping = mapping or {}
    cols = Columns(kind)
    by_key: dict[str, int] = {}
    for i, h in enumerate(headers):
        if key(h) and key(h) not in by_key:
            by_key[key(h)] = i
    explicit: dict[int, str] = {}
    for source, target in mapping.items():
        if target != IGNORE and kind.field(target) is None:
            raise ValidationFailed(f"--map '{source}={target}': {kind.name} have no field '{target}'",
                                   field="map", allowed=kind.names)
        if key(source) not in by_key:
            raise ValidationFailed(f"--map '{source}={target}': the file has no column '{source}'",
                                   field="map", allowed=[h for h in headers if h.strip()])
        explicit[by_key[key(source)]] = target
    claimed = {target for target in explicit.values() if target != IGNORE}
    field_keys = {key(f.name): f.name for f in kind.fields}
    alias_keys = {key(a): f.name for f in kind.fields for a in f.aliases}
    read_only = {key(r) for r in kind.read_only}
    implicit: dict[int, str] = {}
    for i, h in enumerate(headers):
        if i in explicit or not key(h) or by_key[key(h)] != i:
            continue
        name = field_keys.get(key(h))
        if name is not None and name not in claimed:
            implicit[i] = name
    taken = claimed | set(implicit.values())
    for i, h in enumerate(headers):
        if i in explicit or i in implicit or not key(h) or by_key[key(h)] != i:
            continue
        name = alias_keys.get(key(h))
        if name is not None and name not in taken:
            implicit[i] = name
            taken.add(name)
        elif key(h) not in read_only:
            cols.ignored.append(h)
    for i, name in sorted({**implicit, **explicit}.items()):
        if name == IGNORE:
            continue
        if name in cols.at:
            raise ValidationFailed(f"Two columns map to {name}: '{cols.header_of[name]}' and '{headers[i]}'; "
                                   f"map one of them to '-' to ignore it", field="map")
        cols.at[name], cols.header_of[name] = i, headers[i]
    missing = [f.name for f in kind.fields if f.required and f.name not in cols.at]
    if missing:
        raise ValidationFailed(
            f"The file has no column for {', '.join(missing)} (required for {kind.name}); its columns are: "
            f"{', '.join(h for h in headers if h.strip()) or 'none'}. Map one with --map \"Your Header={missing[0]}\"",
            field="map", missing=missing, allowed=[h for h in headers if h.strip()])
    return cols


def load_mapping_file(text: str, name: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """A JSON or YAML mapping file → (column mapping, stage mapping). Either a flat
    {"Opportunity Name": "name", …} or {"columns": {…}, "stages": {"Closed Won": "won", …}}."""
    import json

    try:
        if name.lower().endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json and yaml raise their own kinds
        raise ValidationFailed(f"The mapping file {name} is not valid JSON/YAML: {exc}", field="map_file") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The mapping file must hold an object: {\"columns\": {…}, \"stages\": {…}}",
                               field="map_file")
    if "columns" in data or "stages" in data:
        columns, stages = data.get("columns") or {}, data.get("stages") or {}
    else:
        columns, stages = data, {}
    if not isinstance(columns, dict) or not isinstance(stages, dict):
        raise ValidationFailed("columns and stages must each map names to names", field="map_file")
    return ({str(k): str(v) for k, v in columns.items()}, {str(k): str(v) for k, v in stages.items()})
