"""Row 1: DynamoDB JSON -> plain JSON, ours against boto3's TypeDeserializer + json.dumps.

Both sides convert the same images (Keys, NewImage, OldImage) of 10,000 realistic stream
records to JSON text. The boto3 side is how it is usually written: ``TypeDeserializer`` (with
``B`` kept as the base64 text Lambda delivers, as Powertools does, since boto3's own would refuse
a ``str``), then ``json.dumps`` with a ``default`` that ``str()``s Decimals and lists sets.
The check variant asserts both outputs hold equal values, element by element, guided by the
DynamoDB type tags (a Decimal-as-string on their side equals our exact number).
"""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal
from typing import Any

from bench.support.inputs import stream_records
from bench.support.timing import best_of, take_turns_figures, turns

IMAGES = ("Keys", "NewImage", "OldImage")


def _images(count: int) -> list[dict[str, Any]]:
    return [
        record["dynamodb"][name]
        for record in stream_records(count)
        for name in IMAGES
        if name in record["dynamodb"]
    ]


def _ours(count: int, repeats: int) -> dict[str, Any]:
    from changelake.formats.change_line import to_change_line
    from changelake.formats.dynamodb_json import item_text

    images = _images(count)
    records = stream_records(count)

    def work() -> list[str]:
        return [item_text("image", image) for image in images]

    timing = best_of(work, repeats)
    lines = best_of(lambda: [to_change_line(record) for record in records], repeats)
    return {
        "records": count,
        "wall_s": timing.wall,
        "cpu_s": timing.cpu,
        "to_change_line_cpu_s": lines.cpu,
        "output_bytes": sum(len(text) for text in work()),
    }


def _naive_converter() -> Any:
    from boto3.dynamodb.types import Binary, TypeDeserializer

    class StreamDeserializer(TypeDeserializer):
        """boto3's deserializer for Lambda stream images: ``B`` arrives as base64 text, keep it."""

        def _deserialize_b(self, value: Any) -> Any:
            return value

    deserializer = StreamDeserializer()

    def default(value: object) -> object:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, set | frozenset):
            return list(value)
        if isinstance(value, Binary):
            return value.value
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    def convert(image: dict[str, Any]) -> str:
        return json.dumps(
            {name: deserializer.deserialize(value) for name, value in image.items()}, default=default
        )

    return convert


def _boto3(count: int, repeats: int) -> dict[str, Any]:
    images = _images(count)
    convert = _naive_converter()

    def work() -> list[str]:
        return [convert(image) for image in images]

    timing = best_of(work, repeats)
    return {
        "records": count,
        "wall_s": timing.wall,
        "cpu_s": timing.cpu,
        "output_bytes": sum(map(len, work())),
    }


def _equal(attribute: dict[str, Any], ours: Any, theirs: Any) -> bool:
    """Whether our value and boto3's hold the same DynamoDB value (``attribute`` is the source)."""
    ((tag, value),) = attribute.items()
    if tag == "N":
        return isinstance(ours, Decimal) and Decimal(theirs) == ours
    if tag == "NS":
        return sorted(ours) == sorted(Decimal(item) for item in theirs)
    if tag in ("SS", "BS"):
        return sorted(ours) == sorted(theirs)
    if tag == "M":
        return _equal_map(value, ours, theirs)
    if tag == "L":
        return len(value) == len(ours) == len(theirs) and all(
            _equal(item, a, b) for item, a, b in zip(value, ours, theirs, strict=True)
        )
    return bool(ours == theirs and type(ours) is type(theirs))


def _equal_map(source: dict[str, Any], ours: Any, theirs: Any) -> bool:
    return list(source) == list(ours) == list(theirs) and all(
        _equal(source[name], ours[name], theirs[name]) for name in source
    )


def _check(count: int) -> dict[str, Any]:
    from changelake.formats.dynamodb_json import item_text

    convert = _naive_converter()
    images = _images(count)
    for index, image in enumerate(images):
        ours = json.loads(item_text("image", image), parse_float=Decimal, parse_int=Decimal)
        theirs = json.loads(convert(image))
        assert _equal_map(image, ours, theirs), f"image {index} differs between changelake and boto3"
    return {"images_checked": len(images), "equal": True}


