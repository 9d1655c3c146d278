"""The portal endpoints' part of the OpenAPI document (merged by :mod:`presence_server.openapi`)."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel

from presence_server import rest_models as rm

__all__ = ["portal_schemas", "portal_paths"]

_ANSWERS: tuple[type[BaseModel], ...] = (
    rm.FloorOccupancy, rm.BadgeAnswer, rm.PeopleSearchAnswer, rm.PublishedSkillsBody, rm.PublishedSkillsAnswer,
)


def portal_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in _ANSWERS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    props = model.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in props.items()]


def portal_paths(op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """``op`` is the core document's operation builder (security and refusals)."""
    path_param = lambda name: {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}  # noqa: E731

    occupancy = op("Who is in which room of the floor, and who is in its hallway (404 unless visible)")
    occupancy["responses"]["200"]["content"] = _json(rm.FloorOccupancy)

    badge = op("One person's presence: status, text, in a call, and floor and room if the caller may see them. "
               "404 for unknown people and, identically, for people of municipalities the caller may not see.")
    badge["responses"]["200"]["content"] = {**_json(rm.BadgeAnswer), "image/svg+xml": {"schema": {"type": "string"}}}
    badge["parameters"] = _query_parameters(rm.BadgeQuery)

    search = op("Specialist finder: people the caller may see, by skill, department or job title, ranked by "
                "availability now, then by where they sit; scope=platform adds people of other cooperations "
                "who published a matching skill (published skills only, never an invisible floor)")
    search["responses"]["200"]["content"] = _json(rm.PeopleSearchAnswer)
    search["parameters"] = _query_parameters(rm.PeopleSearchQuery)

    published_get = op("The skills the caller publishes platform-wide, and those they could publish")
    published_get["responses"]["200"]["content"] = _json(rm.PublishedSkillsAnswer)
    published_put = op("Choose the skills to publish platform-wide ([] opts out): only skills the caller has "
                       "and their municipality publishes; the caller must be online (409 otherwise)",
                       body=rm.PublishedSkillsBody)
    published_put["responses"]["200"]["content"] = _json(rm.PublishedSkillsAnswer)

    return {
        "/api/v1/me/published-skills": {"get": published_get, "put": published_put},
        "/api/v1/floors/{floor_id}/occupancy": {"parameters": [path_param("floor_id")], "get": occupancy},
        "/api/v1/municipalities/{municipality_id}/users/{user_id}/badge": {
            "parameters": [path_param("municipality_id"), path_param("user_id")],
            "get": badge,
        },
        "/api/v1/people/search": {"get": search},
    }
