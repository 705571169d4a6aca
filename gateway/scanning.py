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
from collections.abc import Generator, Sequence

from detect_secrets.plugins.base import RegexBasedDetector

from gateway.credentials.keyformat import PREFIX_PATTERN, key_pattern, well_formed

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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.scanning",
                                     description="Print this plugin's path, for detect-secrets --plugin.")
    parser.add_argument("--pattern", metavar="PREFIX",
                        help="print the regular expression of the keys with this prefix instead")
    args = parser.parse_args(argv)
    if args.pattern is not None and re.fullmatch(PREFIX_PATTERN, args.pattern) is None:
        parser.error("a prefix is 1-16 lowercase letters or digits (keys.prefix)")
    print(key_pattern(args.pattern) if args.pattern is not None else __file__)


if __name__ == "__main__":
    main()
