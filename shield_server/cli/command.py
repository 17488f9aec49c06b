"""The command line: `shield redact|serve|pair|service`."""

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from shield_server import __version__, redact
from shield_server.cli.files import collect, plan
from shield_server.cli.workers import init_worker, is_video, run_job, run_video_job
from shield_server.cli.writing import file_id
from shield_server.errors import ShieldError
from shield_server.native_output import native_stderr_silenced

# -o FILE without --format: the file's suffix chooses the format.
SUFFIX_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp"}


def _redact(args) -> int:
    from shield_server.pipeline import ProtectOptions

    output_format = args.format or (SUFFIX_FORMATS.get(Path(args.output).suffix.lower()) if args.output else None)
    given = {"fill": args.fill, "margin": args.margin, "format": output_format, "mode": args.mode,
             "sticker": args.sticker, "regions": _boxes_json(args.region), "keep": _boxes_json(args.keep)}
    options = ProtectOptions.from_params({k: str(v) for k, v in given.items() if v is not None})
    found, skipped, earlier_outputs = collect(args.paths)
    if earlier_outputs:
        print(f"shield: skipped {len(earlier_outputs)} file(s) named *.protected.* in the folders given "
              "(outputs of an earlier run); name such a file to protect it again", file=sys.stderr)
    jobs = plan(args, found)
    if not jobs:
        _print_failures(skipped)
        print("shield: no images found", file=sys.stderr)
        return 2
    inputs = frozenset(filter(None, (file_id(job.source) for job in jobs)))
    video_jobs = [job for job in jobs if is_video(job.source)]
    jobs = [job for job in jobs if job not in video_jobs]
    workers = min(args.jobs or os.cpu_count() or 1, len(jobs))
    progress = _progress(len(jobs), quiet=args.json or len(jobs) <= 1)
    results = []
    if workers <= 1:
        for job in jobs:
            with native_stderr_silenced(not args.verbose):
                results.append(run_job(job, options, inputs))
            progress.update()
    else:
        with ProcessPoolExecutor(workers, initializer=init_worker, initargs=(os.getpid(), not args.verbose)) as pool:
            for result in pool.map(run_job, jobs, [options] * len(jobs), [inputs] * len(jobs)):
                results.append(result)
                progress.update()
    progress.close()
    results += [run_video_job(job, args, inputs) for job in video_jobs]
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
