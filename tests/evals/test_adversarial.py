"""Adversarial prompts: size, coverage, determinism, and no classification marking."""

from __future__ import annotations

from collections import Counter

import pytest

from egide.evals.adversarial import FAMILIES, LANGS, AdversarialPrompt, adversarial_prompts
from egide.security.levels import scheme_by_name
from egide.security.spillage import scan


@pytest.fixture(scope="module")
def prompts() -> list[AdversarialPrompt]:
    return adversarial_prompts()


def test_many_distinct_prompts(prompts: list[AdversarialPrompt]) -> None:
    assert len(prompts) >= 3000
    assert len({p.text for p in prompts}) == len(prompts)
    assert len({p.id for p in prompts}) == len(prompts)


def test_both_languages_and_every_family(prompts: list[AdversarialPrompt]) -> None:
    by_lang = Counter(p.lang for p in prompts)
    assert set(by_lang) == set(LANGS)
    assert all(by_lang[lang] >= 1000 for lang in LANGS)
    pairs = Counter((p.lang, p.family) for p in prompts)
    for lang in LANGS:
        for family in FAMILIES:
            assert pairs[(lang, family)] >= 50, (lang, family)


def test_deterministic(prompts: list[AdversarialPrompt]) -> None:
    assert adversarial_prompts() == prompts
    assert adversarial_prompts() == adversarial_prompts()


def test_filters() -> None:
    french = adversarial_prompts("fr")
    assert french and all(p.lang == "fr" for p in french)
    encoded = adversarial_prompts("en", "encoding")
    assert encoded and all(p.lang == "en" and p.family == "encoding" for p in encoded)
    assert adversarial_prompts() == adversarial_prompts("en") + adversarial_prompts("fr")
    with pytest.raises(ValueError):
        adversarial_prompts("de")
    with pytest.raises(ValueError):
        adversarial_prompts(family="unknown")


@pytest.mark.parametrize("scheme_name", ["fr", "nato"])
def test_no_prompt_carries_a_marking(prompts: list[AdversarialPrompt], scheme_name: str) -> None:
    scheme = scheme_by_name(scheme_name)
    flagged = [p.id for p in prompts if scan(p.text, scheme)]
    assert flagged == []


def test_prompts_are_clean_text(prompts: list[AdversarialPrompt]) -> None:
    for p in prompts:
        assert p.text == p.text.strip()
        assert "{" not in p.text.replace('{"role"', ""), p.id
        assert p.id.startswith(f"adv-{p.lang}-{p.family}-")
