"""Which files a run protects, and what each output is called."""

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shield_server.errors import BadOptions

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff",
                  ".heic", ".heif", ".hif", ".avif"}

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".3gp", ".webm", ".mkv"}
# What a default run writes (photo.protected.jpg, IMG_1.heic.protected.jpg, photo.protected-2.jpg): a folder
# searched again skips these, so running twice on the same folder does not trip over its own outputs.
EARLIER_OUTPUT = re.compile(r".+\.protected(-\d+)?\.[^.]+")

# --in-place keeps a file's name when its name already fits the protected file's format.
SUFFIXES_OF_EXTENSION = {"jpg": {".jpg", ".jpeg", ".jpe"}, "png": {".png"}, "webp": {".webp"}, "gif": {".gif"},
                         "mp4": {".mp4"}}


@dataclass(frozen=True)
class Job:
    source: Path
    output_file: Path | None = None  # -o FILE
    out_stem: Path | None = None  # default naming and --out-dir: the output's path without its extension
    in_place: bool = False
    note: str | None = None  # why the output's name is not the usual one


def failure(path: Path, code: str, message: str) -> dict:
    return {"file": str(path), "error": code, "message": message}


def collect(paths: list[str]) -> tuple[list[tuple[Path, Path]], list[dict], list[Path], list[Path]]:
    """(file, path relative to where it was found) for each file given or found in a folder, recursively,
    each file once; a failure for each folder that could not be read or link that leads nowhere; the
    earlier outputs found in folders, and the files there that are not photos or videos by their name (both
    skipped; a file named explicitly is always taken; hidden files are not looked at)."""
    found, problems, earlier_outputs, not_media, seen = [], [], [], [], set()
    for text in paths:
        path = Path(text)
        walked = _walk(path, problems, earlier_outputs, not_media) if path.is_dir() else [(path, Path(path.name))]
        for source, relative in walked:
            key = os.path.realpath(source)
            if key not in seen:
                seen.add(key)
                found.append((source, relative))
    return found, problems, earlier_outputs, not_media


def _walk(root: Path, problems: list[dict], earlier_outputs: list[Path],
          not_media: list[Path]) -> list[tuple[Path, Path]]:
    found, folders_seen = [], set()

    def unreadable(error: OSError) -> None:
        problems.append(failure(Path(error.filename), "unreadable_folder",
                                f"folder not searched: {error.strerror or error}"))

    for folder, subfolders, files in os.walk(root, onerror=unreadable, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in folders_seen:  # a link back to a folder already searched
            subfolders.clear()
            continue
        folders_seen.add((info.st_dev, info.st_ino))
        subfolders.sort()
        for name in sorted(files):
            child = Path(folder, name)
            if name.startswith("."):
                continue
            if child.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                not_media.append(child)
                continue
            if not child.exists():
                problems.append(failure(child, "broken_link", "a link to a file that does not exist"))
                continue
            if EARLIER_OUTPUT.fullmatch(name):
                earlier_outputs.append(child)
                continue
            found.append((child, child.relative_to(root)))
    return found


def plan(args, found: list[tuple[Path, Path]]) -> list[Job]:
    if args.output:
        if len(found) != 1:
            raise BadOptions("-o/--output takes exactly one input file; use --out-dir for several.")
        return [Job(found[0][0], output_file=Path(args.output))]
    if args.in_place:
        return [Job(source, in_place=True) for source, _ in found]
    stems = [_out_stem(source, relative, args.out_dir, relative.stem) for source, relative in found]
    shared = _shared(stems)
    notes = [None] * len(found)
    for i in shared:  # IMG_1.jpg and IMG_1.heic: each output keeps its input's whole name
        source, relative = found[i]
        stems[i] = _out_stem(source, relative, args.out_dir, relative.name)
        notes[i] = "named after the whole input name: other inputs have the same name with another extension"
    _number_repeats(stems, notes)
    return [Job(source, out_stem=stem, note=note) for (source, _), stem, note in zip(found, stems, notes)]


def _out_stem(source: Path, relative: Path, out_dir: str | None, name: str) -> Path:
    if out_dir:
        return Path(out_dir) / relative.parent / name
    return source.parent / f"{name}.protected"


def _name_key(path: Path) -> str:
    # Case-blind: the outputs may be copied to (or already be on) a case-insensitive file system.
    return os.path.realpath(path).casefold()


def _shared(stems: list[Path]) -> list[int]:
    """Indexes of the output stems that another output of the run has too."""
    counts = Counter(_name_key(stem) for stem in stems)
    return [i for i, stem in enumerate(stems) if counts[_name_key(stem)] > 1]


def _number_repeats(stems: list[Path], notes: list) -> None:
    """A name still shared (IMG_1.jpg beside IMG_1.jpg.png): the second and later get -2, -3, ..."""
    planned, used = {_name_key(s) for s in stems}, set()
    for i, stem in enumerate(stems):
        candidate, number = stem, 1
        while _name_key(candidate) in used or (number > 1 and _name_key(candidate) in planned):
            number += 1
            candidate = stem.with_name(f"{stem.name}-{number}")
        if number > 1:
            stems[i], notes[i] = candidate, "numbered: another input would have had the same output name"
        used.add(_name_key(candidate))


def output_path(job: Job, extension: str) -> Path:
    if job.output_file:
        return job.output_file
    if job.in_place:
        if job.source.suffix.lower() in SUFFIXES_OF_EXTENSION[extension]:
            return job.source
        return job.source.with_suffix("." + extension)
    return job.out_stem.with_name(f"{job.out_stem.name}.{extension}")
