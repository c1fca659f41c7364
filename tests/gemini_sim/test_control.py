"""The simulator's control endpoints (/_sim/...), for tools and browser tests against a stand-alone run."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest
from google.genai import errors

from .conftest import client_for


def _call(sim, method: str, path: str, body=None):
    ctx = ssl.create_default_context(cafile=str(sim.ca_path))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        sim.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, context=ctx) as resp:
        return json.load(resp)


def test_options_faults_and_records_over_http(make_sim):
    sim = make_sim()
    opts = _call(sim, "POST", "/_sim/options", {"connection_lifetime": 42, "api_keys": ["a", "b"]})
    assert opts["connection_lifetime"] == 42 and opts["api_keys"] == ["a", "b"]
    assert sim.options.connection_lifetime == 42 and sim.options.api_keys == frozenset({"a", "b"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        _call(sim, "POST", "/_sim/options", {"no_such_option": 1})
    assert exc.value.code == 400
    _call(sim, "POST", "/_sim/faults", {"kind": "http", "when": "rest", "status": 500})
    client = client_for(sim, api_key="a")
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    records = _call(sim, "GET", "/_sim/records")["records"]
    assert [r["path"] for r in records] == ["/v1beta/models/gemini-2.5-flash:generateContent"]
    _call(sim, "DELETE", "/_sim/records")
    assert sim.records() == []
