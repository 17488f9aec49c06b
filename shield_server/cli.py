"""The `shield` command: redact photos on disk, run the local server, pair the extension."""

import argparse
import contextlib
import json
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from shield_server import __version__, redact
from shield_server.errors import BadOptions, ShieldError, TooLarge

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff",
                  ".heic", ".heif", ".hif", ".avif"}

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".3gp", ".webm", ".mkv"}
# What a default run writes (photo.protected.jpg, IMG_1.heic.protected.jpg, photo.protected-2.jpg): a folder
# searched again skips these, so running twice on the same folder does not trip over its own outputs.
EARLIER_OUTPUT = re.compile(r".+\.protected(-\d+)?\.[^.]+")

# -o FILE without --format: the file's suffix chooses the format.
SUFFIX_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp"}
# --in-place keeps a file's name when its name already fits the protected file's format.
SUFFIXES_OF_EXTENSION = {"jpg": {".jpg", ".jpeg", ".jpe"}, "png": {".png"}, "webp": {".webp"}, "gif": {".gif"},
                         "mp4": {".mp4"}}
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class NotAFile(ShieldError):
    code = "not_a_file"


class OutputExists(ShieldError):
    code = "output_exists"


@dataclass(frozen=True)
class Job:
    source: Path
    output_file: Path | None = None  # -o FILE
    out_stem: Path | None = None  # default naming and --out-dir: the output's path without its extension
    in_place: bool = False
    note: str | None = None  # why the output's name is not the usual one


def _failure(path: Path, code: str, message: str) -> dict:
    return {"file": str(path), "error": code, "message": message}


def _collect(paths: list[str]) -> tuple[list[tuple[Path, Path]], list[dict], list[Path]]:
    """(file, path relative to where it was found) for each file given or found in a folder, recursively,
    each file once; a failure for each folder that could not be read or link that leads nowhere; and the
    earlier outputs found in folders (skipped; a file named explicitly is always taken)."""
    found, problems, earlier_outputs, seen = [], [], [], set()
    for text in paths:
        path = Path(text)
        walked = _walk(path, problems, earlier_outputs) if path.is_dir() else [(path, Path(path.name))]
        for source, relative in walked:
            key = os.path.realpath(source)
            if key not in seen:
                seen.add(key)
                found.append((source, relative))
    return found, problems, earlier_outputs


