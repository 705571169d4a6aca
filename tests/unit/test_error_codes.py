"""The README's table of error codes and gateway/errors.py say the same: every code the gateway
can answer is documented with its status, and nothing documented is missing from the code."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import errors

README = Path(__file__).resolve().parents[2] / "README.md"


def documented() -> set[tuple[int, str]]:
    return {(int(status), code) for status, code in re.findall(r"^\| (\d{3}) \| `([A-Z_]+)` \|", README.read_text(), re.M)}


def declared() -> set[tuple[int, str]]:
    found = set()
    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, errors.GatewayError) and not name.startswith("_"):
            found.add((value.status, value.code))
    return found


def test_every_error_code_is_in_the_readme_with_its_status() -> None:
    headers_too_large = (errors.HeadersTooLarge.status, errors.HeadersTooLarge.code)  # 431 BAD_REQUEST, said in its row
    assert declared() - {headers_too_large} == documented()
