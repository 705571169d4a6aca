# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: `gateway` completes in bash and zsh)
"""The `gateway` command: run, check-config, demo, and bootstrap operations on the store.

Every failure an operator can cause (bad config, taken port, missing certificate, unreachable
store, a mistyped option) ends in one line on stderr and exit status 2, never a traceback.
`--config` may be left out where `GATEWAY_CONFIG` names the file. Shell completion:
`eval "$(register-python-argcomplete gateway)"`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from gateway import __version__
from gateway.admin.auth import AdminTokenError
from gateway.cli_certs import add_parser as add_certs_parser
from gateway.config import Config, ConfigError, check_file, load_config
from gateway.credentials.tokens import SigningKeyError
from gateway.keystore.base import StoreError
from gateway.listeners import ListenError
from gateway.tls import TLSError

log = logging.getLogger("gateway")

EXIT_USAGE = 2
STARTUP_ERRORS: tuple[type[Exception], ...] = (
    ListenError,
    TLSError,
    StoreError,
    SigningKeyError,
    AdminTokenError,
)


CONFIG_ENV = "GATEWAY_CONFIG"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a pointer to --help), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class VersionAction(argparse.Action):
    """`--version`: the version and which build runs, "compiled: N modules" or "pure Python" (gateway/build.py).

    Worked out only when asked: it imports the hot modules to see where each was loaded from."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[object] | None, option_string: str | None = None) -> None:
        from gateway.build import describe

        print(f"gateway {__version__} ({describe()})")  # on stdout, as argparse's own version action
        parser.exit(0)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help=f"the YAML config file (default: ${CONFIG_ENV})")


def config_from_env(args: argparse.Namespace) -> str | None:
    """`--config`, else `$GATEWAY_CONFIG`; None (after one line on stderr) when neither is set."""
    if args.config is None:
        args.config = os.environ.get(CONFIG_ENV) or None
    if args.config is None:
        fail(f"no config file: pass --config FILE or set {CONFIG_ENV}")
    return str(args.config) if args.config is not None else None


def fail(message: str) -> int:
    print(f"gateway: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def load(path: str) -> Config | None:
    """The config, or None after printing one line per problem."""
    try:
        return load_config(path)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return None


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(cfg: Config) -> int:
    from gateway.app import Gateway

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # SIGHUP before the reload handler below is installed (a supervisor passing one on while this
    # worker starts) must not end the process, as SIGHUP's default action would
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    gateway = Gateway(cfg)
    await gateway.start()
    # Everything built at startup (route tables, modules, TLS and store objects) lives as long as
    # the process: out of the collector's sight, full collections stop re-walking it (open-loop
    # p99 4.4-15.6 -> 4.0 ms at 4,000 req/s, bench/openloop.py).
    gc.freeze()
    loop.add_signal_handler(signal.SIGHUP, gateway.reloader.reload_logged)
    log.info("gateway started", extra=gateway.describe())
    await stop.wait()
    log.info("gateway stopping: draining in-flight requests")
    await gateway.stop()
    log.info("gateway stopped")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    if cfg is None:
        return EXIT_USAGE
    if cfg.server.workers > 1:
        from gateway.workers import run_workers

        return run_workers(args.config, cfg.server.workers)
    return run_one(args.config, cfg)


def run_one(config_path: str, cfg: Config | None = None) -> int:
    """One gateway process in the foreground (a worker, or the whole gateway)."""
    from gateway.observability.logs import setup_logging

    cfg = cfg or load(config_path)
    if cfg is None:
        return EXIT_USAGE
    setup_logging(cfg.logging.level)
    install_uvloop()
    try:
        return asyncio.run(serve(cfg))
    except STARTUP_ERRORS as exc:
        return fail(str(exc))


def cmd_check_config(args: argparse.Namespace) -> int:
    """The file's shape; a value naming an unset variable is noted, not refused (unless --require-env)."""
    try:
        checked = check_file(args.config) if not args.require_env else None
        cfg = checked.config if checked is not None else load_config(args.config)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.config}: ok ({len(cfg.routes)} route{'' if len(cfg.routes) == 1 else 's'})")
    for where, names in (checked.unresolved.items() if checked is not None else ()):
        print(f"{args.config}: {where}: not checked: uses {', '.join(names)}, not set here")
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    from gateway.cli_accounts import run_action

    cfg = load(args.config)
    if cfg is None:
        return EXIT_USAGE
    return run_action(cfg, args, args.action_fn)


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo
    from gateway.observability.logs import setup_logging

    setup_logging("warning")
    install_uvloop()
    try:
        return asyncio.run(run_demo(args))
    except STARTUP_ERRORS as exc:
        return fail(str(exc))


