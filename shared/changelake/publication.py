"""Publishing one folder of S3 objects: a manifest commit, then a guarded promotion.

Used by compaction (one folder per hour of compacted/) and by anything else that must replace a
folder's files so that a reader never sees a partial set and two overlapping writers never leave
two generations behind (the snapshot layer, one folder per day). The caller writes its output
files as multipart uploads and leaves them *open* (invisible), then:

0. ``read()`` the current manifest *before* reading the inputs. Then a commit that replaces it
   (``If-Match`` on its ETag) always carries inputs at least as new as the ones it replaces: a
   run that read its inputs before a newer manifest was committed can never put an older
   generation back (its ``If-Match`` fails).
1. ``commit(body, replacing=...)``: ``_manifest.json`` is written with a conditional PUT,
   ``If-None-Match: *`` for the first manifest and ``If-Match: <ETag read>`` afterwards. The body
   is the caller's own JSON object; it must name its outputs as ``"outputs": [{"key",
   "upload_id", "part_etags", ...}, ...]`` (keys inside the folder, under ``data_prefix``), and a
   folder with ``side`` files (``SideFiles``: files published with the data that are not data,
   such as the snapshot's removed keys) names those the same way in its own field.
   Of two concurrent commits exactly one wins; the loser gets ``PreconditionFailedError``,
   aborts its own uploads and looks again.
2. ``promote(manifest)``: brings the folder to the state its *current* manifest describes, in
   rounds. A round lists the data files; if some outputs are missing it checks that the manifest
   is still current (HEAD, ETag), completes the missing uploads, checks again, and only then
   deletes every listed data file the manifest does not name. When a check finds a newer
   manifest (another run committed meanwhile), the round is repeated for that one: its uploads
   are completed (it names them) before anything is deleted, so readers never lose rows, and the
   parts this run completed for its own, now superseded, manifest are deleted as data files the
   newer manifest does not name.

Why the folder ends with exactly the current manifest's files once the runs return: a file is
completed only after its manifest was committed, and whoever completes it then checks the
manifest. If it is still current, any newer manifest is committed later, and that one's run lists
the folder after its commit, so it sees the file and deletes it; if not, the completer follows the
newer manifest and deletes the file itself. A deletion removes only files listed before the check
that found the manifest current, so it never removes a file of a newer manifest (committed after
that check, so completed after it). This relies on two rules callers keep: output keys are derived
from the inputs (a generation), and a generation, once superseded, is never committed again
(inputs only grow, as raw/ does, and step 0 makes every commit carry inputs at least as new as
the manifest it replaces). A run that meets ``MAX_ROUNDS`` newer manifests during one promotion
leaves the folder to the newest run.

``retire()`` takes a folder away (the snapshot's days before a later bootstrap): the manifest is
deleted first, so a reader of manifests sees the folder whole or not at all, then every file under
the folder. A run that dies in between leaves files without a manifest, which the next ``retire``
deletes; a glob reader may see a folder of several data files lose them one by one.

``publish`` is the loop every layer runs around these steps, written once (``Generation``: the
protocol once, variants fill hooks): read the manifest, plan (the inputs, listed after it), promote
the current manifest when it already is this generation, else write the parts left open, commit
(aborting the uploads if anything fails before the commit returns) and promote; a commit or a
promotion that loses to a concurrent run looks once more.

Delivery guarantee: a returned ``commit`` means the manifest is durably the folder's current one;
a ``published`` promotion means the folder held exactly that manifest's data files (and side
files) when it was last checked. Every step is idempotent and driven by the manifest, so a run
that dies after its commit is rolled forward by the next ``promote`` of the same manifest.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from changelake.exceptions import ObjectNotFoundError, PreconditionFailedError
from changelake.formats.layout import DATA_PREFIX
from changelake.integrations.base import MultipartStore

MANIFEST_NAME = "_manifest.json"
#: Rounds of following a newer manifest before leaving the folder to the newer runs. Each extra
#: round needs yet another run's commit during this very promotion, so a handful is plenty.
MAX_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Output:
    """One output file of a manifest: its key and the open multipart upload that becomes it."""

    key: str
    upload_id: str
    part_etags: tuple[str, ...]

    def document(self) -> dict[str, Any]:
        """The three fields ``commit`` needs in each entry of a manifest's ``outputs``."""
        return {"key": self.key, "upload_id": self.upload_id, "part_etags": list(self.part_etags)}


