"""Fixtures for the template tests: the SAM CLI, the raw template and its SAM translation."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
REGION = "us-east-1"

# Runs inside an interpreter that has samtranslator (the SAM CLI's own environment when the dev
# environment lacks it). Local CodeUri/ContentUri paths become fake S3 URIs, as `sam validate` does.
_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

with open(sys.argv[1], encoding="utf-8") as handle:
    template = yaml_parse(handle.read())
for resource in template.get("Resources", {}).values():
    properties = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        if isinstance(properties.get(key), str):
            properties[key] = "s3://placeholder-bucket/" + properties[key].strip("/")
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
"""


def sam_environment() -> dict[str, str]:
    """The environment every SAM CLI call runs with: a Region, no telemetry, no credentials needed."""
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", REGION)
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"]
    env["SAM_CLI_TELEMETRY"] = "0"
    env["SAM_CLI_CONTEXT"] = "test"
    return env


def resolve_sam_bin() -> Path:
    """SAM_BIN when set (as `make test` does), else the repository's .venv-sam; never skip."""
    configured = os.environ.get("SAM_BIN")
    candidate = Path(configured) if configured else REPO_ROOT / ".venv-sam" / "bin" / "sam"
    if not candidate.is_file():
        pytest.fail(f"SAM CLI not found at {candidate} (set SAM_BIN or run `make setup`)")
    return candidate


def interpreter_with_samtranslator(sam_bin: Path) -> str:
    """This interpreter if it can import samtranslator, else the one the SAM CLI script runs on."""
    if importlib.util.find_spec("samtranslator") is not None:
        return sys.executable
    first_line = sam_bin.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    if first_line.startswith("#!") and "python" in first_line:
        return first_line[2:].strip().split()[0]
    sibling = sam_bin.parent / "python"
    if sibling.is_file():
        return str(sibling)
    pytest.fail(f"cannot find the Python interpreter of {sam_bin} to run samtranslator")


@pytest.fixture(scope="session")
def sam_bin() -> Path:
    return resolve_sam_bin()


@pytest.fixture(scope="session")
def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def translated(sam_bin: Path) -> dict[str, Any]:
    """The CloudFormation template the SAM transform produces from template.yaml."""
    completed = subprocess.run(
        [interpreter_with_samtranslator(sam_bin), "-c", _TRANSLATE, str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=sam_environment(),
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@pytest.fixture(scope="session")
def resources(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = translated["Resources"]
    return found


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sam_env() -> dict[str, str]:
    return sam_environment()
