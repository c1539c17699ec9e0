"""Server-side crawl jobs: a crawl of a dataset or a transfer collection, run on the job runner.

See :mod:`provena_like.server.crawl.service` (starting, running, delivering) and
:mod:`provena_like.server.crawl.routes` (``/crawl/jobs``).
"""