@dataclass(frozen=True, slots=True)
class SideFiles:
    """Files a manifest publishes beside its data, named in ``body[field]`` like ``outputs`` and kept
    under ``folder + prefix``. The prefix starts with ``_`` so that readers skip them: not data."""

    field: str
    prefix: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A committed manifest: its body, its ETag, and its outputs, side files included (None if they
    cannot be read)."""

    body: dict[str, Any]
    etag: str
    outputs: tuple[Output, ...] | None

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(output.key for output in self.outputs or ())


PromotionStatus = Literal["published", "superseded", "lost"]


@dataclass(frozen=True, slots=True)
class Promotion:
    """What ``promote`` did.

    ``published``: the folder holds exactly this manifest's files. ``superseded``: a newer
    manifest was committed meanwhile; the folder was brought to it as far as this run could.
    ``lost``: an output's upload is gone before completion (aborted or expired): rebuild.
    """

    status: PromotionStatus
    completed: int = 0
    deleted: int = 0

    @property
    def writes(self) -> int:
        return self.completed + self.deleted


class Publication:
    """One folder (``<layer>/<...>/``, with its trailing slash) published by manifest commits."""

    def __init__(
        self,
        store: MultipartStore,
        folder: str,
        *,
        data_prefix: str = DATA_PREFIX,
        manifest_name: str = MANIFEST_NAME,
        side: SideFiles | None = None,
    ) -> None:
        if not folder.endswith("/"):
            raise ValueError(f"a folder ends with '/': {folder!r}")
        if side is not None and not side.prefix.startswith("_"):
            raise ValueError(f"side files are not data: their prefix starts with '_': {side.prefix!r}")
        self.store = store
        self.folder = folder
        self.data_prefix = data_prefix
        self.side = side
        self.manifest_key = folder + manifest_name

    # -- the manifest

    def read(self) -> Manifest | None:
        """The current manifest, or None if there is none. An unreadable one has no outputs (and is
        replaced by the next commit, ``If-Match`` on its ETag)."""
        try:
            raw, etag = self.store.get_with_etag(self.manifest_key)
        except ObjectNotFoundError:
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Manifest({}, etag, None)
        return Manifest(body, etag, self._outputs_of(body))

    def commit(self, body: dict[str, Any], *, replacing: Manifest | None) -> Manifest:
        """Make ``body`` the current manifest if ``replacing`` still is (None: if there is none).

        ``PreconditionFailedError`` if another commit came first (or the manifest was deleted).
        """
        outputs = self._outputs_of(body)
        if outputs is None:
            raise ValueError(f"{self.manifest_key}: outputs must be data files of the folder")
        data = json.dumps(body, indent=1).encode()
        try:
            etag = self.store.put(
                self.manifest_key,
                data,
                content_type="application/json",
                if_none_match=replacing is None,
                if_match=None if replacing is None else replacing.etag,
            )
        except ObjectNotFoundError as exc:  # If-Match on a manifest deleted meanwhile
            raise PreconditionFailedError(str(exc), exc.code) from exc
        return Manifest(body, etag, outputs)

    def _outputs_of(self, body: dict[str, Any]) -> tuple[Output, ...] | None:
        data = self._named(body.get("outputs"), self.data_prefix)
        if self.side is None or data is None:
            return data
        side = self._named(body.get(self.side.field, []), self.side.prefix)
        return None if side is None else data + side

    def _named(self, entries: object, prefix: str) -> tuple[Output, ...] | None:
        """The outputs a manifest field names; None unless each is a file of the folder under ``prefix``."""
        if not isinstance(entries, list):
            return None
        outputs = []
        for entry in entries:
            try:
                output = Output(
                    str(entry["key"]), str(entry["upload_id"]), tuple(str(e) for e in entry["part_etags"])
                )
            except (KeyError, TypeError):
                return None
            if not self._is_file(output.key, prefix):
                return None
            outputs.append(output)
        return tuple(outputs)

    def _is_file(self, key: str, prefix: str) -> bool:
        name = key[len(self.folder) :]
        return key.startswith(self.folder) and name.startswith(prefix) and "/" not in name[len(prefix) :]

    # -- promotion

    def promote(self, manifest: Manifest) -> Promotion:
        """Bring the folder to its current manifest, starting from ``manifest`` (see the module doc)."""
        target: Manifest | None = manifest
        completed = 0
        for _ in range(MAX_ROUNDS):
            if target is None:  # the manifest was deleted meanwhile: leave the folder alone
                break
            mine = target is manifest
            live = self._data_keys()
            missing = [output for output in target.outputs or () if output.key not in live]
            stale = sorted(live - target.keys)
            if missing:
                latest = self._latest(target)
                if latest is not target:  # replaced before completion: complete nothing of ours
                    target = latest
                    continue
            if target.outputs is None or not self._complete(missing):
                return Promotion("lost" if mine else "superseded", completed)
            completed += len(missing)
            if missing or stale:
                latest = self._latest(target)
                if latest is not target:  # replaced while completing: follow the newer one
                    target = latest
                    continue
            for key in stale:  # listed before the check, so none can be a newer manifest's file
                self.store.delete(key)
            return Promotion("published" if mine else "superseded", completed, len(stale))
        return Promotion("superseded", completed)

    def _data_keys(self) -> set[str]:
        """The folder's published files as listed now: its data files and its side files (one LIST of
        the folder for both)."""
        if self.side is None:
            listed = self.store.list_objects(self.folder + self.data_prefix)
            return {item.key for item in listed if self._is_file(item.key, self.data_prefix)}
        prefixes = (self.data_prefix, self.side.prefix)
        listed = self.store.list_objects(self.folder)
        return {item.key for item in listed if any(self._is_file(item.key, prefix) for prefix in prefixes)}

    def _latest(self, target: Manifest) -> Manifest | None:
        """``target`` itself if it is still current, else the manifest that is (None: none is)."""
        try:
            if self.store.head(self.manifest_key).etag == target.etag:
                return target
        except ObjectNotFoundError:
            return None
        return self.read()

    def retire(self) -> bool:
        """Take the folder away: its manifest first (readers of manifests see the folder whole or not
        at all), then every file under it. Idempotent: a run that died in between left files without
        a manifest, and this deletes them. False if there was nothing to delete."""
        listed = [item.key for item in self.store.list_objects(self.folder)]
        for key in sorted(listed, key=lambda key: key != self.manifest_key):  # the manifest first
            self.store.delete(key)
        return bool(listed)

    def _complete(self, outputs: Sequence[Output]) -> bool:
        """Complete each upload; False if one is gone without its object (it must be rebuilt)."""
        for output in outputs:
            try:
                self.store.complete_multipart(output.key, output.upload_id, list(output.part_etags))
            except ObjectNotFoundError:
                try:
                    self.store.head(output.key)  # completed by a concurrent run in the meantime?
                except ObjectNotFoundError:
                    return False
        return True


# ---------------------------------------------------------------------- the publish loop

PlanT = TypeVar("PlanT")
BuiltT = TypeVar("BuiltT")


class OpenUploads:
    """What a ``Generation.write`` started and has not published: aborted together if anything
    fails before the commit returns (nothing of this generation is then visible)."""

    def __init__(self) -> None:
        self._aborts: list[Callable[[], None]] = []

    def on_abort(self, abort: Callable[[], None]) -> None:
        """Call ``abort`` (it discards the uploads it knows, idempotently) if the generation fails."""
        self._aborts.append(abort)

    def abort(self) -> None:
        """Abort every upload registered so far, once (a variant may abort an attempt and go on)."""
        aborts, self._aborts = self._aborts, []
        for abort in aborts:
            abort()


@dataclass(frozen=True, slots=True)
class Written(Generic[BuiltT]):
    """A generation's parts, written and left open: the manifest body naming them, and what the
    variant wants back from its build (counts, parts)."""

    body: dict[str, Any]
    built: BuiltT


PublishStatus = Literal["built", "completed", "unchanged", "deferred", "empty"]


@dataclass(frozen=True, slots=True)
class Published(Generic[PlanT, BuiltT]):
    """What ``publish`` did. ``built``: a new generation committed and published; ``completed``
    (rolled forward) and ``unchanged``: the current manifest was this generation already;
    ``deferred``: it needed a build and ``may_build`` said no; ``empty``: nothing to publish.
    ``manifest`` is the current one when this run last saw it (None when deferred or empty)."""

    status: PublishStatus
    plan: PlanT | None = None
    manifest: Manifest | None = None
    writes: int = 0
    built: BuiltT | None = field(default=None)


class Generation(ABC, Generic[PlanT, BuiltT]):
    """One generation of one folder: the hooks ``publish`` calls (see the module)."""

    publication: Publication

    @abstractmethod
    def plan(self, current: Manifest | None) -> PlanT | None:
        """After the manifest was read: what this generation is built from (its inputs listed now,
        its generation name); None if there is nothing to publish."""

    @abstractmethod
    def is_current(self, plan: PlanT, current: Manifest) -> bool:
        """Whether ``current`` (the committed manifest) already is the generation ``plan`` gives."""

    @abstractmethod
    def write(self, plan: PlanT, uploads: OpenUploads) -> Written[BuiltT]:
        """Write the generation's parts as uploads left open, each registered with ``uploads``, and
        return the manifest body that names them."""

    def may_build(self) -> bool:
        """Asked before a build: False defers it (the run has no time left)."""
        return True


def publish(generation: Generation[PlanT, BuiltT]) -> Published[PlanT, BuiltT]:
    """Bring the generation's folder up to date (idempotent: an up-to-date folder is not written).

    A commit that loses to a concurrent run (its uploads are aborted), or a promotion that finds a
    newer manifest (the folder was brought to it) or a lost upload, looks once more: usually done.
    """
    try:
        return _publish_once(generation)
    except PreconditionFailedError:
        return _publish_once(generation)


def _publish_once(generation: Generation[PlanT, BuiltT]) -> Published[PlanT, BuiltT]:
    publication = generation.publication
    # The manifest first, then the inputs: whatever replaces this manifest was then built from
    # inputs at least as new, so a commit over it never puts an older generation back.
    current = publication.read()
    plan = generation.plan(current)
    if plan is None:
        return Published("empty")
    if current is not None and generation.is_current(plan, current):
        promotion = publication.promote(current)
        if promotion.status == "published":
            status: PublishStatus = "completed" if promotion.writes else "unchanged"
            return Published(status, plan, current, promotion.writes)
        if promotion.status == "superseded":
            raise not_published(publication, promotion)
    if not generation.may_build():
        return Published("deferred", plan)
    uploads = OpenUploads()
    try:
        written = generation.write(plan, uploads)
        committed = publication.commit(written.body, replacing=current)
    except BaseException:
        uploads.abort()  # nothing was published: the open uploads go
        raise
    promotion = publication.promote(committed)
    if promotion.status != "published":  # replaced by a concurrent run, or an upload lost
        raise not_published(publication, promotion)
    return Published("built", plan, committed, 1 + promotion.writes, written.built)


def not_published(publication: Publication, promotion: Promotion) -> PreconditionFailedError:
    """What a run raises when a concurrent run replaced its manifest while it promoted (the folder is
    then brought to the newer one), or an upload was lost: ``publish`` looks once more."""
    resource = f"s3://{publication.store.bucket}/{publication.manifest_key}"
    return PreconditionFailedError(f"{resource}: not published ({promotion.status})", promotion.status)
