"""docs/protocol.md against the server: the error table of §10 (codes, HTTP
status, English and German text) and the event tables of §3 must say what the
code does, so the two cannot drift apart unnoticed."""

from __future__ import annotations

import re
from pathlib import Path

from presence_server.rest import HTTP_STATUS
from rooms.errors import MESSAGES, ErrorCode
from tests.conftest import OfficeServer

DOC = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()


def section(number: int) -> str:
    start = DOC.index(f"\n## {number}. ")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else None]


def test_the_error_table_lists_every_code_with_its_status_and_both_texts() -> None:
    rows = {}
    for line in section(10).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`[a-z_]+`", cells[0]):
            rows[cells[0].strip("`")] = (int(cells[1]), cells[3], cells[4])
    assert set(rows) == {code.value for code in ErrorCode}
    for code in ErrorCode:
        status = HTTP_STATUS.get(code, 409)  # rest.error_middleware: domain refusals are conflicts
        assert rows[code.value] == (status, *MESSAGES[code]), code


def test_the_event_tables_list_exactly_the_events_the_server_answers(office: OfficeServer) -> None:
    text = section(3)
    linked = re.findall(r"^\| \[`([a-z]+\.[a-z_]+)`\]\(#", text, flags=re.MULTILINE)  # the table of §3
    calls = re.findall(r"^\| `(call\.[a-z_]+)` \|", text, flags=re.MULTILINE)  # "Call events"
    documented = {*linked, *calls}
    assert documented == set(office.runtime.gateway.events)
