"""Registration: labs, subjects, sessions and their vocabulary, as registry subtypes.

Modules: ``tables`` (the unique-name and session indexes), ``rules`` (what a record must
satisfy beyond its model: references, lab membership, dates; run by the registry on every
write), ``index`` (keeps the indexes in step with the registry's writes, and enforces
uniqueness), ``sessions`` (number allocation and listing) and ``routes`` (HTTP, mounted at
``/registry``). This package imports no router at import time: the registry's service
imports ``rules``.
"""
