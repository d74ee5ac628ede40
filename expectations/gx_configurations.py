"""An expectation's configuration built once per validation run, not once per read.

GX's `Expectation.configuration` is a property that rebuilds an `ExpectationConfiguration`
(a pydantic `dict()` of the expectation, its class name turned to snake case, a new object) on
every read, and a validation reads it thousands of times: `_get_domain_kwargs` and
`_get_success_kwargs` read it once per key of every metric they configure (9,000 reads, a
quarter of the CPU of validating `seeds/`). `runs_with_kept_configurations()` keeps each
expectation's first configuration for the rest of one `ValidationDefinition.run`; outside it
(and in any other thread) the property is GX's own.

Within one run nothing changes an expectation: GX builds the expectations of the run from the
suite's configurations (`to_domain_obj`) and only reads them. Each kept configuration is
stored with its expectation, so an id is never reused by another object while the run lasts.
Installed by `import_gx` only (like the Data Docs templates' cache), when GX still defines
`configuration` as a plain property: after an upgrade that changes that, GX runs unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

#: While a run keeps configurations: expectation id -> (the expectation, its configuration).
_KEPT: ContextVar[dict[int, tuple[Any, Any]] | None] = ContextVar("kept", default=None)


def install(expectation_class: type) -> bool:
    """Make `expectation_class.configuration` keep its value while a run asks it to; True when
    installed (now or before), False when GX's property is not what this module knows."""
    current = expectation_class.__dict__.get("configuration")
    if isinstance(current, _KeptProperty):
        return True
    if not isinstance(current, property) or current.fget is None or current.fset is not None:
        return False
    setattr(expectation_class, "configuration", _KeptProperty(current.fget))  # noqa: B010
    return True


class _KeptProperty(property):
    """GX's own getter, its result kept by `_KEPT` while a run keeps configurations."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        kept = _KEPT.get()
        build = self.fget
        assert build is not None
        if kept is None:
            return build(instance)
        hit = kept.get(id(instance))  # held with its expectation: the id is not reused
        if hit is None:
            hit = kept[id(instance)] = (instance, build(instance))
        return hit[1]


@contextlib.contextmanager
def runs_with_kept_configurations() -> Iterator[None]:
    """Within the block (one validation run), each expectation's configuration is built once."""
    token = _KEPT.set({})
    try:
        yield
    finally:
        _KEPT.reset(token)
