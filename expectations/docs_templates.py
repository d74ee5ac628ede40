"""Data Docs templates compiled once per process, not once per page.

GX's `DefaultJinjaView` makes a new Jinja environment for each Data Docs page it renders, and
Jinja compiles a template once per environment. Imported by `import_gx` only: jinja2 comes with
GX, and a run that does not validate never loads it.
"""

from __future__ import annotations

from typing import Any

import jinja2
import jinja2.bccache


class _TemplateCache(jinja2.BytecodeCache):
    """Compiled templates, by name, for the life of the process. Jinja checks each against its
    source's checksum before using it (a changed template is compiled again)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


#: The compiled templates every `CachingEnvironment` shares: GX's ~50 templates took 0.1 s
#: to compile in every Data Docs build; a process that validates again (tests,
#: `authorgraph serve`) now compiles them once. In memory only: bytecode read back from disk
#: is code to trust.
TEMPLATE_CACHE = _TemplateCache()


class CachingEnvironment(jinja2.Environment):
    """A Jinja environment that uses `TEMPLATE_CACHE` unless given a cache of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("bytecode_cache", TEMPLATE_CACHE)
        super().__init__(*args, **kwargs)
