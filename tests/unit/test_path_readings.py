"""The readings of a path exactly (`path_readings`): which spellings some upstream may route on.
`RouteTable.match` refuses a path when one names a route of another policy (tests/unit/test_routing.py)."""

from __future__ import annotations

import re

import pytest

from gateway.errors import BadRequest
from gateway.path_readings import (
    MAX_STRUCTURAL,
    _fold_char,
    decoded_once_more,
    has_non_ascii,
    readings,
    unicode_variants,
)


@pytest.mark.parametrize("path, literal_prefix, folded, expected", [
    # %2F and %3B decoded, ;params dropped, in every combination
    ("/a%2Fb;p%3Bq/c", 0, False, ["/a%2Fb/c", "/a%2Fb;p%3Bq/c", "/a%2Fb;p;q/c", "/a/b/c", "/a/b;p%3Bq/c", "/a/b;p;q/c"]),
    ("/a;b;c/d;e", 0, False, ["/a/d", "/a;b;c/d;e"]),
    # cut at the first decoded ? or #
    ("/x/v%3Fa=1/b%23c", 0, False, ["/x/v", "/x/v%3Fa=1/b%23c"]),
    ("/a%3Fb/c%3Fd", 0, False, ["/a", "/a%3Fb/c%3Fd"]),
    ("/a%23b/c%3Fd", 0, False, ["/a", "/a%23b/c%3Fd"]),
    ("/a%23b/c%23d", 0, False, ["/a", "/a%23b/c%23d"]),
    ("/a;x%3F/b%3F", 0, False, ["/a", "/a/b", "/a/b%3F", "/a;x", "/a;x%3F/b%3F"]),
    # a proxy in between decodes once more
    ("/p%2520q/r%253Fs", 0, False, ["/p q/r", "/p q/r%3Fs", "/p%2520q/r%253Fs"]),
    ("/x%253B/y%252Fz", 0, False, ["/x%253B/y%252Fz", "/x%3B/y%2Fz", "/x%3B/y/z", "/x/y%2Fz", "/x/y/z", "/x;/y%2Fz",
                                   "/x;/y/z"]),
    ("/a%5C..%5Cb", 0, False, ["/b"]),  # `\` is `/` to IIS
    ("/a/x%3Ay%24z%2E", 1, False, ["/a/x", "/a/x:y$z."]),
    # suffixes, trailing spaces and dots, NTFS streams: after the route's own segments
    ("/a/boX%20/x%2509", 1, False, ["/a/boX /x%2509", "/a/boX /x\t", "/a/boX/x%2509", "/a/boX/x\t"]),
    ("/a/boX.%20", 1, False, ["/a/boX", "/a/boX. "]),
    ("/a/b.json/c.xml", 1, False, ["/a/b.json/c", "/a/b.json/c.xml", "/a/b/c", "/a/b/c.xml"]),
    ("/s/visitors%20.%20::$DATA", 0, False, ["/s/visitors", "/s/visitors . ::$DATA"]),
    ("/a/..%20/b", 1, False, ["/a/.. /b", "/b"]),
    ("/.well-known/x.y", 0, False, ["/.well-known/x", "/.well-known/x.y"]),
    ("/v1/things:batch/x", 2, False, ["/v1/things:batch/x"]),
    ("/v1/things:batch/x", 1, False, ["/v1/things/x", "/v1/things:batch/x"]),
    ("/a/:x/..y./.x%20", 1, False, ["/a/..y./.x ", "/a/..y/.x", "/a/.x", "/a/:x/..y./.x", "/a/:x/..y./.x ",
                                    "/a/:x/..y/.x ", "/a/:x/.x "]),
    # Unicode: folded and NFKC-normalised
    ("/api/vi%C5%BFitors", 0, True, ["/api/vi%C5%BFitors", "/api/visitors"]),
    ("/k%E2%84%AA/%EF%BC%8F/%EF%AC%81", 0, True, ["/k%E2%84%AA/%EF%BC%8F/%EF%AC%81", "/kK/fi", "/kk/fi"]),
    ("/%25C5%25BF", 0, True, ["/%25C5%25BF", "/%25c5%25bf", "/%C5%BF", "/s"]),
], ids=lambda value: re.sub(r"[^A-Za-z0-9%/._-]", "_", str(value)))  # plain node ids for mutmut
def test_the_readings_of_a_path(path: str, literal_prefix: int, folded: bool, expected: list[str]) -> None:
    assert readings(path, literal_prefix) == (set(expected), folded)


def test_each_segment_is_cut_alone_up_to_eight_then_only_all_at_once() -> None:
    eight = "/" + "/".join(f"s{i}.x" for i in range(8))
    assert len(readings(eight, 0)[0]) == 1 + 1 + 8  # the path, all cut, each cut alone
    nine = "/" + "/".join(f"s{i}.x" for i in range(9))
    assert readings(nine, 0)[0] == {nine, "/" + "/".join(f"s{i}" for i in range(9))}


def test_too_many_separators_or_too_much_work_is_refused() -> None:
    for path in ("/a" + ";" * (MAX_STRUCTURAL + 1), "/a" + "%2F" * (MAX_STRUCTURAL + 1), "/a" + "%25" * (MAX_STRUCTURAL + 1)):
        with pytest.raises(BadRequest, match="^too many encoded separators or path parameters$"):
            readings(path, 0)
    readings("/a" + ";" * MAX_STRUCTURAL, 0)
    with pytest.raises(BadRequest, match="^too many ways to read this path"):
        readings("/x%2F%3B;a%3F%25/" + "/".join(f"s{i}.x%20" for i in range(40)), 0)
    assert len(readings("/" + "/".join(f"s{i}.x" for i in range(300)), 0)[0]) == 2


def test_what_counts_as_encoded_non_ascii() -> None:
    assert has_non_ascii("/a%C5%BF") and has_non_ascii("/%80")
    assert not has_non_ascii("/a%2F") and not has_non_ascii("/a") and not has_non_ascii("/a%7F%20")


def test_unicode_letters_as_case_insensitive_matchers_read_them() -> None:
    assert [_fold_char(c) for c in "ſıİKßﬁAé"] == ["s", "i", "i", "k", "ss", "fi", "a", "é"]
    assert unicode_variants("/vi%C5%BFit%C4%B0%EF%BD%96") == {"/visit%C4%B0v", "/visiti%CC%87v", "/visitiv"}
    assert unicode_variants("/%EF%BC%BCa") == {"//a"}


def test_a_proxy_decoding_once_more() -> None:
    assert decoded_once_more("/a%252E%2573%252F%2541") == "/a.s%2FA"
    assert decoded_once_more("/a%2F") == "/a%2F"
    assert decoded_once_more("/a%25zz") == "/a%zz"
