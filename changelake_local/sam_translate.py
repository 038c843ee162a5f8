"""Translate a SAM template to plain CloudFormation with the SAM translator (run by the SAM venv).

Run as a script by ``.venv-sam/bin/python`` (aws-sam-translator pins a pydantic the dev venv does
not use, so it lives in the SAM CLI's venv): ``python sam_translate.py TEMPLATE BUCKET [PARAMETERS]``.
The ``AWS::LanguageExtensions`` transform comes first, as CloudFormation applies it: its
``Fn::ForEach`` loops are expanded with the SAM CLI's own processor (what ``sam build`` runs), over
the collections the parameter values (``PARAMETERS``, a JSON object; defaults otherwise) give;
nothing else is resolved, so the result keeps its Refs. Local ``CodeUri``/``ContentUri`` folders
are then replaced by ``s3://BUCKET/<LogicalId>.zip`` (what ``sam package`` does), and a state
machine's local ``DefinitionUri`` file becomes its ``DefinitionString`` (the text CloudFormation
reads from the object ``sam package`` uploads, ``DefinitionSubstitutions`` still to apply); stdout is
``{"template": <translated>, "code": {LogicalId: folder}}``. A template error exits with status 2
and the translator's messages on stderr.
Only the standard library, samtranslator and the SAM CLI are imported here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
_STATE_MACHINE = "AWS::Serverless::StateMachine"


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; the template names none, so none are needed."""

    def load(self) -> dict[str, str]:
        return {}


def expand_language_extensions(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """``template`` with its ``Fn::ForEach`` loops expanded and ``AWS::LanguageExtensions`` removed
    from its transforms; unchanged when it does not declare that transform."""
    transforms = template.get("Transform")
    names = transforms if isinstance(transforms, list) else [transforms]
    if LANGUAGE_EXTENSIONS not in names:
        return template
    from samcli.lib.cfn_language_extensions.api import create_default_intrinsic_resolver
    from samcli.lib.cfn_language_extensions.models import ResolutionMode, TemplateProcessingContext
    from samcli.lib.cfn_language_extensions.processors.foreach import ForEachProcessor
    from samcli.lib.cfn_language_extensions.processors.parsing import TemplateParsingProcessor

    context = TemplateProcessingContext(
        fragment=template, parameter_values=dict(parameters), resolution_mode=ResolutionMode.PARTIAL
    )
    TemplateParsingProcessor().process_template(context)
    ForEachProcessor(create_default_intrinsic_resolver(context)).process_template(context)
    expanded: dict[str, Any] = context.fragment
    rest = [name for name in names if name != LANGUAGE_EXTENSIONS]
    expanded["Transform"] = rest[0] if len(rest) == 1 else rest
    return expanded


def translate(template_path: Path, bucket: str, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = expand_language_extensions(yaml_parse(template_path.read_text()), parameters or {})
    code: dict[str, str] = {}
    definitions: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == _STATE_MACHINE and _is_local(properties.get("DefinitionUri")):
            definitions[logical_id] = (template_path.parent / properties["DefinitionUri"]).read_text()
            properties["DefinitionUri"] = f"s3://{bucket}/{logical_id}.asl.json"
        prop = _CODE_PROPERTIES.get(resource.get("Type", ""))
        if prop is None:
            continue
        if _is_local(properties.get(prop)):
            code[logical_id] = properties[prop]
            properties[prop] = f"s3://{bucket}/{logical_id}.zip"
    translated = transform(template, {}, _NoManagedPolicies())
    for logical_id, text in definitions.items():
        properties = translated["Resources"][logical_id]["Properties"]
        del properties["DefinitionS3Location"]
        properties["DefinitionString"] = text
    return {"template": translated, "code": code}


def _is_local(location: object) -> bool:
    """A file or folder of the repository, rather than an object in S3 already."""
    return isinstance(location, str) and not location.startswith("s3://")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: sam_translate.py TEMPLATE BUCKET [PARAMETERS]", file=sys.stderr)
        return 64
    from samcli.lib.cfn_language_extensions.exceptions import InvalidTemplateException
    from samtranslator.model.exceptions import InvalidDocumentException

    try:
        parameters = json.loads(argv[2]) if len(argv) == 3 else {}
        result = translate(Path(argv[0]), argv[1], parameters)
    except InvalidTemplateException as exc:
        print(f"template error: {exc}", file=sys.stderr)
        return 2
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
