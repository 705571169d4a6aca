"""The CLI as an operator meets it: tables with headers, `show` without Python's None, `--json` in the
admin API's shapes, `GATEWAY_CONFIG`, one-line errors with kubectl's exit codes, help on every
option, shell completion, and a second revoke that says it changed nothing."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.cli import build_parser, main
from tests.cli.test_run import gateway, write_config
from tests.conftest import ADMIN_TOKEN, STORE_BACKEND, admin_url, base_config


@pytest.fixture
def cli(tmp_path: Path, server_cert: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """`gateway ...` in this process, with GATEWAY_CONFIG naming a fresh config: (status, stdout, stderr)."""
    monkeypatch.setenv("GATEWAY_CONFIG", str(write_config(tmp_path, base_config(tmp_path, server_cert))))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = main(list(argv))
        except SystemExit as exit_:
            status = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return status, out, err

    return run


def columns(table: str) -> tuple[list[str], list[dict[str, str]]]:
    """A kubectl-style table read by its header's positions: every cell starts under its header."""
    header, *rows = table.rstrip("\n").split("\n")
    names = re.findall(r"\S+(?: \S+)*", header)
    starts = [header.index(name) for name in names]
    read = []
    for row in rows:
        for start in starts[1:]:
            assert row[start - 1] == " " and row[start] != " ", f"{row!r} is not aligned with {header!r}"
        ends = starts[1:] + [len(row)]
        read.append({n: row[s:e].strip() for n, s, e in zip(names, starts, ends, strict=True)})
    return names, read


def test_lists_are_aligned_tables_with_headers(cli: Any, tmp_path: Path) -> None:
    assert cli("tenants", "create", "--id", "acme", "--name", "Acme Inc", "--plan", "starter")[0] == 0
    status, out, err = cli("keys", "list")
    assert (status, out, err.strip()) == (0, "", "no keys found")
    made = json.loads(cli("keys", "create", "--tenant", "acme", "--name", "backend", "--json")[1])
    forever = json.loads(cli("keys", "create", "--tenant", "acme", "--name", "a much longer name", "--no-expiry",
                             "--json")[1])
    trap = json.loads(cli("keys", "create", "--tenant", "acme", "--name", "trap", "--canary", "--json")[1])
    asyncio.run(_used(tmp_path, made["id"], dt.timedelta(hours=3)))

    names, keys = columns(cli("keys", "list")[1])
    assert names == ["ID", "NAME", "TENANT", "KEY", "SCOPE", "ENV", "STATUS", "EXPIRES", "LAST USED", "EXPOSED",
                     "CANARY"]
    by_name = {k["NAME"]: k for k in keys}
    assert (by_name["trap"]["CANARY"], by_name["backend"]["CANARY"]) == ("yes", "no")
    assert by_name["backend"]["EXPOSED"] == "-"
    asyncio.run(_exposed(made["id"], dt.timedelta(minutes=5)))
    _, keys = columns(cli("keys", "list")[1])
    by_name = {k["NAME"]: k for k in keys}
    assert by_name["backend"]["EXPOSED"] == "query_string 5m ago" and by_name["trap"]["EXPOSED"] == "-"
    cli("keys", "revoke", trap["id"])
    by_name = {k["NAME"]: k for k in keys}
    assert by_name["backend"]["EXPIRES"] == "in 90d" and by_name["backend"]["LAST USED"] == "3h ago"
    assert by_name["a much longer name"]["EXPIRES"] == "never"
    assert by_name["a much longer name"]["LAST USED"] == "never"
    assert by_name["backend"]["KEY"] == made["masked"] + made["last4"]
    assert [k["ID"] for k in keys] == [trap["id"], forever["id"], made["id"]]  # newest first
    wide, _ = columns(cli("keys", "list", "-o", "wide")[1])
    assert wide[:len(names)] == names and {"USER", "RATE LIMIT", "CREATED"} <= set(wide)

    assert cli("keys", "revoke", made["id"])[0] == 0
    _, keys = columns(cli("keys", "list", "--status", "revoked")[1])
    assert [(k["ID"], k["STATUS"]) for k in keys] == [(trap["id"], "revoked"), (made["id"], "revoked")]

    names, tenants = columns(cli("tenants", "list")[1])
    assert names[:3] == ["ID", "NAME", "PLAN"]
    assert tenants == [{"ID": "acme", "NAME": "Acme Inc", "PLAN": "starter", "LIMIT": "100/min", "KEYS": "1/4",
                        "STATUS": "active", "API": "on", "WRITE": "on"}]
    cli("users", "create", "--tenant", "acme", "--name", "Ada Lovelace", "--role", "viewer")
    names, users = columns(cli("users", "list", "--tenant", "acme")[1])
    assert names == ["ID", "NAME", "EMAIL", "ROLE", "STATUS"]
    assert [(u["NAME"], u["EMAIL"], u["ROLE"]) for u in users] == [("Ada Lovelace", "-", "viewer")]


