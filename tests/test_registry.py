"""The one registry helper: register by decorator, look up with a one-line error naming the known names."""
from __future__ import annotations

import pytest

from processors.core.errors import UserError
from processors.core.registry import Registry


def test_register_lookup_and_the_error_for_an_unknown_name():
    things = Registry("thing")

    @things.register("b")
    def b():
        return "b"

    things.add("a", 1)
    assert b() == "b" and things["b"] is b and "a" in things and sorted(things) == ["a", "b"]
    with pytest.raises(UserError, match=r"^unknown thing 'c' \(known: a, b\)$"):
        things["c"]
    with pytest.raises(UserError, match=r"^x.name: unknown thing 'c' \(known: a, b\)$"):
        things.lookup("c", "x.name")
    with pytest.raises(ValueError, match="registered twice"):
        things.add("a", 2)
