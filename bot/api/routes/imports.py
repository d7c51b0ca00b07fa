"""CSV/XLSX import and export over the API.

* `POST /imports/{kind}` (scope imports:write): multipart with `file` (CSV or XLSX) and the
  options as form fields or query parameters (`map`, `stage_map` repeatable "A=b"; an optional
  `map_file` JSON/YAML upload; `missing_account`, `unknown_owner`, `mode`, `dry_run`,
  `day_first`). Answers 200 with the report (`committed` says whether anything was written;
  `errors` lists row, column, problem) — bad rows are data, not a failed request. A bad file or
  option is a 422, a caller without the role to create the kind a 403, as everywhere.
* `GET /exports/{kind}?format=csv|xlsx` (scope `<kind>:read`): streamed, with the importer's
  headers, only the rows the key's service user may see.
"""
from __future__ import annotations

import tempfile
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from bot.api.deps import Caller, app_context, caller
from bot.api.errors import ApiError
from domain.imports import (
    EXPORT_COLUMNS,
    EXPORT_KINDS,
    MEDIA_TYPES,
    ImportOptions,
    ImportReport,
    csv_chunks,
    export_rows,
    parse_mapping,
    run_import,
    write_xlsx,
)
from domain.imports.fields import load_mapping_file

router = APIRouter(tags=["imports"])
ImportKind = Literal["leads", "accounts", "contacts", "opportunities"]
Mode = Literal["all-or-nothing", "skip-bad"]
MissingAccount = Literal["reject", "create"]
OWNER_POLICY = r"^(reject|assign:[^@\s]+@[^@\s]+)$"
CHUNK = 64 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # in memory up to this, then a temporary file

Pairs = Annotated[list[str] | None, Form(description='"Their header=our field" (repeatable)')]


@router.post("/imports/{kind}", response_model=ImportReport, summary="Import a CSV/XLSX file of records")
def import_file(
    kind: ImportKind,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX; the first row is the header")],
    request: Request,
    who: Caller = Depends(caller("imports:write")),
    map: Pairs = None,
    stage_map: Annotated[list[str] | None, Form(description='"Their stage=our stage" (repeatable)')] = None,
    map_file: Annotated[UploadFile | None, File(description='JSON/YAML {"columns": {…}, "stages": {…}}')] = None,
    missing_account: Annotated[MissingAccount | None, Form()] = None,
    unknown_owner: Annotated[str | None, Form(pattern=OWNER_POLICY, max_length=300)] = None,
    mode: Annotated[Mode | None, Form()] = None,
    dry_run: Annotated[bool | None, Form()] = None,
    day_first: Annotated[bool | None, Form()] = None,
    q_map: Annotated[list[str] | None, Query(alias="map", description="as the form field")] = None,
    q_stage_map: Annotated[list[str] | None, Query(alias="stage_map", description="as the form field")] = None,
    q_missing_account: Annotated[MissingAccount | None, Query(alias="missing_account")] = None,
    q_unknown_owner: Annotated[str | None, Query(alias="unknown_owner", pattern=OWNER_POLICY, max_length=300)] = None,
    q_mode: Annotated[Mode | None, Query(alias="mode")] = None,
    q_dry_run: Annotated[bool | None, Query(alias="dry_run")] = None,
    q_day_first: Annotated[bool | None, Query(alias="day_first")] = None,
) -> ImportReport:
    if not who.allows(f"{kind}:write"):  # importing leads is writing leads: the kind's scope too
        raise ApiError(403, "scope_missing", f"This API key lacks the scope {kind}:write",
                       details={"scope": f"{kind}:write", "have": sorted(who.scopes)})
    mapping: dict[str, str] = {}
    stages: dict[str, str] = {}
    if map_file is not None and map_file.filename:
        mapping, stages = load_mapping_file(_read(map_file).decode("utf-8-sig", errors="replace"),
                                            map_file.filename or "")
    mapping.update(parse_mapping([*(q_map or []), *(map or [])]))
    stages.update(parse_mapping([*(q_stage_map or []), *(stage_map or [])], option="stage_map"))
    options = ImportOptions(
        mapping=mapping, stage_map=stages,
        missing_account=missing_account or q_missing_account or "reject",
        unknown_owner=unknown_owner or q_unknown_owner or "reject",
        mode=mode or q_mode or "all-or-nothing",
        dry_run=bool(dry_run if dry_run is not None else q_dry_run),
        day_first=bool(day_first if day_first is not None else q_day_first))
    return run_import(kind, _read(file), options, actor=who.actor, uow_factory=app_context(request).uow,
                      filename=file.filename)


MAX_UPLOAD = 20 * 1024 * 1024  # ~150k rows of CSV; the server is shared with the chat surfaces


def _read(upload: UploadFile) -> bytes:
    data = upload.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ApiError(413, "too_large", f"{upload.filename or 'The file'} is over {MAX_UPLOAD // 2**20} MB; "
                       "split it", details={"limit_bytes": MAX_UPLOAD})
    return data


class ExportFilters:
    """Optional filters; each kind takes some (leads: status, owner; opportunities: stage, owner,
    account; accounts: owner; contacts: account; invoices, payments: status). Others are a 422."""

    def __init__(self,
                 status: Annotated[str | None, Query(max_length=30)] = None,
                 stage: Annotated[str | None, Query(max_length=30)] = None,
                 owner: Annotated[str | None, Query(max_length=200, description="email or name")] = None,
                 account: Annotated[str | None, Query(max_length=200, description="name or ACC-ref")] = None):
        self.values = {"status": status, "stage": stage, "owner": owner, "account": account}

    def given(self, kind: str) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if v is not None}


def _export_route(kind: str) -> None:
    async def export(request: Request, who: Caller = Depends(caller(f"{kind}:read")),
                     format: Literal["csv", "xlsx"] = "csv", filters: ExportFilters = Depends()
                     ) -> StreamingResponse:
        # Written to a spooled file first, then streamed: the read transaction (on SQLite a write
        # lock, BEGIN IMMEDIATE) ends before a slow client has downloaded anything. Permission and
        # filters fail before the first byte, in the error schema.
        spool = await run_in_threadpool(_build, app_context(request), who, kind, format, filters.given(kind))
        name = f"{kind}-{date.today().isoformat()}.{format}"

        def chunks():
            with spool:
                while block := spool.read(CHUNK):
                    yield block
        return StreamingResponse(chunks(), media_type=MEDIA_TYPES[format],
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    export.__name__ = f"export_{kind}"
    router.add_api_route(f"/exports/{kind}", export, methods=["GET"], response_class=StreamingResponse,
                         summary=f"Export {kind} as CSV or XLSX (the importer's headers)",
                         responses={200: {"content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["xlsx"]: {}},
                                          "description": f"The {kind} the key's user may see"}})


def _build(ctx, who: Caller, kind: str, fmt: str, filters: dict[str, str]):
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        with ctx.uow() as uow:
            rows = export_rows(kind, actor=who.actor, uow=uow, filters=filters)
            if fmt == "xlsx":
                write_xlsx(rows, EXPORT_COLUMNS[kind], spool, title=kind)
            else:
                for block in csv_chunks(rows, EXPORT_COLUMNS[kind]):
                    spool.write(block)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


for _kind in EXPORT_KINDS:
    _export_route(_kind)
