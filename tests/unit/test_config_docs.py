"""The configuration reference and the annotated example stay true to the declarations."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config.docs import keys, render

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python -m gateway.config.docs > docs/configuration.md"


def test_reference_is_generated_from_the_declarations() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), f"stale: run {REGENERATE}"


def test_every_key_is_in_the_reference() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    found = keys()
    assert {"server.tls.cert_file", "routes[].upstream", "plans.<name>.requests_per_minute"} <= {k.path for k in found}
    missing = [k.path for k in found if f"| `{k.path}` |" not in text]
    assert missing == [], f"run {REGENERATE}"


def test_every_key_is_in_the_annotated_example() -> None:
    """config/gateway.yaml shows every key (commented out where it has no useful default), in its section."""
    blocks: dict[str, str] = {}
    current = ""
    for line in (ROOT / "config" / "gateway.yaml").read_text().splitlines():
        top = re.match(r"([a-z_]+):", line)
        if top:
            current = top.group(1)
        blocks[current] = blocks.get(current, "") + line + "\n"
    missing = []
    for key in keys():
        section = re.split(r"[.\[]", key.path)[0]
        leaf = key.path.rsplit(".", 1)[-1]
        if not re.search(rf"(^|[\s{{#,]){re.escape(leaf)}:", blocks.get(section, ""), re.MULTILINE):
            missing.append(key.path)
    assert missing == []
