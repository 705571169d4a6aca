"""The config watcher's looks, one at a time (no timer): what counts as a change, the debounce,
a broken file refused once, and the ways files are replaced (rename, in place, a ConfigMap's link)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from gateway.config import Config, load_config
from gateway.config_watch import ConfigWatcher
from gateway.reload import Reloader


def text(*paths: str, **route: Any) -> str:
    return yaml.safe_dump({"server": {"tls": {"self_signed": True}},
                           "routes": [{"name": f"r{i}", "path": p, "upstream": "https://127.0.0.1:1", **route}
                                      for i, p in enumerate(paths)]})


class Running:
    """A gateway's side of a reload: the configuration it runs, swapped by `apply`."""

    def __init__(self, path: Path) -> None:
        self.cfg: Config = load_config(path)
        self.applied = 0
        self.watcher = ConfigWatcher(Reloader(lambda: self.cfg, self.apply), lambda: self.cfg, 1.0)

    def apply(self, cfg: Config) -> None:
        self.cfg = cfg
        self.applied += 1

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.cfg.routes]


def replace(path: Path, content: str) -> None:
    """As editors and `kubectl cp` do: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)


def test_a_change_is_applied_once_it_has_settled(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text("/old"))
    gw = Running(path)
    assert gw.watcher.look() is False  # nothing changed
    replace(path, text("/new"))
    assert gw.watcher.look() is False and gw.paths == ["/old"]  # seen; one more look first
    assert gw.watcher.look() is True and gw.paths == ["/new"]
    assert gw.watcher.look() is False and gw.applied == 1


def test_a_file_written_in_place_is_not_loaded_half_written(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text("/old"))
    gw = Running(path)
    whole = text("/a", "/b")
    with path.open("w") as fh:
        fh.write(whole[: whole.index("- name: r1")])  # a valid file by itself: the first route only
        fh.flush()
        assert gw.watcher.look() is False
        fh.write(whole[whole.index("- name: r1"):])
    assert gw.watcher.look() is False  # it changed again since the last look: not settled
    assert gw.watcher.look() is True
    assert gw.paths == ["/a", "/b"] and gw.applied == 1


def test_a_broken_file_is_refused_once_and_the_next_change_applies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text("/old"))
    gw = Running(path)
    caplog.set_level(logging.INFO, "gateway.reload")
    path.write_text("routes: [unclosed")
    assert (gw.watcher.look(), gw.watcher.look()) == (False, True)
    assert gw.paths == ["/old"] and gw.applied == 0
    refusals = [r for r in caplog.records if r.getMessage().startswith("config reload refused")]
    assert len(refusals) == 1 and "invalid YAML" in str(refusals[0].__dict__["problems"])
    assert [gw.watcher.look() for _ in range(3)] == [False, False, False]  # not tried again
    path.write_text(text("/fixed"))
    assert (gw.watcher.look(), gw.watcher.look()) == (False, True)
    assert gw.paths == ["/fixed"]


def test_a_configmap_volume_swapping_its_data_link_is_seen(tmp_path: Path) -> None:
    """Kubernetes: `gateway.yaml -> ..data/gateway.yaml`, `..data -> ..<timestamp>/`; an update
    writes a new directory and renames a new `..data` link over the old one."""
    volume = tmp_path / "config"
    (volume / "..v1").mkdir(parents=True)
    (volume / "..v1" / "gateway.yaml").write_text(text("/old"))
    (volume / "..data").symlink_to("..v1")
    (volume / "gateway.yaml").symlink_to("..data/gateway.yaml")
    gw = Running(volume / "gateway.yaml")
    (volume / "..v2").mkdir()
    (volume / "..v2" / "gateway.yaml").write_text(text("/old"))  # the same text: a new file all the same
    (volume / "..data_tmp").symlink_to("..v2")
    os.replace(volume / "..data_tmp", volume / "..data")
    assert (gw.watcher.look(), gw.watcher.look()) == (False, True)
    (volume / "..v3").mkdir()
    (volume / "..v3" / "gateway.yaml").write_text(text("/new"))
    (volume / "..data_tmp").symlink_to("..v3")
    os.replace(volume / "..data_tmp", volume / "..data")
    assert (gw.watcher.look(), gw.watcher.look()) == (False, True)
    assert gw.paths == ["/new"]


def test_the_upstream_tls_files_it_names_are_watched_too(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    path = tmp_path / "gateway.yaml"
    path.write_text(text("/api", upstream_tls={"ca_file": str(ca_file)}))
    gw = Running(path)
    before = gw.cfg
    trustme.CA().cert_pem.write_to_path(str(ca_file))  # a rotated CA, the config file untouched
    assert (gw.watcher.look(), gw.watcher.look()) == (False, True)
    assert gw.applied == 1 and dataclasses.replace(gw.cfg) == before  # the same settings, read again
