"""The engine's direct S3 path, for callers outside the SDK (the reference server).

The reference server checks objects with the same pooled, signed requests the SDK's engine
uses (:class:`DirectS3`, :class:`S3Requests` with the engine's retry policy), and its
botocore clients send ``Content-MD5`` on batch deletes like the engine's
(:func:`register_content_md5`), and reads objects back to hash them like the engine
(:func:`digest_object`: the server's own check of registered files). The implementations
stay private to :mod:`provena_like.storage`.
"""

from __future__ import annotations

from provena_like.storage._direct import DirectS3, bucket_base_url
from provena_like.storage._md5 import register_content_md5
from provena_like.storage._objects import digest_object
from provena_like.storage._requests import S3Requests

__all__ = ["DirectS3", "S3Requests", "bucket_base_url", "digest_object", "register_content_md5"]
