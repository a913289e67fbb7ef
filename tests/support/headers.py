"""Case-insensitive header lookups shared by the test client's responses and the backends' requests."""

from __future__ import annotations

from collections.abc import Sequence


class HeaderLookup:
    """Mixin for a dataclass with `headers`: (name as sent, value) pairs in order."""

    headers: Sequence[tuple[str, str]]

    def header_all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for n, value in self.headers if n.lower() == key]

    def header(self, name: str) -> str | None:
        """All values of `name` joined with ", " (RFC 9110 §5.3), or None when absent."""
        values = self.header_all(name)
        return ", ".join(values) if values else None

    @property
    def names(self) -> set[str]:
        return {n.lower() for n, _ in self.headers}
