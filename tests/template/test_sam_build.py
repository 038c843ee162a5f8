"""`sam build` turns the template into deployable artifacts: five functions and an arm64 layer for
python3.13, holding the versions the tests ran, within Lambda's size limit."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.template.conftest import FUNCTIONS
from tests.template.pins import DEV_LOCK, installed, pinned

pytestmark = pytest.mark.template

#: Lambda's limit on a function's unzipped code and layers together ("250 MB": 262,144,000 bytes).
UNZIPPED_LIMIT_BYTES = 262_144_000
#: A wheel tag Lambda's python3.13 on arm64 can load: pure Python, or built for aarch64 Linux and
#: either CPython 3.13 or the stable ABI of an earlier CPython 3.
_LAMBDA_TAG = re.compile(r"^py3-none-any$|^(cp313-cp313|cp3\d+-abi3)-manylinux_2_\d+_aarch64$")


@dataclass(frozen=True)
class Build:
    directory: Path
    output: str

    @property
    def layer(self) -> Path:
        return self.directory / "SharedLayer" / "python"


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


@pytest.fixture(scope="module")
def build(
    sam_bin: Path, repo_root: Path, sam_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Build:
    """One `sam build` into an empty directory (and cache, so nothing is written into the repository);
    it downloads the layer's wheels for python3.13 on arm64 from PyPI."""
    scratch = tmp_path_factory.mktemp("sam")
    output = sam_build(sam_bin, repo_root, scratch / "build", scratch / "cache", sam_env)
    return Build(scratch / "build", output)


def unzipped_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def test_sam_build_produces_the_functions_and_an_arm64_layer(build: Build) -> None:
    # GIVEN the build

    # WHEN its artifacts are listed
    wheel_tags = {
        wheel.parent.name: [
            line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag:")
        ]
        for wheel in build.layer.glob("*.dist-info/WHEEL")
    }

    # THEN it succeeded, each function has its handler, the layer holds the changelake package, the
    # schemas folder and its libraries, and every wheel in it loads on python3.13 on arm64 (aarch64)
    assert "Build Succeeded" in build.output
    for function_id in FUNCTIONS:
        assert (build.directory / function_id / "app.py").is_file(), function_id
    assert (build.layer / "changelake" / "__init__.py").is_file()
    assert (build.layer / "schemas" / "README.md").is_file()
    for package in (
        "pydantic",
        "pydantic_core",
        "aws_lambda_powertools",
        "fastjsonschema",
        "duckdb",
        "boto3",
    ):
        assert (build.layer / package / "__init__.py").is_file(), package
    assert wheel_tags
    unloadable = {wheel: tags for wheel, tags in wheel_tags.items() if not any(map(_LAMBDA_TAG.match, tags))}
    assert unloadable == {}
    assert list((build.layer / "pydantic_core").glob("*.cpython-313-aarch64-linux-gnu.so"))
    assert (build.directory / "template.yaml").is_file()


def test_the_layer_holds_the_versions_the_tests_ran(build: Build) -> None:
    # GIVEN the distributions installed in the built layer, and the dev set's pins
    shipped, dev = installed(build.layer), pinned(DEV_LOCK)

    # WHEN each is looked up in the dev set
    differences = {
        name: (version, dev.get(name)) for name, version in shipped.items() if dev.get(name) != version
    }

    # THEN every one is there at the same version: what runs in Lambda is what the tests ran
    assert "duckdb" in shipped
    assert "boto3" in shipped
    assert differences == {}, "(layer, dev set) versions"


def test_the_layer_and_the_largest_function_fit_lambdas_unzipped_limit(build: Build) -> None:
    # GIVEN the built layer and functions

    # WHEN their unzipped sizes are measured
    layer = unzipped_bytes(build.layer.parent)
    largest_function = max(unzipped_bytes(build.directory / function_id) for function_id in FUNCTIONS)

    # THEN the layer plus the largest function stays inside the limit (docs/deploy.md quotes the figure)
    assert layer + largest_function < UNZIPPED_LIMIT_BYTES, f"{layer:,} + {largest_function:,} bytes"
