"""The published key pattern: it matches every generated key, nothing else, and the README states
the one in the code (the same the detect-secrets plugin uses)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateway.credentials.keyformat import ALPHABET, generate_key, key_pattern, well_formed

README = Path(__file__).resolve().parents[2] / "README.md"
prefixes = st.from_regex(r"[a-z0-9]{1,16}", fullmatch=True)


@given(prefix=prefixes, env=st.sampled_from(["live", "test"]))
def test_the_pattern_matches_generated_keys_of_both_environments(prefix: str, env: str) -> None:
    key = generate_key(prefix, env)
    assert re.fullmatch(key_pattern(prefix), key)
    assert re.fullmatch(key_pattern(), key)  # any prefix
    assert well_formed(key)


def test_the_pattern_refuses_other_strings() -> None:
    key = generate_key("gw", "live")
    pattern = re.compile(key_pattern("gw"))
    others = [
        key[:-1],                                  # one short
        key + "A",                                 # one long
        key.replace("_live_", "_prod_"),           # no such environment
        key.replace("gw_", "gx_"),                 # another gateway's prefix
        key[:10] + "-" + key[11:],                 # outside the alphabet
        "gw_live_" + "é" * 38,
        "sk_live_" + key[8:],                      # Stripe's shape
        "ghp_" + "a" * 36,
    ]
    for other in others:
        assert not pattern.fullmatch(other), other
    assert re.fullmatch(key_pattern("a.b"), "a.b_live_" + "x" * 38) and not re.fullmatch(
        key_pattern("a.b"), "aXb_live_" + "x" * 38)  # a prefix is matched literally


def test_well_formed_needs_the_checksum() -> None:
    key = generate_key("acme", "test")
    last = ALPHABET[(ALPHABET.index(key[-1]) + 1) % len(ALPHABET)]
    assert well_formed(key)
    assert not well_formed(key[:-1] + last)
    assert not well_formed("Acme" + key[4:]) and not well_formed("_" + key) and not well_formed("")


def test_the_readme_publishes_the_pattern_of_the_code() -> None:
    text = README.read_text()
    assert f"`{key_pattern('gw')}`" in text
