"""/openapi.json describes every API route the server answers, and nothing it does not."""

from __future__ import annotations

from presence_server.openapi import openapi_document
from tests.conftest import OfficeServer


async def test_every_api_route_is_in_the_openapi_document(office: OfficeServer) -> None:
    served = {
        (route.resource.canonical, route.method.lower())
        for route in office.server.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/") and route.method != "HEAD"
    }
    documented = {
        (path, method) for path, ops in openapi_document()["paths"].items() if path.startswith("/api/")
        for method in ops if method != "parameters"  # path-level parameters, not an operation
    }
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
