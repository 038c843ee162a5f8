"""`sam build` turns the template into deployable artifacts: four functions and an arm64 layer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.template


def sam_build(sam_bin: Path, repo_root: Path, build_dir: Path, cache_dir: Path, env: dict[str, str]) -> str:
    """Run `sam build` without a container into build_dir; return its output, failing on error."""
    command = [
        str(sam_bin),
        "build",
        "--template",
        str(repo_root / "template.yaml"),
        "--base-dir",
        str(repo_root),
        "--build-dir",
        str(build_dir),
        "--cache-dir",
        str(cache_dir),
        "--no-cached",  # samconfig.toml turns caching on; a test builds from scratch
        "--no-use-container",
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=repo_root, timeout=900, check=False
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    return output


def test_sam_build_produces_the_functions_and_an_arm64_layer(
    sam_bin: Path, repo_root: Path, sam_env: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN an empty build directory (and cache, so nothing is written into the repository)
    build_dir = tmp_path / "build"

    # WHEN `sam build` runs (it downloads the layer's requirements for arm64 from PyPI)
    output = sam_build(sam_bin, repo_root, build_dir, tmp_path / "cache", sam_env)

    # THEN it succeeds, each function has its handler, and the layer holds the changelake package
    # and its dependencies, with native code built for arm64 (aarch64)
    assert "Build Succeeded" in output
    for function_id in (
        "StreamConsumerFunction",
        "AggregatorFunction",
        "CompactionFunction",
        "DlqRedriveFunction",
    ):
        assert (build_dir / function_id / "app.py").is_file(), function_id
    layer = build_dir / "SharedLayer" / "python"
    assert (layer / "changelake" / "__init__.py").is_file()
    assert (layer / "pydantic" / "__init__.py").is_file()
    assert (layer / "aws_lambda_powertools" / "__init__.py").is_file()
    assert (layer / "fastjsonschema" / "__init__.py").is_file()
    native = list((layer / "pydantic_core").glob("*.so"))
    assert native
    assert all("aarch64" in library.name for library in native), native
    assert (build_dir / "template.yaml").is_file()
