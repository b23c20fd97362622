"""One name -> object registry for every pluggable part (models, vocoders, losses, datasets...).

``MODELS = Registry("model")``; ``@MODELS.register("unet")`` adds what it decorates; ``MODELS["x"]``
for an unknown name is a one-line UserError listing the known ones; ``in``, iteration, ``sorted``
and ``.items()`` work as on the dict it is.
"""
from __future__ import annotations

from typing import Any, Callable

from processors.core.errors import UserError


def _identity(obj: Any) -> tuple:
    return (getattr(obj, "__module__", None), getattr(obj, "__qualname__", obj))


class Registry(dict):
    """A dict of named components; ``kind`` names them in errors ('unknown vocoder ...')."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, name: str, obj: Any) -> Any:
        """Register ``obj`` under ``name``; a second, different object under one name is a bug."""
        old = self.get(name)
        # a module imported again (importlib.reload) re-registers its own definitions: not a clash
        if old is not None and old is not obj and _identity(old) != _identity(obj):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = obj
        return obj

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: ``@REGISTRY.register("name")`` adds the class or function it decorates."""
        return lambda obj: self.add(name, obj)

    def lookup(self, name: str, where: str = "") -> Any:
        """``self[name]``; an unknown name is ``UserError('<where>: unknown <kind> ... (known: ...)')``."""
        if name in self:
            return self[name]
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}unknown {self.kind} {name!r} (known: {', '.join(sorted(self))})")

    def __missing__(self, name: str) -> Any:
        return self.lookup(name)
