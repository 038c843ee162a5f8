"""Translate a SAM template to plain CloudFormation with the SAM translator (run by the SAM venv).

Run as a script by ``.venv-sam/bin/python`` (aws-sam-translator pins a pydantic the dev venv does
not use, so it lives in the SAM CLI's venv): ``python sam_translate.py TEMPLATE BUCKET``. Local
``CodeUri``/``ContentUri`` folders are replaced by ``s3://BUCKET/<LogicalId>.zip`` first (what
``sam package`` does); stdout is ``{"template": <translated>, "code": {LogicalId: folder}}``.
A template error exits with status 2 and the translator's messages on stderr.
Only the standard library and samtranslator are imported here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; the template names none, so none are needed."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template_path: Path, bucket: str) -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(template_path.read_text())
    code: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        prop = _CODE_PROPERTIES.get(resource.get("Type", ""))
        if prop is None:
            continue
        location = resource.get("Properties", {}).get(prop)
        if isinstance(location, str) and not location.startswith("s3://"):
            code[logical_id] = location
            resource["Properties"][prop] = f"s3://{bucket}/{logical_id}.zip"
    translated = transform(template, {}, _NoManagedPolicies())
    return {"template": translated, "code": code}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sam_translate.py TEMPLATE BUCKET", file=sys.stderr)
        return 64
    from samtranslator.model.exceptions import InvalidDocumentException

    try:
        result = translate(Path(argv[0]), argv[1])
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"template error: {cause.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"template error: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
