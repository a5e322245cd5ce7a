from dataclasses import dataclass, field
from typing import Literal

import pytest

from graspseg.core import ConfigError
from graspseg.core.config import from_dict, load_yaml, to_dict, with_overrides


@dataclass(frozen=True)
class Inner:
    threshold_m: float = 0.01
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, int] = (1, 2)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    enabled: bool = True
    limit: float | None = None


def test_round_trip_and_nested():
    cfg = from_dict(Outer, {"name": "y", "inner": {"threshold_m": 0.02, "sizes": [3, 4]}, "limit": 2})
    assert cfg.inner == Inner(0.02, "a", (3, 4)) and cfg.limit == 2.0
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_and_bad_values():
    with pytest.raises(ConfigError, match=r"inner: unknown option\(s\) \['treshold_m'\]"):
        from_dict(Outer, {"inner": {"treshold_m": 1}})
    with pytest.raises(ConfigError, match=r"inner.mode: got 'c', expected one of \['a', 'b'\]"):
        from_dict(Outer, {"inner": {"mode": "c"}})
    with pytest.raises(ConfigError, match="inner.threshold_m: expected float"):
        from_dict(Outer, {"inner": {"threshold_m": "lots"}})


def test_overrides():
    cfg = with_overrides(Outer(), ["--inner.threshold_m=0.5", "enabled=false"])
    assert cfg.inner.threshold_m == 0.5 and cfg.enabled is False
    with pytest.raises(ConfigError, match="unknown option 'nope'"):
        with_overrides(Outer(), {"inner.nope": 1})
    with pytest.raises(ConfigError, match="must look like section.field=value"):
        with_overrides(Outer(), ["inner.threshold_m"])


def test_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: z\ninner:\n  mode: b\n")
    assert load_yaml(Outer, p).inner.mode == "b"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(Outer, p)
