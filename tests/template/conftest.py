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

# changelake_local/sam_translate.py runs inside an interpreter that has samtranslator and the SAM
# CLI (whose processor expands AWS::LanguageExtensions), as the local deploy does.
_TRANSLATE = REPO_ROOT / "changelake_local" / "sam_translate.py"
#: The artifacts bucket the translation's CodeUri/ContentUri point at, as `sam package` would.
CODE_BUCKET = "placeholder-bucket"


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
    """This interpreter if it can import samtranslator and the SAM CLI, else the one the SAM CLI
    script runs on."""
    if all(importlib.util.find_spec(name) is not None for name in ("samtranslator", "samcli")):
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


def translate(sam_bin: Path, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation template the language extensions and the SAM transform produce from
    template.yaml with these parameter values (defaults for the others), and under ``"code"`` each
    function's and layer's local folder."""
    completed = subprocess.run(
        [
            interpreter_with_samtranslator(sam_bin),
            str(_TRANSLATE),
            str(TEMPLATE),
            CODE_BUCKET,
            json.dumps(parameters or {}),
        ],
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
def translation(sam_bin: Path) -> dict[str, Any]:
    return translate(sam_bin)


@pytest.fixture(scope="session")
def translated(translation: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template of template.yaml with its defaults: the stack's own ChangeTable."""
    template: dict[str, Any] = translation["template"]
    return template


@pytest.fixture(scope="session")
def code_folders(translation: dict[str, Any]) -> dict[str, str]:
    """Logical ID -> the local folder of its CodeUri or ContentUri."""
    folders: dict[str, str] = translation["code"]
    return folders


#: The stack's functions, by logical ID.
FUNCTIONS = (
    "StreamConsumerFunction",
    "AggregatorFunction",
    "CompactionFunction",
    "SnapshotFunction",
    "DlqRedriveFunction",
)

#: Two tables the user already has, attached by SourceStreamArns.
ATTACHED_STREAMS = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-20T08:00:00.000",
    "arn:aws:dynamodb:us-east-1:123456789012:table/customer-profiles/stream/2026-11-21T09:30:00.000",
)


@pytest.fixture(scope="session")
def translated_attached(sam_bin: Path) -> dict[str, Any]:
    """The CloudFormation template with SourceStreamArns naming two existing tables' streams."""
    template: dict[str, Any] = translate(sam_bin, {"SourceStreamArns": ",".join(ATTACHED_STREAMS)})[
        "template"
    ]
    return template


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
