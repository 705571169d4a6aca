"""The annotated key types the sections are declared with: each carries the check (`fields.py`)
the parser runs and the phrase its error and the reference print."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict

from gateway.config.fields import BOOL, TEXT, Int, Number

# Every section: unknown keys are errors, and the docstring under a key is its help text.
SECTION = ConfigDict(extra="forbid", use_attribute_docstrings=True)

Flag = Annotated[bool, BOOL]
Text = Annotated[str, TEXT]
Port = Annotated[int, Int(0, 65535)]
Seconds = Annotated[float, Number()]
Count = Annotated[int, Int(1)]
