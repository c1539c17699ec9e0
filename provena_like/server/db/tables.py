"""Import every table module so that ``Base.metadata`` knows the whole schema."""

from provena_like.server.archive import tables as archive_tables  # noqa: F401
from provena_like.server.auth import tables as auth_tables  # noqa: F401
from provena_like.server.crawl import tables as crawl_tables  # noqa: F401
from provena_like.server.datastore import tables as datastore_tables  # noqa: F401
from provena_like.server.db import idempotency, identity  # noqa: F401
from provena_like.server.extracted import tables as extracted_tables  # noqa: F401
from provena_like.server.jobs import tables as jobs_tables  # noqa: F401
from provena_like.server.registration import tables as registration_tables  # noqa: F401
from provena_like.server.registry import tables as registry_tables  # noqa: F401
from provena_like.server.review import tables as review_tables  # noqa: F401
from provena_like.server.transfer import tables as transfer_tables  # noqa: F401
from provena_like.server.transfer import task_tables  # noqa: F401
