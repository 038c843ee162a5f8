"""The pinned versions of a requirements file or of an installed tree, by normalised project name."""

from __future__ import annotations

import re
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the tests run against (`make lock`).
DEV_LOCK = ROOT / "requirements-dev.txt"
#: What the SharedLayer ships (`make lock`, shared/Makefile).
LAYER_LOCK = ROOT / "shared" / "requirements.txt"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def normalise(name: str) -> str:
    """A project name as PEP 503 compares them: `Typing_Extensions` is `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: Path) -> dict[str, str]:
    """Every `name==version` line of a compiled requirements file (editable lines have no version)."""
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def installed(site_packages: Path) -> dict[str, str]:
    """The name and version of every distribution installed in a folder (its *.dist-info/METADATA)."""
    found = {}
    for metadata in site_packages.glob("*.dist-info/METADATA"):
        headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8"))
        found[normalise(headers["Name"])] = headers["Version"]
    return found
