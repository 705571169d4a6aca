"""A schemathesis run of a generated OpenAPI document against the running API (the admin API's, the
portal's), with the settings both use, that must find nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

# A state-dependent refusal (a tenant's gates, its key limit, a person already invited, rules between
# parameters that a JSON schema cannot state) is not counted as refusing schema-valid data.
ACCEPTED = '"2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"'


def state_dependent(operations: tuple[tuple[str, str], ...]) -> str:
    """schemathesis.toml sections for these (path, method) whose 409 and 422 depend on state."""
    return "".join(f'[[operations]]\ninclude-path = "{path}"\ninclude-method = "{method}"\n'
                   f"checks.positive_data_acceptance.expected-statuses = [{ACCEPTED}]\n\n"
                   for path, method in operations)


async def finds_nothing(document_url: str, cwd: Path, *options: str, timeout: float) -> None:
    """Every check, positive and negative data, 10 examples an operation, seed 1, one worker; `cwd`
    holds the run's schemathesis.toml, `options` are the run's own (auth, exclusions)."""
    st = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    result = await asyncio.to_thread(
        subprocess.run,
        [st, "run", document_url, *options,
         "--checks", "all", "--mode", "all", "--max-examples", "10", "--seed", "1",
         "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "10",
         "--suppress-health-check", "too_slow", "--generation-database", "none"],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " 0 passed" not in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1].lower()