def _floor(count: int, repeats: int) -> dict[str, Any]:
    """No conversion at all: the stdlib C encoder serializing the DynamoDB JSON images as they are."""
    images = _images(count)
    timing = best_of(
        lambda: [json.dumps(image, separators=(",", ":"), ensure_ascii=False) for image in images], repeats
    )
    return {"records": count, "wall_s": timing.wall, "cpu_s": timing.cpu}


def _native_floor(count: int, repeats: int) -> dict[str, Any]:
    """A native encoder (orjson, when installed) serializing the images as they are: no conversion."""
    import orjson  # type: ignore[import-not-found,unused-ignore]

    images = _images(count)
    timing = best_of(lambda: [orjson.dumps(image) for image in images], repeats)
    return {"records": count, "wall_s": timing.wall, "cpu_s": timing.cpu}


def _interleaved(count: int, repeats: int) -> dict[str, Any]:
    """CPU of every variant's work, taking turns in this one process (the row's ratios)."""
    from changelake.formats.dynamodb_json import item_text

    images = _images(count)
    convert = _naive_converter()
    works: dict[str, Any] = {
        "ours": lambda: [item_text("image", image) for image in images],
        "boto3": lambda: [convert(image) for image in images],
        "floor": lambda: [json.dumps(image, separators=(",", ":"), ensure_ascii=False) for image in images],
    }
    if importlib.util.find_spec("orjson") is not None:
        import orjson  # type: ignore[import-not-found,unused-ignore]

        works["native_floor"] = lambda: [orjson.dumps(image) for image in images]
    return turns(works, repeats)


VARIANTS = {
    "ours": _ours,
    "boto3": _boto3,
    "check": _check,
    "floor": _floor,
    "native_floor": _native_floor,
    "interleaved": _interleaved,
}


def run(quick: bool = False, **_: Any) -> dict[str, Any]:
    from bench.support.variants import run_variant

    count, repeats = (2_000, 3) if quick else (10_000, 5)
    check = run_variant("bench.rows.conversion", "check", count=count)
    ours = run_variant("bench.rows.conversion", "ours", count=count, repeats=repeats)
    boto3 = run_variant("bench.rows.conversion", "boto3", count=count, repeats=repeats)
    floor = run_variant("bench.rows.conversion", "floor", count=count, repeats=repeats)
    native: dict[str, Any] | None = None
    if importlib.util.find_spec("orjson") is not None:
        native = run_variant("bench.rows.conversion", "native_floor", count=count, repeats=repeats)
    # Times from one process where the variants take turns (same load); RSS from their own processes.
    taken = run_variant("bench.rows.conversion", "interleaved", count=count, repeats=repeats + 2)
    variants = (("ours", ours), ("boto3", boto3), ("floor", floor), ("native_floor", native))
    take_turns_figures(variants, taken, count)
    ratio = boto3["cpu_s"] / ours["cpu_s"]
    bounds = {
        "bound: json.dumps of the input, unconverted": floor,
        **({"bound: orjson.dumps of the input, unconverted": native} if native else {}),
    }
    return {
        "row": 1,
        "name": "DynamoDB JSON -> plain JSON",
        "unit": "records/s",
        "variants": {
            "changelake item_text": ours,
            "boto3 TypeDeserializer + json.dumps": boto3,
            **bounds,
        },
        "ratio": ratio,
        "ratio_text": f"{ratio:.1f}x faster than boto3",
        "target": ">= 5x faster, equal values",
        "holds": ratio >= 5 and check["equal"],
        "check": check,
        "notes": "the stdlib cannot serialize the input itself faster than "
        f"{boto3['cpu_s'] / floor['cpu_s']:.1f}x boto3's time, which bounds any converter that "
        "walks the parsed event in CPython 3.11"
        + (
            f", and orjson (native) serializing it unconverted is {boto3['cpu_s'] / native['cpu_s']:.1f}x"
            if native
            else ""
        )
        + "; "
        f"{check['images_checked']} images compared value by value (Decimal-exact): equal. "
        f"to_change_line (whole record line): {count / ours['to_change_line_cpu_s']:,.0f} records/s.",
    }