def _walk(root: Path, problems: list[dict], earlier_outputs: list[Path]) -> list[tuple[Path, Path]]:
    found, folders_seen = [], set()

    def unreadable(error: OSError) -> None:
        problems.append(_failure(Path(error.filename), "unreadable_folder",
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
            if name.startswith(".") or child.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                continue
            if not child.exists():
                problems.append(_failure(child, "broken_link", "a link to a file that does not exist"))
                continue
            if EARLIER_OUTPUT.fullmatch(name):
                earlier_outputs.append(child)
                continue
            found.append((child, child.relative_to(root)))
    return found


def _plan(args, found: list[tuple[Path, Path]]) -> list[Job]:
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


def _read_photo(path: Path, max_bytes: int) -> tuple[bytes, int]:
    """The file's bytes and permission bits. A pipe, device or folder is refused before anything is read
    (opening without blocking, so a pipe named .jpg cannot hang the command), and so is a file over the
    size limit (a 2 GB file is never loaded to be refused)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAFile("not a regular file (a folder, pipe or device): nothing was read")
        if info.st_size > max_bytes:
            raise TooLarge(f"the file is {info.st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while being read
        raise TooLarge(f"the file is over the limit of {max_bytes / 1e6:.0f} MB")
    return data, stat.S_IMODE(info.st_mode) & 0o777


def _output_path(job: Job, extension: str) -> Path:
    if job.output_file:
        return job.output_file
    if job.in_place:
        if job.source.suffix.lower() in SUFFIXES_OF_EXTENSION[extension]:
            return job.source
        return job.source.with_suffix("." + extension)
    return job.out_stem.with_name(f"{job.out_stem.name}.{extension}")


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _write_atomically(path: Path, data: bytes, mode: int, new_name: bool = False) -> None:
    """Readers see the old file or the whole new one, never a half-written file: the data goes to a
    temporary file in the same folder, which then replaces the target in one step. new_name: the target
    must not exist yet (FileExistsError), so no other file is ever replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".shield-")
    claimed = False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        if new_name:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # claims the name
            claimed = True
        os.replace(temp, path)
    except BaseException:
        for leftover in (temp, path) if claimed else (temp,):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
        raise


def _run_job(job: Job, options, inputs: frozenset[tuple[int, int]]) -> dict:
    """Protect one file. inputs: the (device, inode) of every input of the run, none of which an output
    may replace (only --in-place replaces a file, and only its own input)."""
    from shield_server.pipeline import protect

    try:
        data, mode = _read_photo(job.source, options.max_bytes)
        result = protect(data, options)
        del data
        target = _output_path(job, result.extension)
        if job.in_place and target == job.source:
            _write_atomically(target, result.data, mode)
        elif job.in_place:  # a new format's name: never replaces another file
            try:
                _write_atomically(target, result.data, mode, new_name=True)
            except FileExistsError:
                raise OutputExists(f"{target} already exists and was not replaced; {job.source} was left "
                                   "unchanged (use --out-dir)") from None
            job.source.unlink()
        else:
            if _file_id(target) in inputs:
                raise BadOptions(f"refusing to overwrite the input {target}; use --in-place to replace inputs")
            _write_atomically(target, result.data, mode)
        return {"file": str(job.source), "output": str(target), **({"note": job.note} if job.note else {}),
                **result.report()}
    except ShieldError as exc:
        return _failure(job.source, exc.code, exc.message)
    except OSError as exc:
        return _failure(job.source, "io_error", exc.strerror or str(exc))
    except Exception as exc:  # an engine bug: this file fails (nothing written), the batch goes on
        return _failure(job.source, "internal", f"internal error ({type(exc).__name__})")


def _is_video(path: Path) -> bool:
    from shield_server.formats import sniff_video

    try:  # without blocking: a pipe named .mp4 must not hang the command (the photo path refuses it)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return False  # the photo path reports why the file cannot be read
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and sniff_video(os.read(fd, 64)) is not None
    finally:
        os.close(fd)


def _run_video_job(job: Job, args, inputs: frozenset[tuple[int, int]]) -> dict:
    """One clip, in this process (the detector already uses every core), with a frame progress bar on
    stderr. The clip is streamed from its file and the result written beside its target, then renamed."""
    from tqdm import tqdm

    from shield_server.video import VideoOptions, protect_video

    given = {"fill": args.fill, "margin": args.margin, "mode": args.mode, "sticker": args.sticker,
             "format": "mp4" if args.format in (None, "same") else args.format,
             "audio": "drop" if args.no_audio else "keep"}
    temp = None
    try:
        if args.region or args.keep:
            raise BadOptions("--region and --keep are for photos; a video's faces are found in every frame.")
        options = VideoOptions.from_params({k: str(v) for k, v in given.items() if v is not None})
        mode = stat.S_IMODE(os.stat(job.source).st_mode) & 0o777
        target = _output_path(job, "mp4")
        if not job.in_place and _file_id(target) in inputs:
            raise BadOptions(f"refusing to overwrite the input {target}; use --in-place to replace inputs")
        exists = OutputExists(f"{target} already exists and was not replaced; {job.source} was left "
                              "unchanged (use --out-dir)")
        if job.in_place and target != job.source and target.exists():
            raise exists  # known before minutes of work; the exclusive create below settles races
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".shield-", suffix=".mp4")
        os.close(fd)
        with tqdm(total=0, unit="frame", disable=args.json, file=sys.stderr, desc=job.source.name) as bar:
            def show(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)
            result = protect_video(job.source, temp, options, progress=show)
        os.chmod(temp, mode)
        if job.in_place and target != job.source:  # a new name: never replaces another file
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                raise exists from None
            os.replace(temp, target)
            job.source.unlink()
        else:
            os.replace(temp, target)
        return {"file": str(job.source), "output": str(target), **({"note": job.note} if job.note else {}),
                "faces": result.faces_per_frame_max, **result.report()}
    except ShieldError as exc:
        return _failure(job.source, exc.code, exc.message)
    except OSError as exc:
        return _failure(job.source, "io_error", exc.strerror or str(exc))
    finally:
        if temp:
            Path(temp).unlink(missing_ok=True)