async def _used(tmp_path: Path, key_id: str, ago: dt.timedelta) -> None:
    from gateway.config import load_config
    from gateway.keystore.factory import create_store

    store = create_store(load_config(os.environ["GATEWAY_CONFIG"]).store)
    await store.open()
    try:
        await store.record_last_used({key_id: dt.datetime.now(dt.UTC) - ago})
    finally:
        await store.close()


async def _exposed(key_id: str, ago: dt.timedelta) -> None:
    """The key seen in a query string `ago` (the store's record of it, as the proxy makes it)."""
    from gateway.config import load_config
    from gateway.keystore.factory import create_store

    store = create_store(load_config(os.environ["GATEWAY_CONFIG"]).store)
    await store.open()
    at = (dt.datetime.now(dt.UTC) - ago).replace(microsecond=0)
    try:
        assert await store.expose_key(key_id, {"reason": "query_string", "at": at.isoformat().replace("+00:00", "Z")},
                                      at, revoke=False)
    finally:
        await store.close()


def test_show_describes_a_key_without_python_none(cli: Any) -> None:
    cli("tenants", "create", "--id", "acme", "--name", "Acme", "--plan", "starter")
    key = json.loads(cli("keys", "create", "--tenant", "acme", "--name", "ops", "--no-expiry", "--json")[1])
    status, out, _ = cli("keys", "show", key["id"])
    assert status == 0 and "None" not in out and "null" not in out
    fields = dict(re.match(r"([A-Za-z ]+):\s+(.*)", line).groups() for line in out.splitlines())  # type: ignore[union-attr]
    assert fields["ID"] == key["id"] and fields["Key"] == key["masked"] + key["last4"]
    assert (fields["Last used"], fields["Expires"], fields["Revoked"]) == ("never", "never", "-")
    assert fields["Created"].startswith(key["created_at"])
    starts = {line.index(value) for line, value in zip(out.splitlines(), fields.values(), strict=True)}
    assert len(starts) == 1  # the values line up
    tenant = cli("tenants", "show", "acme")[1]
    assert "None" not in tenant and re.search(r"^Active keys:\s+1 of 4$", tenant, re.M)


def test_second_revoke_says_it_changed_nothing(cli: Any, tmp_path: Path) -> None:
    cli("tenants", "create", "--id", "acme", "--name", "Acme", "--plan", "starter")
    key = json.loads(cli("keys", "create", "--tenant", "acme", "--name", "ops", "--json")[1])
    status, out, err = cli("keys", "revoke", key["id"])
    assert status == 0 and out.startswith(f"revoked {key['id']}") and not err
    status, out, err = cli("keys", "revoke", key["id"])
    assert status == 0 and out == ""  # as `gh pr close` on a closed one: the state asked for, said once
    assert f"key {key['id']} (ops) is already revoked" in err and "nothing changed" in err
    status, out, _ = cli("keys", "revoke", key["id"], "--json")
    assert status == 0 and json.loads(out)["status"] == "revoked"
    assert cli("keys", "revoke", "key_nope")[0] == 1
    if STORE_BACKEND == "sqlite":
        db = sqlite3.connect(tmp_path / "data" / "gateway.db")
        revokes = db.execute("SELECT count(*) FROM audit_log WHERE action = 'key.revoked'").fetchone()[0]
        db.close()
        assert revokes == 1


