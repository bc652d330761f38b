"""``Registry``: the name -> entry mapping behind each extension point of the study.

Strategies (:mod:`ttl.strategies`), dataset kinds (:mod:`ttl.data.kinds`), similarity measures
(:mod:`ttl.analysis.measures`) and CAM methods (:mod:`ttl.explain`) are each one ``Registry``: a
``dict`` (iterate it for the CLI's choices; tests add to it with ``monkeypatch.setitem``) whose
``add`` refuses a name twice and whose ``lookup`` names the known entries when asked for another.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ttl.errors import ConfigError

T = TypeVar("T")


class Registry(dict, Generic[T]):  # type: ignore[type-arg]
    """Entries of one kind by name; ``what`` names the kind in errors ("dataset kind")."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` (a name already taken is a ConfigError)."""
        if name in self:
            raise ConfigError(f"{self.what} {name!r} is registered twice")
        self[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry of ``name``, or a ConfigError listing the registered names."""
        if name not in self:
            raise ConfigError(f"unknown {self.what} {name!r}; known: {', '.join(self)}")
        return self[name]