def cmd_echo(args: argparse.Namespace) -> int:
    """An upstream that answers with what it received: for examples, compose files and smoke tests."""
    from aiohttp import web

    from gateway.demo import echo_app

    install_uvloop()
    web.run_app(echo_app(), host=args.host, port=args.port, access_log=None,
                print=lambda _: print(f"echo upstream listening on http://{args.host}:{args.port}",
                                      file=sys.stderr, flush=True))
    return 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from gateway.store_migrate import counted, migrate

    def progress(line: str) -> None:
        print(f"copied {line}", file=sys.stderr, flush=True)

    try:
        copied = asyncio.run(migrate(args.source, args.target, progress))
    except STARTUP_ERRORS as exc:
        return fail(str(exc))
    print("migrated " + ", ".join((
        counted(copied.tenants, "tenant"), counted(copied.users, "user"), counted(copied.keys, "key"),
        counted(copied.audit, "audit entry", "audit entries"), counted(copied.calls, "call log row"),
        counted(copied.usage, "usage row"), counted(copied.webhooks, "webhook endpoint"))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gateway", description="An API authentication gateway: API keys, tokens, rate limits "
                    "and an audit trail in front of your APIs.", epilog="Shell completion: eval \"$(register-python-"
                    "argcomplete gateway)\". Exit status: 0 done, 1 refused (not found, a rule), 2 usage or setup.")
    parser.add_argument("--version", action=VersionAction,
                        help="print the version and which build runs (compiled or pure Python), and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="serve until SIGINT/SIGTERM, then drain and exit 0; SIGHUP reloads routes and plans")
    add_config_option(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file (every problem, one line each)")
    add_config_option(check)
    check.add_argument("--require-env", action="store_true",
                       help="refuse ${NAME} references to unset variables (by default such a value is "
                            "noted and left unchecked, so the check runs where secrets are absent)")
    check.set_defaults(func=cmd_check_config)

    demo = sub.add_parser("demo", help="run a self-contained demo: TLS, store, echo upstream, a key")
    demo.add_argument("--dir", default="./gateway-demo", help="data directory (default ./gateway-demo)")
    demo.add_argument("--port", type=int, default=8443, help="HTTPS proxy port (default 8443)")
    demo.add_argument("--admin-port", type=int, default=9090, help="admin listener port (default 9090)")
    demo.add_argument("--upstream-port", type=int, default=9000, help="echo upstream port (default 9000)")
    demo.set_defaults(func=cmd_demo)

    echo = sub.add_parser("echo", help="run the demo's echo upstream on its own")
    echo.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    echo.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    echo.set_defaults(func=cmd_echo)
    add_certs_parser(sub)

    store = sub.add_parser("store", help="operate on key stores").add_subparsers(
        dest="store_command", required=True, metavar="ACTION")
    move = store.add_parser("migrate", help="copy everything from one store into an empty one")
    move.add_argument("--from", dest="source", required=True, metavar="URL",
                      help="the store to copy: sqlite:///PATH or postgresql://...")
    move.add_argument("--to", dest="target", required=True, metavar="URL",
                      help="an empty store to fill: sqlite:///PATH or postgresql://...")
    move.set_defaults(func=cmd_store_migrate)

    from gateway.cli_accounts import add_parsers
    from gateway.cli_output import add_output_options

    common = Parser(add_help=False)
    add_config_option(common)
    add_output_options(common)
    add_parsers(sub, common)
    for name in ("tenants", "users", "invitations", "keys"):
        sub.choices[name].set_defaults(func=cmd_accounts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions: answer and exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if "config" in args and config_from_env(args) is None:
        return EXIT_USAGE
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # here, where a closed pipe is caught, rather than at exit
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gateway keys list | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
