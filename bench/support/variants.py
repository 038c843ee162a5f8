"""Running one variant in a fresh interpreter, so its peak RSS (``ru_maxrss``) is its own.

The parent calls ``run_variant("bench.rows.<row>", "<variant>", **params)``; the child is
``python -m bench.support.variants <module> <variant> <out.json> <params-json>``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.support.inputs import ROOT
from bench.support.timing import peak_rss_mb


def run_variant(module: str, variant: str, **params: Any) -> dict[str, Any]:
    """Run ``<module>.VARIANTS[variant](**params)`` in a fresh interpreter; its dict + peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "bench.support.variants",
            module,
            variant,
            str(out),
            json.dumps(params),
        ]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "shared")]))
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "changelake-bench")
        env.setdefault("POWERTOOLS_SERVICE_NAME", "bench")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if completed.returncode != 0 or not out.exists():
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-15:]
            raise RuntimeError(f"{module} {variant} failed:\n" + "\n".join(tail))
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main() -> None:
    module_name, variant, out, params = sys.argv[1:5]
    module = importlib.import_module(module_name)
    result = module.VARIANTS[variant](**json.loads(params))
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
