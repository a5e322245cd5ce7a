import pytest

from graspseg.core import BackendNotFoundError, MissingDependencyError, Registry


def test_lazy_string_target_and_listing():
    reg = Registry("thing")
    reg.register("json-dumps", "json:dumps", description="stdlib")
    assert reg.names() == ["json-dumps"]
    import json

    assert reg.get("json-dumps") is json.dumps


def test_decorator_and_create():
    reg = Registry("thing")

    @reg.register("adder")
    def adder(a, b=1):
        return a + b

    assert reg.create("adder", 2, b=3) == 5
    with pytest.raises(ValueError, match="already registered"):
        reg.register("adder", adder)


def test_unknown_name_lists_available():
    reg = Registry("segmenter")
    reg.register("rgbd", "json:dumps")
    reg.register("needs-missing", "x:y", requires=("definitely_not_installed_pkg",), extra="sam")
    with pytest.raises(BackendNotFoundError, match="no segmenter named 'sam9'; available: rgbd"):
        reg.get("sam9")
    assert reg.available() == ["rgbd"]
    with pytest.raises(MissingDependencyError, match=r"pip install 'graspseg\[sam\]'"):
        reg.get("needs-missing")
