"""Level schemes: built-ins, lookup and schemes built from configuration."""

from __future__ import annotations

import pytest

from egide.errors import ConfigError, PolicyError
from egide.security.labels import Label
from egide.security.levels import FRENCH, NATO, scheme_by_name, scheme_from_config
from egide.security.markings import parse_marking, render_banner, render_portion

CONFIG = {
    "name": "acme",
    "levels": [
        {"code": "PUB", "fr": "PUBLIC", "en": "PUBLIC"},
        {"code": "INT", "fr": "INTERNE", "en": "INTERNAL", "aliases": ["USAGE INTERNE"]},
        {"code": "CONF", "fr": "CONFIDENTIEL", "en": "CONFIDENTIAL"},
    ],
}


def test_built_in_schemes_by_name() -> None:
    assert scheme_by_name("fr") is FRENCH and scheme_by_name("NATO") is NATO
    assert [lv.code for lv in FRENCH.levels] == ["NP", "DR", "S", "TS"]
    assert FRENCH.bottom.code == "NP" and FRENCH.top.code == "TS"
    assert FRENCH.level("DR") < FRENCH.level("S") <= FRENCH.level("CD") < FRENCH.level("SD")
    with pytest.raises(ConfigError, match="'fr' or 'nato'"):
        scheme_by_name("us")
    with pytest.raises(PolicyError, match="NP, DR, S, TS"):
        FRENCH.level("CONFIDENTIAL")


def test_scheme_from_config() -> None:
    scheme = scheme_from_config(CONFIG)
    assert [lv.rank for lv in scheme.levels] == [0, 1, 2]
    assert scheme.lookup("usage-interne") == scheme.level("INT")
    label = Label(scheme.level("CONF"), frozenset({"RH"}), frozenset({"FRA"}))
    assert parse_marking(render_banner(label, "en"), scheme) == label
    assert parse_marking(render_portion(label), scheme) == label
    with pytest.raises(PolicyError, match="scheme"):
        assert scheme.level("CONF") > FRENCH.level("S")


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"levels": []}, "needs"),
        ({"name": "x", "levels": []}, "no levels"),
        ({"name": "x", "levels": [{"fr": "A"}]}, "malformed"),
        ({"name": "x", "levels": [{"code": "A"}, {"code": "B", "aliases": ["a"]}]}, "unique"),
    ],
)
def test_bad_scheme_configs_say_how_to_fix(config: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        scheme_from_config(config)
