"""The `shield` command: redact photos on disk, run the local server, pair the extension."""

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from shield_server import __version__, redact
from shield_server.errors import BadOptions, ShieldError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff",
                  ".heic", ".heif", ".hif", ".avif"}

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".3gp", ".webm", ".mkv"}

# -o FILE without --format: the file's suffix chooses the format.
SUFFIX_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp"}


@dataclass(frozen=True)
class Job:
    source: Path
    output_file: Path | None = None  # -o FILE
    out_stem: Path | None = None  # --out-dir: the output's path without its extension
    in_place: bool = False



def _collect(paths: list[str]) -> list[tuple[Path, Path]]:
    """(file, path relative to where it was found) for each file given or found in a folder, recursively."""
    found = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES and not child.name.startswith("."):
                    found.append((child, child.relative_to(path)))
        else:
            found.append((path, Path(path.name)))
    return found


def _plan(args) -> list[Job]:
    found = _collect(args.paths)
    if args.output and len(found) != 1:
        raise BadOptions("-o/--output takes exactly one input file; use --out-dir for several.")
    return [Job(source, Path(args.output) if args.output else None,
                Path(args.out_dir) / relative.parent / relative.stem if args.out_dir else None, args.in_place)
            for source, relative in found]


def _output_path(job: Job, extension: str) -> Path:
    if job.output_file:
        return job.output_file
    if job.out_stem:
        return job.out_stem.with_name(f"{job.out_stem.name}.{extension}")
    if job.in_place:
        return job.source.with_suffix("." + extension)
    return job.source.with_name(f"{job.source.stem}.protected.{extension}")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".shield-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _run_job(job: Job, options, inputs: frozenset[Path]) -> dict:
    from shield_server.pipeline import protect

    try:
        result = protect(job.source.read_bytes(), options)
        target = _output_path(job, result.extension)
        if target.resolve() in inputs and not (job.in_place and target.resolve() == job.source.resolve()):
            raise BadOptions(f"refusing to overwrite the input {target}; use --in-place to replace inputs")
        _write_atomically(target, result.data)
        if job.in_place and target.resolve() != job.source.resolve():
            job.source.unlink()  # the protected copy replaced it under its new format's name
        return {"file": str(job.source), "output": str(target), **result.report()}
    except ShieldError as exc:
        return {"file": str(job.source), "error": exc.code, "message": exc.message}
    except OSError as exc:
        return {"file": str(job.source), "error": "io_error", "message": exc.strerror or str(exc)}
    except Exception as exc:  # an engine bug: this file fails (nothing written), the batch goes on
        return {"file": str(job.source), "error": "internal", "message": f"internal error ({type(exc).__name__})"}


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # the batch already uses one process per core


def _redact(args) -> int:
    from shield_server.pipeline import ProtectOptions

    output_format = args.format or (SUFFIX_FORMATS.get(Path(args.output).suffix.lower()) if args.output else None)
    given = {"fill": args.fill, "margin": args.margin, "format": output_format, "mode": args.mode}
    options = ProtectOptions.from_params({k: str(v) for k, v in given.items() if v is not None})
    jobs = _plan(args)
    if not jobs:
        print("shield: no images found", file=sys.stderr)
        return 2
    inputs = frozenset(job.source.resolve() for job in jobs)
    video_jobs = [job for job in jobs if _is_video(job.source)]
    jobs = [job for job in jobs if job not in video_jobs]
    workers = min(args.jobs or os.cpu_count() or 1, len(jobs))
    progress = _progress(len(jobs), quiet=args.json or len(jobs) <= 1)
    results = []
    if workers <= 1:
        for job in jobs:
            results.append(_run_job(job, options, inputs))
            progress.update()
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
            for result in pool.map(_run_job, jobs, [options] * len(jobs), [inputs] * len(jobs)):
                results.append(result)
                progress.update()
    progress.close()
    results += [_run_video_job(job, args, inputs) for job in video_jobs]
    jobs += video_jobs
    failures = [r for r in results if "error" in r]
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        print()
    else:
        for r in results:
            if "error" not in r and len(jobs) == 1:
                print(f"{r['output']}: {r['faces']} face(s) replaced")
    for r in failures:
        print(f"shield: {r['file']}: {r['message']}", file=sys.stderr)
    if len(jobs) > 1 and not args.json:
        print(f"{len(results) - len(failures)} protected, {len(failures)} failed, "
              f"{sum(r.get('faces', 0) for r in results)} face(s) replaced", file=sys.stderr)
    return 1 if failures else 0


