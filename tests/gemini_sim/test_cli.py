"""``python -m gemini_sim``: documented options, and a stand-alone run the SDK can use."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.genai import errors

from gemini_sim.__main__ import build_parser, parse_fault
from gemini_sim.server import Options

from .conftest import client_for, text_of

ROOT = Path(__file__).resolve().parents[2]


def test_help_documents_every_option():
    out = subprocess.run(
        [sys.executable, "-m", "gemini_sim", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--host", "--port", "--state-dir", "--api-key", "--record", "--lifetime", "--go-away-before",
                 "--realtime-factor", "--audio-chunk-ms", "--latency", "--stream-delay", "--resumption-ttl",
                 "--vad-threshold", "--silence-ms", "--empty-turns", "--fault", "--keep-records"):  # fmt: skip
        assert flag in out
    for action in build_parser()._actions:
        assert action.help, action.dest
    # every run-time option is reachable from the command line (record/record_limit are in-process only)
    dests = {a.dest for a in build_parser()._actions}
    renamed = {"connection_lifetime": "lifetime", "record_path": "record", "record": "keep_records",
               "record_limit": "keep_records"}  # fmt: skip
    for name in Options.__dataclass_fields__:
        assert renamed.get(name, name) in dests, name


def test_fault_specs_parse():
    f = parse_fault("close:1008:Requested entity was not found.@tool_responsex2")
    assert (f.kind, f.code, f.reason, f.when, f.count) == (
        "close",
        1008,
        "Requested entity was not found.",
        "tool_response",
        2,
    )
    assert parse_fault("stall:3@audio").seconds == 3.0
    assert parse_fault("http:429@rest").status == 429
    with pytest.raises(Exception, match="bad fault spec"):
        parse_fault("explode@turn")


class _Running:
    def __init__(self, proc: subprocess.Popen, base_url: str, ca: Path) -> None:
        self.proc, self.base_url, self.ca_path = proc, base_url, ca
        import ssl

        self.ssl_context = ssl.create_default_context(cafile=str(ca))


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[_Running, Path]]:
    record = tmp_path / "frames.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemini_sim", "--port", "0", "--state-dir", str(tmp_path / "state"),
         "--api-key", "cli-key", "--record", str(record), "--realtime-factor", "0", "--fault", "http:503@rest"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None  # stdout=PIPE
        url = re.search(r"https://\S+", proc.stdout.readline())
        ca = re.search(r"CA certificate: (\S+)", proc.stdout.readline())
        assert url and ca, "the simulator did not print its URL and CA"
        yield _Running(proc, url.group(0), Path(ca.group(1))), record
    finally:
        proc.terminate()
        proc.wait(10)


async def test_standalone_server_with_key_record_and_fault(standalone):
    running, record = standalone
    assert running.ca_path.exists()
    client = client_for(running, api_key="cli-key")
    with pytest.raises(errors.ServerError) as exc:  # the --fault
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert exc.value.code == 503
    assert "Hello" in text_of(client.models.generate_content(model="gemini-2.5-flash", contents="hello"))
    async with client.aio.live.connect(model="gemini-3.8-live") as session:
        await session.send_realtime_input(text="hi")
        async for msg in session.receive():
            if msg.server_content and msg.server_content.turn_complete:
                break
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["path"] for r in lines if r["type"] == "http"] == ["/v1beta/models/gemini-2.5-flash:generateContent"] * 2
    frames = [r["message"] for r in lines if r["type"] == "frame"]
    assert frames[0]["setup"]["model"] == "models/gemini-3.8-live"
    assert frames[1] == {"realtime_input": {"text": "hi"}}