def test_config_comes_from_gateway_config_when_not_given(cli: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("tenants", "create", "--id", "acme", "--name", "Acme", "--plan", "starter")[0] == 0
    assert cli("check-config")[1].endswith("ok (0 routes)\n")
    other = tmp_path / "other.yaml"
    other.write_text("server: {port: nope}\n")
    status, _, err = cli("tenants", "list", "--config", str(other))  # the option wins over the variable
    assert status == 2 and "server.port" in err
    monkeypatch.delenv("GATEWAY_CONFIG")
    for argv in (("tenants", "list"), ("keys", "list", "--json"), ("run",), ("check-config",)):
        status, out, err = cli(*argv)
        assert (status, out) == (2, "")
        assert err == "gateway: error: no config file: pass --config FILE or set GATEWAY_CONFIG\n"


def test_errors_are_one_line_with_kubectl_exit_codes(cli: Any) -> None:
    for argv, code, says in [
        (("keys", "lst"), 2, "invalid choice: 'lst'"),
        (("keys", "create", "--name", "x"), 2, "required: --tenant"),
        (("keys", "list", "-o", "yaml"), 2, "invalid choice: 'yaml'"),
        (("keys", "show", "key_nope"), 1, "no key key_nope"),
        (("tenants", "show", "nope"), 1, "no tenant nope"),
        (("keys", "create", "--tenant", "nope", "--name", "x"), 1, "tenant"),
    ]:
        status, out, err = cli(*argv)
        assert status == code and out == "", argv
        assert err.count("\n") == 1 and says in err and "Traceback" not in err, err
        if code == 2:
            assert "--help" in err


def _options(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            for name, child in action.choices.items():
                assert name in helped, f"'{path} {name}' has no help text"
                found += _options(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_every_command_and_option_has_help_text() -> None:
    options = _options(build_parser(), "gateway")
    assert len(options) > 40
    missing = [f"{path} {action.option_strings or action.dest}" for path, action in options
               if not action.help or action.help == argparse.SUPPRESS]
    assert missing == []


def test_shell_completion_as_the_readme_registers_it(tmp_path: Path) -> None:
    """`eval "$(register-python-argcomplete gateway)"`, then what bash offers for a half-typed line."""
    bin_dir = Path(sys.executable).parent
    script = (
        'eval "$(register-python-argcomplete gateway)"\n'
        'complete_line() { COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$1";'
        ' COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _python_argcomplete gateway "${COMP_WORDS[-1]}" x;'
        ' echo "${COMPREPLY[*]}"; }\n'
        'complete_line "gateway keys l"\ncomplete_line "gateway keys create --sc"\ncomplete_line "gateway ti"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [line.strip() for line in done.stdout.splitlines()] == ["list", "--scope", ""]


async def test_json_is_what_the_admin_api_answers(tmp_path: Path, server_cert: Any, start_gateway: Any) -> None:
    gw = await start_gateway()
    config = ["--config", str(write_config(tmp_path, base_config(tmp_path, server_cert)))]

    async def cli(*argv: str) -> Any:
        done = await asyncio.to_thread(gateway, *argv, *config, "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    await cli("tenants", "create", "--id", "acme", "--name", "Acme", "--plan", "starter")
    await cli("users", "create", "--tenant", "acme", "--name", "Ada", "--role", "admin")
    made = await cli("keys", "create", "--tenant", "acme", "--name", "one")
    await cli("keys", "create", "--tenant", "acme", "--name", "two", "--scope", "read_only")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as session:
        async def api(path: str) -> Any:
            async with session.get(admin_url(gw, path)) as resp:
                assert resp.status == 200
                return await resp.json()

        for argv, path in [(("tenants", "list"), "/admin/tenants"), (("keys", "list"), "/admin/keys"),
                           (("users", "list", "--tenant", "acme"), "/admin/tenants/acme/users")]:
            shown, answered = await cli(*argv), await api(path)
            assert shown["data"] == answered["data"], argv
            assert shown["meta"]["total"] == answered["meta"]["total"] and set(shown["meta"]) == set(answered["meta"])
        assert await cli("keys", "show", made["id"]) == await api(f"/admin/keys/{made['id']}")
        assert await cli("tenants", "show", "acme") == await api("/admin/tenants/acme")


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path, server_cert: Any) -> None:
    """`gateway tenants list | head -1`: the reader gone before the answer is written."""
    config = write_config(tmp_path, base_config(tmp_path, server_cert))
    gateway("tenants", "create", "--config", str(config), "--id", "acme", "--name", "Acme", "--plan", "starter",
            cwd=tmp_path)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "gateway", "tenants", "list", "--config", str(config)],
                              stdout=write, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == ""
