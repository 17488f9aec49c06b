"""The command line: `shield redact|serve|pair|service`."""

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from shield_server import __version__, redact
from shield_server.cli.files import collect, plan
from shield_server.cli.workers import OPTION_FLAGS, init_worker, is_video, run_job, run_video_job
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
    found, skipped, earlier_outputs, not_media = collect(args.paths)
    if earlier_outputs:
        print(f"shield: skipped {_count(len(earlier_outputs), 'file')} named *.protected.* in the folders given "
              f"(outputs of an earlier run: {_names(earlier_outputs)}); name such a file to protect it again",
              file=sys.stderr)
    if not_media:
        print(f"shield: skipped {_count(len(not_media), 'file')} in the folders given that "
              f"{'is not a photo or a video' if len(not_media) == 1 else 'are not photos or videos'} "
              f"(by name): {_names(not_media)}", file=sys.stderr)
    jobs = plan(args, found)
    if not jobs:
        _print_failures(skipped)
        print("shield: no photos or videos found", file=sys.stderr)
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
                print(f"{r['output']}: {_what_was_replaced(r, args.mode)}")
            if r.get("note"):
                print(f"shield: {r['file']} -> {r['output']} ({r['note']})", file=sys.stderr)
    _print_failures(failures)
    if len(results) > 1 and not args.json:
        print(f"{len(results) - len(failures)} protected, {len(failures)} failed, "
              f"{_count(sum(r.get('faces', 0) for r in results), 'face')} "
              f"{'found and replaced with their people' if args.mode == 'people' else 'replaced'}", file=sys.stderr)
    return 1 if failures else 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _names(paths: list[Path], shown: int = 10) -> str:
    names = ", ".join(str(path) for path in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def _what_was_replaced(report: dict, mode: str | None) -> str:
    if mode == "people":  # everyone the segmentation found, with or without a detected face
        return (f"whole people replaced ({report.get('replaced_share', 0):.0%} of the photo; "
                f"{_count(report['faces'], 'face')} found among them)")
    return f"{_count(report['faces'], 'face')} replaced"


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

    red = commands.add_parser(
        "redact", help="protect image and video files (faces replaced, metadata removed)",
        description="Protect photos and videos: every face found is replaced (solid colour, noise or a sticker; "
        "never blurred) and all metadata removed. Writes <name>.protected.<ext> beside each input unless told "
        "otherwise. Exit codes: 0 every file taken was protected (files skipped in folders do not count); 1 a "
        "file could not be protected, a folder could not be read or a link leads nowhere; 2 nothing done (a "
        "wrong option, or no photo or video found); 130 interrupted.")
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

    srv = commands.add_parser(
        "serve", help="run the local server the browser extension talks to",
        description="Run the local server on 127.0.0.1 only: the browser extension and the web page "
        "(http://127.0.0.1:47321/) send photos to it. Ctrl+C stops it. Exit code 1 if it cannot start.")
    srv.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 47321)")
    srv.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                     help="another extension origin allowed to call the server (repeatable)")
    srv.add_argument("--verbose", action="store_true", help="show the ML libraries' own messages at start-up")
    srv.set_defaults(run=lambda a: _server_command("main", a))

    pair = commands.add_parser(
        "pair", help="show the pairing token for the extension",
        description="Print the pairing token to paste into the extension's options (pairing by hand; the "
        "extension's welcome page pairs in one click instead). --rotate replaces it: every paired browser must "
        "then be paired again.")
    pair.add_argument("--rotate", action="store_true", help="replace the token (re-pair the extension)")
    pair.set_defaults(run=lambda a: _server_command("pair", a))

    svc = commands.add_parser(
        "service", help="start the server at login and restart it on failure",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start the server at login and restart it if it stops: a systemd user service on Linux, a "
        "LaunchAgent on macOS, a Task Scheduler task on Windows.\n\n"
        "  install    write the service file and register it (it starts now and at every login)\n"
        "  uninstall  unregister it and remove the file\n"
        "  status     say whether it is installed, registered and running, and whether the server answers\n\n"
        "Exit codes: 0 done; 1 install wrote the file but could not register it (it prints the commands "
        "that would, or says that this system has no user service manager and `shield serve` must be "
        "started by hand), or status found it not installed; 2 this system is not supported.")
    svc.add_argument("action", choices=["install", "uninstall", "status"],
                     help="install, uninstall or status (above)")
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
        print(f"shield: {exc.message_for(OPTION_FLAGS)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