def _is_video(path: Path) -> bool:
    from shield_server.formats import sniff_video

    try:
        with open(path, "rb") as handle:
            return sniff_video(handle.read(64)) is not None
    except OSError:
        return False  # the photo path reports why the file cannot be read


def _run_video_job(job: Job, args, inputs: frozenset[Path]) -> dict:
    """One clip, in this process (the detector already uses every core), with a frame progress bar."""
    from tqdm import tqdm

    from shield_server.video import VideoOptions, protect_video

    given = {"fill": args.fill, "margin": args.margin, "mode": args.mode,
             "format": "mp4" if args.format in (None, "same") else args.format,
             "audio": "drop" if args.no_audio else "keep"}
    target = _output_path(job, "mp4")
    try:
        options = VideoOptions.from_params({k: str(v) for k, v in given.items() if v is not None})
        if target.resolve() in inputs and not (job.in_place and target.resolve() == job.source.resolve()):
            raise BadOptions(f"refusing to overwrite the input {target}; use --in-place to replace inputs")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".shield-", suffix=".mp4")
        os.close(fd)
        with tqdm(total=0, unit="frame", disable=args.json, file=sys.stderr, desc=job.source.name) as bar:
            def show(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)
            try:
                result = protect_video(job.source, temp, options, progress=show)
                os.replace(temp, target)
            finally:
                Path(temp).unlink(missing_ok=True)
        if job.in_place and target.resolve() != job.source.resolve():
            job.source.unlink()
        return {"file": str(job.source), "output": str(target), "faces": result.faces_per_frame_max,
                **result.report()}
    except ShieldError as exc:
        return {"file": str(job.source), "error": exc.code, "message": exc.message}
    except OSError as exc:
        return {"file": str(job.source), "error": "io_error", "message": exc.strerror or str(exc)}


def _progress(total: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="photo", disable=quiet, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shield", description="Photo Shield: irreversibly replace faces "
                                     "in photos and strip their metadata before posting them.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    red = commands.add_parser("redact", help="protect image and video files (faces replaced, metadata removed)")
    red.add_argument("paths", nargs="+", help="image or video files, or folders (searched recursively)")
    where = red.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", help="output file (one input only)")
    where.add_argument("--out-dir", help="folder for the protected files, named <input name>.<format>")
    red.add_argument("--in-place", action="store_true", help="replace each input with its protected version")
    red.add_argument("--fill", help="a colour (#RRGGBB, default #000000) or 'noise'")
    red.add_argument("--format", choices=["same", "png", "jpeg", "webp"], help="output format (default: same)")
    red.add_argument("--margin", type=float, help=f"head margin around each face box, as a fraction of "
                     f"its size (default {redact.DEFAULT_MARGIN})")
    red.add_argument("--mode", choices=["faces", "people"], help="replace faces (default) or whole people")
    red.add_argument("--no-audio", action="store_true", help="videos: drop the sound track (default: kept)")
    red.add_argument("--json", action="store_true", help="print a JSON report instead of a summary")
    red.add_argument("--jobs", type=int, help="processes for batches (default: one per core)")
    red.set_defaults(run=_redact)

    srv = commands.add_parser("serve", help="run the local server the browser extension talks to")
    srv.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 47321)")
    srv.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                     help="another extension origin allowed to call the server (repeatable)")
    srv.set_defaults(run=lambda a: _server_command("main", a))

    pair = commands.add_parser("pair", help="show the pairing token for the extension")
    pair.add_argument("--rotate", action="store_true", help="replace the token (re-pair the extension)")
    pair.set_defaults(run=lambda a: _server_command("pair", a))
    return parser


def _server_command(name: str, args) -> int:
    from shield_server.server import serve

    return getattr(serve, name)(args)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "redact" and args.in_place and (args.output or args.out_dir):
        print("shield: --in-place cannot be combined with -o/--out-dir", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except ShieldError as exc:
        print(f"shield: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
