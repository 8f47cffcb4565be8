"""Schemathesis against the API's own OpenAPI document: generated requests (valid and invalid)
on every operation get no 5xx and no answer outside the documented status codes, content
types and response schemas. The app is the collector's real one over a real SQLite store,
with tickets of two tenants in it; the event stream (an endless response) is left out.

Each operation's cases are drawn by Hypothesis from ``operation.as_strategy()`` (schemathesis'
pytest plugin does not load under this pytest; the checks are the same).
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_api_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    api = Api(tmp_path, sink_url="http://127.0.0.1:9/hook")
    api.report("gw-1", 1, disk_used_pct=97.0)
    api.report("nj-1", 1, tenant="globex", disk_used_pct=97.0)
    headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.app)
    tested = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path == "/events":
                continue

            @given(case=operation.as_strategy())
            @settings(
                max_examples=30,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            check()
            tested.append(f"{operation.method.upper()} {operation.path}")
    finally:
        api.close()
    assert len(tested) >= 14, tested
