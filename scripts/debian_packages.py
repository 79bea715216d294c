"""Debian packages as data sources for the extraction scripts: download (or reuse) a package's .deb and unpack it.

Standard library only; needs ``dpkg-deb``, and ``apt-get`` when no folder of .deb files is given.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from pathlib import Path


def find_deb(debs_dir: Path, package: str) -> Path:
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    if len(found) != 1:
        sys.exit(f"expected exactly one {package}_*.deb in {debs_dir}, found {[p.name for p in found]}")
    return found[0]


def deb_version(deb: Path) -> str:
    """From name_version_arch.deb, with ':' in the version URL-quoted as %3a by apt-get download."""
    return urllib.parse.unquote(deb.name.split("_")[1])


def unpack(packages: list[str], debs_dir: Path | None, work: Path) -> dict[str, tuple[Path, Path]]:
    """{package: (its .deb, the folder it is unpacked into)}; downloads into `work` when `debs_dir` is None."""
    if debs_dir is None:
        debs_dir = work / "debs"
        debs_dir.mkdir()
        print(f"apt-get download {' '.join(packages)}", flush=True)
        subprocess.run(["apt-get", "download", *packages], cwd=debs_dir, check=True)
    unpacked = {}
    for package in packages:
        deb, root = find_deb(debs_dir, package), work / package
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        unpacked[package] = (deb, root)
    return unpacked
