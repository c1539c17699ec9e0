"""Import every table module so that ``Base.metadata`` knows the whole schema."""

from provena_like.server.db import idempotency, identity  # noqa: F401
