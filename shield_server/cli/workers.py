"""Protecting one file: a photo (in a worker process for batches) or a clip (in the command's process)."""

import os
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

from shield_server.cli.files import Job, failure, output_path
from shield_server.cli.writing import OutputExists, check_in_place, claim_name, file_id, open_without_blocking, \
    read_photo, write_atomically
from shield_server.errors import BadOptions, ShieldError
from shield_server.native_output import stderr_to_null

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# The flag a person typed, for each option an error message names (the API names them by field).
OPTION_FLAGS = {"regions": "--region", "keep": "--keep", "fill": "--fill", "margin": "--margin", "mode": "--mode",
                "sticker": "--sticker", "format": "--format"}


def run_job(job: Job, options, inputs: frozenset[tuple[int, int]]) -> dict:
    """Protect one photo. inputs: the (device, inode) of every input of the run, none of which an output
    may replace (only --in-place replaces a file, and only its own input)."""
    from shield_server.pipeline import protect

    try:
        if job.in_place:
            check_in_place(job.source)
        data, mode = read_photo(job.source, options.max_bytes)
        result = protect(data, options)
        del data
        target = output_path(job, result.extension)
        if job.in_place and target == job.source:
            write_atomically(target, result.data, mode)
        elif job.in_place:  # a new format's name: never replaces another file
            try:
                write_atomically(target, result.data, mode, new_name=True)
            except FileExistsError:
                raise _exists(job, target) from None
            job.source.unlink()
        else:
            _refuse_overwriting_an_input(target, inputs)
            write_atomically(target, result.data, mode)
        return _done(job, target, result.report())
    except ShieldError as exc:
        return failure(job.source, exc.code, exc.message_for(OPTION_FLAGS))
    except OSError as exc:
        return failure(job.source, "io_error", exc.strerror or str(exc))
    except Exception as exc:  # an engine bug: this file fails (nothing written), the batch goes on
        return failure(job.source, "internal", f"internal error ({type(exc).__name__})")


def is_video(path: Path) -> bool:
    from shield_server.formats import sniff_video

    try:
        fd = open_without_blocking(path)
    except OSError:
        return False  # the photo path reports why the file cannot be read
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and sniff_video(os.read(fd, 64)) is not None
    finally:
        os.close(fd)


def run_video_job(job: Job, args, inputs: frozenset[tuple[int, int]]) -> dict:
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
        if job.in_place:
            check_in_place(job.source)
        options = VideoOptions.from_params({k: str(v) for k, v in given.items() if v is not None})
        mode = stat.S_IMODE(os.stat(job.source).st_mode) & 0o777
        target = output_path(job, "mp4")
        if not job.in_place:
            _refuse_overwriting_an_input(target, inputs)
        if job.in_place and target != job.source and target.exists():
            raise _exists(job, target)  # known before minutes of work; the exclusive create below settles races
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
                claim_name(target)
            except FileExistsError:
                raise _exists(job, target) from None
            os.replace(temp, target)
            job.source.unlink()
        else:
            os.replace(temp, target)
        return _done(job, target, {"faces": result.faces_per_frame_max, **result.report()})
    except ShieldError as exc:
        return failure(job.source, exc.code, exc.message_for(OPTION_FLAGS))
    except OSError as exc:
        return failure(job.source, "io_error", exc.strerror or str(exc))
    except Exception as exc:  # an engine bug: this clip fails (nothing written), the batch goes on
        return failure(job.source, "internal", f"internal error ({type(exc).__name__})")
    finally:
        if temp:
            Path(temp).unlink(missing_ok=True)


def _refuse_overwriting_an_input(target: Path, inputs: frozenset[tuple[int, int]]) -> None:
    if file_id(target) in inputs:
        raise BadOptions(f"refusing to overwrite the input {target}; use --in-place to replace inputs")


def _exists(job: Job, target: Path) -> OutputExists:
    return OutputExists(f"{target} already exists and was not replaced; {job.source} was left unchanged "
                        "(use --out-dir)")


def _done(job: Job, target: Path, report: dict) -> dict:
    return {"file": str(job.source), "output": str(target), **({"note": job.note} if job.note else {}), **report}


def init_worker(parent: int, quiet: bool) -> None:
    import cv2

    cv2.setNumThreads(1)  # the batch already uses one process per core
    _die_with_parent(parent)
    if quiet:  # a worker reports through its results only: the libraries' messages go to the null device
        stderr_to_null()


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
