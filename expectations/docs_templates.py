"""Data Docs templates compiled once per process, not once per page.

GX's `DefaultJinjaView` makes a new Jinja environment for each Data Docs page it renders, and
Jinja compiles a template once per environment. Imported by `import_gx` only: jinja2 comes with
GX, and a run that does not validate never loads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.bccache


class _TemplateCache(jinja2.BytecodeCache):
    """Compiled templates, by name, for the life of the process. Jinja checks each against its
    source's checksum before using it (a changed template is compiled again). Jinja keys them
    by name and file, not by the environment's options: every environment that uses it is one
    that GX's `DefaultJinjaView` makes, all with the same options."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


#: The compiled templates every `CachingEnvironment` shares: GX's 44 templates took 0.1 s to
#: compile in every Data Docs build; a process that validates again (a test process) now
#: compiles them once, and the run's validating child before its call (`compile_ahead`).
#: In memory only: bytecode read back from disk is code to trust.
TEMPLATE_CACHE = _TemplateCache()


class CachingEnvironment(jinja2.Environment):
    """A Jinja environment that uses `TEMPLATE_CACHE` unless given a cache of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("bytecode_cache", TEMPLATE_CACHE)
        super().__init__(*args, **kwargs)


def compile_ahead(stop: Callable[[], bool]) -> int:
    """Compile GX's Data Docs templates into `TEMPLATE_CACHE` until `stop()` is true (checked
    before each: the run's validating child does this while it waits for its call, and stops
    when the call arrives). How many are cached now."""
    from great_expectations.render.view.view import DefaultJinjaView

    env = DefaultJinjaView().env
    for name in env.list_templates():
        if stop():
            break
        with contextlib.suppress(jinja2.TemplateError):  # a stylesheet that is not a template
            env.get_template(name)
    return len(TEMPLATE_CACHE._code)
