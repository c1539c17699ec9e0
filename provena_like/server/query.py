"""One rule for every route's query string: a parameter that takes one value is sent once.

Starlette keeps every value of a repeated query parameter and FastAPI silently uses the last
one for a parameter declared as a single value, so ``?name=a&name=b`` was answered as if only
``name=b`` had been sent. A client that repeats such a parameter has made a mistake (or is
probing), and answering 200 hides it: :func:`refuse_repeated_scalars`, a dependency of the
whole app, answers it with the 422 ``validation_error`` every service uses, naming the
parameter. Parameters declared as lists (``?kind=a&kind=b``) may repeat as before.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from provena_like.server.errors import validation_error

__all__ = ["refuse_repeated_scalars", "single_value_names"]


def _takes_many(annotation: Any) -> bool:
    """Whether a parameter annotated ``annotation`` takes several values (a list, set...)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_many(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_takes_many(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in (list, tuple, set, frozenset):
        return True
    return (
        isinstance(origin, type)
        and issubclass(origin, Sequence)
        and not issubclass(origin, str | bytes)
    )


_NAMES: dict[int, tuple[APIRoute, frozenset[str]]] = {}
"""id(route) → (route, names); the route is kept, so its id can't be reused by another."""


def single_value_names(route: APIRoute) -> frozenset[str]:
    """The query parameters of ``route`` (by the name sent) that take one value."""
    known = _NAMES.get(id(route))
    if known is not None and known[0] is route:
        return known[1]
    names: set[str] = set()
    pending: list[Dependant] = [route.dependant]
    while pending:  # the route's own parameters and those of its dependencies
        dependant = pending.pop()
        names.update(
            field.alias
            for field in dependant.query_params
            if not _takes_many(field.field_info.annotation)
        )
        pending.extend(dependant.dependencies)
    _NAMES[id(route)] = (route, frozenset(names))
    return frozenset(names)


async def refuse_repeated_scalars(request: Request) -> None:
    """Refuse (422) a request that repeats a query parameter taking one value.

    Raises:
        ServiceError: 422 ``validation_error`` naming each repeated parameter.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    names = single_value_names(route)
    params = request.query_params
    repeated = sorted(key for key in set(params) if key in names and len(params.getlist(key)) > 1)
    if repeated:
        raise validation_error(
            [
                {
                    "field": f"query.{name}",
                    "message": f"given {len(params.getlist(name))} times; "
                    "this parameter takes one value: send it once",
                    "type": "repeated_value",
                }
                for name in repeated
            ],
            what="query string",
        )
