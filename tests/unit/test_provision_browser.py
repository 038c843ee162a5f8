"""scripts/provision-browser: `make setup` provisions the status page test's browser, or says what to install.

`id` and `apt-get` are fakes on PATH, so the test runs the real script without being root or installing
anything.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "provision-browser"


def fake_command(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run_script(
    tmp_path: Path, *, uid: int, apt_installs: bool
) -> tuple[subprocess.CompletedProcess[str], Path]:
    fakes = tmp_path / "bin"
    fakes.mkdir()
    chromium = tmp_path / "usr-bin" / "chromium"
    calls = tmp_path / "apt-get.calls"
    fake_command(fakes, "id", f"echo {uid}")
    install = f'mkdir -p "{chromium.parent}"; printf "#!/bin/sh\\n" > "{chromium}"; chmod +x "{chromium}"'
    fake_command(fakes, "apt-get", f'echo "$*" >> "{calls}"\n' + (install if apt_installs else "true"))
    environ = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}", "CHROMIUM": str(chromium)}
    result = subprocess.run([str(SCRIPT)], env=environ, capture_output=True, text=True, check=False)
    return result, calls


def test_a_machine_with_chromium_installs_nothing(tmp_path: Path) -> None:
    # GIVEN chromium already where the test looks for it
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    environ = {**os.environ, "CHROMIUM": str(chromium), "PATH": f"/nonexistent:{os.environ['PATH']}"}

    # WHEN the script runs
    result = subprocess.run([str(SCRIPT)], env=environ, capture_output=True, text=True, check=False)

    # THEN it succeeds quietly
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_root_on_debian_gets_chromium_from_apt(tmp_path: Path) -> None:
    # GIVEN a root shell on a Debian machine without chromium
    # WHEN the script runs
    result, calls = run_script(tmp_path, uid=0, apt_installs=True)

    # THEN apt-get installed Debian's chromium package and the script succeeded
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == ["update -qq", "install -y -qq chromium"]


def test_an_install_that_puts_chromium_elsewhere_is_an_error(tmp_path: Path) -> None:
    # GIVEN root, but apt-get's chromium does not end up at CHROMIUM
    # WHEN the script runs
    result, _calls = run_script(tmp_path, uid=0, apt_installs=False)

    # THEN it fails, saying to set CHROMIUM
    assert result.returncode == 1
    assert "set CHROMIUM=" in result.stderr


def test_without_root_it_stops_with_one_line_saying_what_to_install(tmp_path: Path) -> None:
    # GIVEN a user who is not root, on a machine without chromium
    # WHEN the script runs
    result, calls = run_script(tmp_path, uid=1000, apt_installs=True)

    # THEN it installs nothing and says, on one line, what to install
    assert result.returncode == 1
    assert not calls.exists()
    assert result.stderr.count("\n") == 1
    assert "apt-get install chromium" in result.stderr
