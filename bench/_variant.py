"""Child process entry: ``python -m bench._variant <module> <variant> <out.json> <params-json>``."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from bench import peak_rss_mb


def main() -> None:
    module_name, variant, out, params = sys.argv[1:5]
    module = importlib.import_module(f"bench.{module_name}")
    result = module.VARIANTS[variant](**json.loads(params))
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
