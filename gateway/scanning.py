"""A plugin for Yelp's detect-secrets that finds this gateway's API keys in a repository.

detect-secrets loads custom plugins from a file path, so this module imports only the key format
(standard library) and detect-secrets itself: it works wherever `pip install 'gateway[scanning]'`
went, without the gateway's runtime. A candidate is reported only when its checksum holds, so a
near-miss (a mistyped, truncated or made-up key) is not. Any prefix `keys.prefix` may be is
recognised: the checksum covers the prefix, so no configuration is needed.

    detect-secrets scan --plugin "$(python -m gateway.scanning)"

`python -m gateway.scanning` prints this file's path; `--pattern PREFIX` prints the regular
expression of that gateway's keys, to register with a scanner (GitHub's partner program).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Generator, Sequence

from gateway.credentials.keyformat import PREFIX_PATTERN, key_pattern, well_formed


def main(argv: Sequence[str] | None = None) -> None:
    """The command: `--pattern` needs only the key format (it works on a plain `pip install`);
    the plugin's path is worth printing only where detect-secrets is installed."""
    parser = argparse.ArgumentParser(prog="python -m gateway.scanning",
                                     description="Print this plugin's path, for detect-secrets --plugin.")
    parser.add_argument("--pattern", metavar="PREFIX",
                        help="print the regular expression of the keys with this prefix instead")
    args = parser.parse_args(argv)
    if args.pattern is not None:
        if re.fullmatch(PREFIX_PATTERN, args.pattern) is None:
            parser.error("a prefix is 1-16 lowercase letters or digits (keys.prefix)")
        print(key_pattern(args.pattern))
        return
    try:
        import detect_secrets  # noqa: F401  (only asked whether it is there)
    except ImportError:
        parser.error("detect-secrets is not installed: pip install -e '.[scanning]' in the clone's virtualenv")
    print(__file__)


if __name__ == "__main__":  # the command, before the plugin's import of detect-secrets
    main()
    sys.exit(0)

from detect_secrets.plugins.base import RegexBasedDetector  # noqa: E402  (the plugin's base, for detect-secrets)

# Not inside a longer run of letters and digits: `xgw_live_...` or a key with more characters
# after it is not a key (the pattern itself has no anchors, as scanners' pattern fields expect).
KEY_REGEX = re.compile(f"(?<![0-9A-Za-z]){key_pattern()}(?![0-9A-Za-z])")


class GatewayKeyDetector(RegexBasedDetector):
    """This gateway's API keys (`<prefix>_live_...`, `<prefix>_test_...`) whose checksum holds."""

    secret_type = "Gateway API Key"
    denylist = (KEY_REGEX,)

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        for candidate in super().analyze_string(string):
            if well_formed(candidate):
                yield candidate
