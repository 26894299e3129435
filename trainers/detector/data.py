"""Sample lists for detector training and evaluation: where they come from and how they split.

A :class:`Sample` is one photo with a label (0 real, 1 fake), a ``source`` (the folder name,
the generator family of a ``forensics gan sample`` folder, or what a manifest says) and a
``group`` key. Everything with the same group (one person, one seed, a re-synthesised fake
and its real twin) lands in the same split, so nothing leaks from training into validation.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from forensics.media import iter_inputs, media_kind

GAN_MANIFEST = "manifest.jsonl"
_TRAILING_NUMBERS = re.compile(r"([_\-\s.]*\d+)+$")


@dataclass(frozen=True)
class Sample:
    """One labelled photo.

    Attributes:
        path: File path.
        label: 0 for real, 1 for fake.
        source: Real-photo collection or fake generator name (results are reported per source).
        group: Split key: samples sharing it are never split between training and validation.
        twin: For a re-synthesised fake, the group of the real photo it was made from.

    """

    path: str
    label: int
    source: str
    group: str
    twin: str | None = None


def group_key(path: str | os.PathLike) -> str:
    """Split key of a photo: its folder plus its name without trailing frame/photo numbers.

    ``guanyue_0040.jpg`` and ``guanyue_0089.jpg`` (one person) share a key, and so do the
    frames ``vid-000-00.png`` and ``vid-009-00.png`` of one video. A name that is only a
    number keeps its number. A re-synthesised fake computes the key from its real twin's path,
    so the pair shares a key.
    """
    p = Path(path)
    stem = p.name.split(".")[0] if not p.name.startswith(".") else p.name
    person = _TRAILING_NUMBERS.sub("", stem) or stem
    return f"{p.parent.name}/{person}"


def _parse_label(value: object) -> int:
    text = str(value).strip().lower()
    if text in {"1", "fake", "synthetic", "true"}:
        return 1
    if text in {"0", "real", "false"}:
        return 0
    raise ValueError(f"unknown label {value!r}: use real/fake or 0/1")


def samples_from_folder(folder: str | os.PathLike, label: int) -> list[Sample]:
    """All images under ``folder``; a ``forensics gan sample`` folder is read from its manifest.

    Without a manifest the source is the folder's name. With one, the source is each file's
    generator ``family`` and a re-synthesised file (``source`` = its real twin's path) is
    grouped with its twin.
    """
    folder = Path(folder)
    manifest = folder / GAN_MANIFEST
    if folder.is_dir() and manifest.is_file():
        return _samples_from_gan_manifest(manifest, label)
    source = folder.name if folder.is_dir() else folder.parent.name
    return [
        Sample(str(p), label, source, group_key(p))
        for p in iter_inputs([folder])
        if media_kind(p) == "image" and p.is_file()
    ]


def _samples_from_gan_manifest(manifest: Path, label: int) -> list[Sample]:
    out = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        path = Path(rec["file"])
        path = path if path.is_absolute() else manifest.parent / path
        family = str(rec.get("family") or manifest.parent.name)
        twin = rec.get("source")
        if twin:
            group = twin_group = group_key(twin)
        else:
            group = f"{family}/seed{rec.get('seed', path.stem)}/{path.stem}"
            twin_group = None
        out.append(Sample(str(path), label, family, group, twin_group))
    return out


def samples_from_manifest(path: str | os.PathLike) -> list[Sample]:
    """Read a CSV (with header) or JSONL manifest of ``path,label,source[,group]`` rows.

    Relative paths are resolved against the manifest's folder; a missing ``group`` is derived
    with :func:`group_key`.
    """
    path = Path(path)
    if path.suffix.lower() in {".jsonl", ".json"}:
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    else:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    out = []
    for i, row in enumerate(rows, 1):
        try:
            file = Path(row["path"])
            label = _parse_label(row["label"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: row {i}: {exc}") from None
        file = file if file.is_absolute() else path.parent / file
        source = str(row.get("source") or file.parent.name)
        group = str(row.get("group") or group_key(file))
        twin = row.get("twin") or None
        out.append(Sample(str(file), label, source, group, twin))
    return out


def collect_samples(
    real: Iterable[str | os.PathLike] = (),
    fake: Iterable[str | os.PathLike] = (),
    manifests: Iterable[str | os.PathLike] = (),
) -> list[Sample]:
    """Build the full sample list from real/fake folders and manifests.

    Raises:
        ValueError: A folder or manifest is missing.

    """
    out: list[Sample] = []
    for label, folders in ((0, real), (1, fake)):
        for folder in folders:
            if not Path(folder).exists():
                raise ValueError(f"not found: {folder}")
            out.extend(samples_from_folder(folder, label))
    for manifest in manifests:
        if not Path(manifest).is_file():
            raise ValueError(f"manifest not found: {manifest}")
        out.extend(samples_from_manifest(manifest))
    return out


def cap_per_source(samples: Sequence[Sample], limit: int | None, seed: int) -> list[Sample]:
    """Keep at most ``limit`` samples per (label, source), chosen by a seeded hash."""
    if not limit:
        return list(samples)
    ranked = sorted(samples, key=lambda s: _unit(f"cap:{seed}:{s.path}"))
    seen: Counter[tuple[int, str]] = Counter()
    keep = []
    for s in ranked:
        key = (s.label, s.source)
        if seen[key] < limit:
            seen[key] += 1
            keep.append(s)
    return sorted(keep, key=lambda s: s.path)


def split_holdout(
    samples: Sequence[Sample], generators: Iterable[str]
) -> tuple[list[Sample], list[Sample]]:
    """Separate fakes of the held-out generators (and their real twins' groups) from the rest.

    Raises:
        ValueError: A named generator has no fake sample.

    """
    names = set(generators)
    fake_sources = {s.source for s in samples if s.label == 1}
    missing = names - fake_sources
    if missing:
        known = ", ".join(sorted(fake_sources)) or "none"
        raise ValueError(f"unknown holdout generator(s) {sorted(missing)}; fake sources: {known}")
    held = [s for s in samples if s.label == 1 and s.source in names]
    return [s for s in samples if not (s.label == 1 and s.source in names)], held


def split_train_val(
    samples: Sequence[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split by group (seeded hash), never at random per file.

    Each source gets about ``val_fraction`` of its groups in validation, and at least one when
    it has two or more. Re-synthesised fakes follow their real twin's group.
    """
    groups_by_source: dict[tuple[int, str], set[str]] = {}
    for s in samples:
        groups_by_source.setdefault((s.label, s.source), set()).add(s.group)
    val_groups: set[str] = set()
    for groups in groups_by_source.values():
        ranked = sorted(groups, key=lambda g: _unit(f"split:{seed}:{g}"))
        n = round(len(ranked) * val_fraction)
        n = max(n, 1) if len(ranked) >= 2 else 0
        val_groups.update(ranked[:n])
    train = [s for s in samples if s.group not in val_groups]
    val = [s for s in samples if s.group in val_groups]
    return train, val


def count_by_source(samples: Iterable[Sample]) -> dict[str, dict[str, int]]:
    """``{"real": {source: n}, "fake": {source: n}}``: the provenance stored in checkpoints."""
    out: dict[str, dict[str, int]] = {"real": {}, "fake": {}}
    for s in samples:
        bucket = out["fake" if s.label else "real"]
        bucket[s.source] = bucket.get(s.source, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _unit(text: str) -> float:
    """A stable pseudo-random number in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big") / 2**64
