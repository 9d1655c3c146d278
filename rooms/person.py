"""A person is a municipality's person: the pair (municipality, user id).

Each town runs its own identity provider, so a token's ``sub`` is unique only
within its town: ``m.mueller`` exists in every town hall, and a token signed by
Altbach's provider with ``sub: "lea.lindenau"`` is *Altbach's* Lea, not
Lindenau's. Every place that identifies a person (presence, owners, knocks,
calls, the directory, Redis keys, logs) therefore uses :data:`PersonId`, never a
bare subject.

The string form is ``<municipality>/<user_id>``, e.g. ``lindenau/lea.lindenau``.
It is unambiguous because municipality ids never contain ``/`` (the part before
the *first* slash is the municipality; the user id may contain slashes). It is a
``NewType`` over ``str`` so it costs nothing on the hot path (dict keys, Redis
keys) while the type checker refuses a bare ``str`` where a person is meant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, NewType

__all__ = [
    "PersonId",
    "SEPARATOR",
    "USER_ID_MAX",
    "person_id",
    "split_person",
    "parse_person_id",
    "qualify_legacy",
]

PersonId = NewType("PersonId", str)

SEPARATOR: Final = "/"
#: The longest user id (token ``sub``) accepted anywhere.
USER_ID_MAX: Final = 128
#: Municipality ids: the campus id rule (config ids are a stricter subset of it).
_MUNICIPALITY_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def person_id(municipality: str, user_id: str) -> PersonId:
    """The one string form of (municipality, user id). Trusts its inputs: for
    values from a verified token or a store; use :func:`parse_person_id` for input."""
    return PersonId(municipality + SEPARATOR + user_id)


def split_person(pid: PersonId) -> tuple[str, str]:
    """``(municipality, user_id)`` of a person id."""
    municipality, _, user_id = pid.partition(SEPARATOR)
    return municipality, user_id


def parse_person_id(value: object) -> PersonId:
    """Validate untrusted input (REST, socket events, config) as a person id.

    Raises ``ValueError`` with a reason a client can act on.
    """
    if not isinstance(value, str):
        raise ValueError("must be a person id string 'municipality/user_id'")
    municipality, sep, user_id = value.partition(SEPARATOR)
    if not sep:
        problem = "it has no municipality"
    elif not _MUNICIPALITY_RE.fullmatch(municipality):
        problem = f"{municipality!r} is not a municipality id"
    elif not 1 <= len(user_id) <= USER_ID_MAX or user_id != user_id.strip():
        problem = f"the user id must be 1 to {USER_ID_MAX} characters without surrounding spaces"
    else:
        return PersonId(value)
    raise ValueError(f"{value!r} is not a person id 'municipality/user_id': {problem}")


def qualify_legacy(
    owner: str, *, floor_municipality: str | None, assignments: Mapping[str, str] = {}
) -> PersonId:
    """Migrate an owner written before identities were qualified (release 0.1).

    A qualified id is validated and kept. A bare user id belongs to the floor's
    municipality; on a cooperation floor (``floor_municipality`` None) it is
    ambiguous unless ``assignments`` (the operator's ``campus.legacy_owners``)
    names its municipality: then ``ValueError`` explains what to write.
    """
    if SEPARATOR in owner:
        return parse_person_id(owner)
    municipality = floor_municipality if floor_municipality is not None else assignments.get(owner)
    if municipality is None:
        raise ValueError(
            f"owner {owner!r} has no municipality and the floor belongs to a cooperation: "
            f"write it as '<municipality>/{owner}', or name its municipality in campus.legacy_owners"
        )
    return parse_person_id(person_id(municipality, owner))