@contextlib.contextmanager
def native_stderr_silenced(silenced: bool):
    """MediaPipe's TFLite and absl write INFO/WARNING lines straight to file descriptor 2 when their models
    load and first run ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires..."); no
    setting of theirs reaches those from Python. Unless --verbose, descriptor 2 points at the null device
    meanwhile; Python's own errors are reported by the caller after it is restored."""
    if not silenced:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _init_worker(parent: int, quiet: bool) -> None:
    import cv2

    cv2.setNumThreads(1)  # the batch already uses one process per core
    _die_with_parent(parent)
    if quiet:  # a worker reports through its results only: the libraries' messages go to the null device
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive the command: after a kill -9 of the main process, the pool's workers would
    wait for work forever, each holding the models (~400 MB)."""
    try:  # Linux: the kernel kills this process when its parent dies
        import ctypes
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass

    def watch():  # elsewhere, and if the parent died before prctl: notice it within a second
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _redact(args) -> int:
    from shield_server.pipeline import ProtectOptions

    output_format = args.format or (SUFFIX_FORMATS.get(Path(args.output).suffix.lower()) if args.output else None)
    given = {"fill": args.fill, "margin": args.margin, "format": output_format, "mode": args.mode,
             "sticker": args.sticker, "regions": _boxes_json(args.region), "keep": _boxes_json(args.keep)}
    options = ProtectOptions.from_params({k: str(v) for k, v in given.items() if v is not None})
    found, skipped, earlier_outputs = _collect(args.paths)
    if earlier_outputs:
        print(f"shield: skipped {len(earlier_outputs)} file(s) named *.protected.* in the folders given "
              "(outputs of an earlier run); name such a file to protect it again", file=sys.stderr)
    jobs = _plan(args, found)
    if not jobs:
        _print_failures(skipped)
        print("shield: no images found", file=sys.stderr)
        return 2
    inputs = frozenset(filter(None, (_file_id(job.source) for job in jobs)))
    video_jobs = [job for job in jobs if _is_video(job.source)]
    jobs = [job for job in jobs if job not in video_jobs]
    workers = min(args.jobs or os.cpu_count() or 1, len(jobs))
    progress = _progress(len(jobs), quiet=args.json or len(jobs) <= 1)
    results = []
    if workers <= 1:
        for job in jobs:
            with native_stderr_silenced(not args.verbose):
                results.append(_run_job(job, options, inputs))
            progress.update()
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(os.getpid(), not args.verbose)) as pool:
            for result in pool.map(_run_job, jobs, [options] * len(jobs), [inputs] * len(jobs)):
                results.append(result)
                progress.update()
    progress.close()
    results += [_run_video_job(job, args, inputs) for job in video_jobs]
    jobs += video_jobs
    results += skipped
    failures = [r for r in results if "error" in r]
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        print()
    else:
        for r in results:
            if "error" not in r and len(jobs) == 1:
                print(f"{r['output']}: {r['faces']} face(s) replaced")
            if r.get("note"):
                print(f"shield: {r['file']} -> {r['output']} ({r['note']})", file=sys.stderr)
    _print_failures(failures)
    if len(results) > 1 and not args.json:
        print(f"{len(results) - len(failures)} protected, {len(failures)} failed, "
              f"{sum(r.get('faces', 0) for r in results)} face(s) replaced", file=sys.stderr)
    return 1 if failures else 0


def _boxes_json(boxes: list[str] | None) -> str | None:
    """--region/--keep "x0,y0,x1,y1" values as the JSON list the options take (checked there)."""
    return f"[{','.join(f'[{box}]' for box in boxes)}]" if boxes else None


def _print_failures(failures: list[dict]) -> None:
    for r in failures:
        print(f"shield: {r['file']}: {r['message']}", file=sys.stderr)


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
    red.add_argument("--fill", help="a colour (#RRGGBB, default #000000), 'noise' or 'sticker'")
    red.add_argument("--sticker", choices=list(redact.STICKERS), help="the sticker of --fill sticker "
                     "(default smile)")
    red.add_argument("--region", action="append", metavar="X0,Y0,X1,Y1", help="also replace this rectangle, "
                     "in pixels of the photo shown upright (repeatable; applies to every input)")
    red.add_argument("--keep", action="append", metavar="X0,Y0,X1,Y1", help="leave the detected face with "
                     "this box as it is (repeatable; see the boxes of --json)")
    red.add_argument("--format", choices=["same", "png", "jpeg", "webp"], help="output format (default: same)")
    red.add_argument("--margin", type=float, help=f"head margin around each face box, as a fraction of "
                     f"its size (default {redact.DEFAULT_MARGIN})")
    red.add_argument("--mode", choices=["faces", "people"], help="replace faces (default) or whole people")
    red.add_argument("--no-audio", action="store_true", help="videos: drop the sound track (default: kept)")
    red.add_argument("--json", action="store_true", help="print a JSON report instead of a summary")
    red.add_argument("--jobs", type=int, help="processes for batches (default: one per core)")
    red.add_argument("--verbose", action="store_true", help="show the ML libraries' own messages")
    red.set_defaults(run=_redact)

    srv = commands.add_parser("serve", help="run the local server the browser extension talks to")
    srv.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 47321)")
    srv.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                     help="another extension origin allowed to call the server (repeatable)")
    srv.add_argument("--verbose", action="store_true", help="show the ML libraries' own messages at start-up")
    srv.set_defaults(run=lambda a: _server_command("main", a))

    pair = commands.add_parser("pair", help="show the pairing token for the extension")
    pair.add_argument("--rotate", action="store_true", help="replace the token (re-pair the extension)")
    pair.set_defaults(run=lambda a: _server_command("pair", a))

    svc = commands.add_parser("service", help="start the server at login and restart it on failure")
    svc.add_argument("action", choices=["install", "uninstall", "status"])
    svc.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 47321)")
    svc.add_argument("--no-register", action="store_true",
                     help="only write the service file; do not register or start it")
    svc.set_defaults(run=_service_command)
    return parser


def _service_command(args) -> int:
    from shield_server import service

    return service.main(args)


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
