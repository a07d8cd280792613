"""The responder decorator, the registry's lookups and conflicts."""

import types

import pytest

from component import responder
from component.registry import RegistrationConflict, Registry


def module_with(**functions):
    module = types.ModuleType("handler_under_test")
    for name, function in functions.items():
        function.__module__ = module.__name__
        setattr(module, name, function)
    return module


def test_type_none_registers_for_get_and_set():
    @responder("urn:a")
    def both(request):
        pass

    registry = Registry()
    registry.collect(module_with(both=both), "a.py")
    assert registry.lookup("get", "urn:a", "query").function is both
    assert registry.lookup("set", "urn:a", "query").function is both


def test_element_narrows_and_more_specific_wins():
    @responder("urn:a", "get")
    def anything(request):
        pass

    @responder("urn:a", "get", element="special")
    def special(request):
        pass

    registry = Registry()
    registry.collect(module_with(anything=anything, special=special), "a.py")
    assert registry.lookup("get", "urn:a", "special").function is special
    assert registry.lookup("get", "urn:a", "other").function is anything


def test_lookup_misses_for_unknown_namespace_and_type():
    @responder("urn:a", "get")
    def only_get(request):
        pass

    registry = Registry()
    registry.collect(module_with(only_get=only_get), "a.py")
    assert registry.lookup("set", "urn:a", "query") is None
    assert registry.lookup("get", "urn:b", "query") is None
    assert registry.serves("urn:a") and not registry.serves("urn:b")


def test_same_key_twice_is_a_conflict_naming_both_origins():
    @responder("urn:a", "get")
    def first(request):
        pass

    @responder("urn:a")
    def second(request):
        pass

    registry = Registry()
    registry.collect(module_with(first=first), "one.py")
    with pytest.raises(RegistrationConflict) as raised:
        registry.collect(module_with(second=second), "two.py")
    assert "one.py" in str(raised.value) and "two.py" in str(raised.value) and "urn:a" in str(raised.value)


def test_stacked_decorators_register_each_declaration():
    @responder("urn:a", "get")
    @responder("urn:b", "set", element="x")
    def both(request):
        pass

    registry = Registry()
    registry.collect(module_with(both=both), "a.py")
    assert registry.lookup("get", "urn:a", "q").function is both
    assert registry.lookup("set", "urn:b", "x").function is both


def test_features_leave_out_responders_declared_with_disco_false():
    @responder("urn:public")
    def public(request):
        pass

    @responder("urn:hidden", disco=False)
    def hidden(request):
        pass

    registry = Registry()
    registry.collect(module_with(public=public, hidden=hidden), "a.py")
    assert registry.features == {"urn:public"}


def test_responders_imported_from_elsewhere_are_not_registered_twice():
    @responder("urn:a")
    def mine(request):
        pass

    module = module_with(mine=mine)
    module.borrowed = mine  # the same function under another name
    other = types.ModuleType("importer")
    other.mine = mine  # defined in handler_under_test, not here
    registry = Registry()
    assert registry.collect(other, "importer.py") == []
    registry.collect(module, "a.py")  # no conflict with itself


@pytest.mark.parametrize(
    "arguments",
    [("",), ("urn:a", "result"), ("urn:a", "GET"), ("urn:a&b",), ("urn:'quoted'",)],
)
def test_decorator_refuses_bad_arguments(arguments):
    with pytest.raises(ValueError):
        responder(*arguments)
