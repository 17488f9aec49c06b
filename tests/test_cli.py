"""The `shield redact` command, run as a real process, including the benchmark contract."""

import ctypes
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photos import ASTRONAUT_FACE, astronaut, core, decode, encode, oriented_jpeg

SHIELD = [sys.executable, "-m", "shield_server"]


def shield(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*SHIELD, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def magenta_share(pixels: np.ndarray) -> float:
    return float((pixels[..., :3] == (255, 0, 255)).all(-1).mean())


def test_benchmark_contract(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    (source / "portrait.jpg").write_bytes(oriented_jpeg(astronaut()[:, :384], orientation=6))
    (source / "square.png").write_bytes(encode(astronaut(), "PNG"))
    (source / "notes.txt").write_text("not an image, and not picked from a folder")
    run = shield("redact", source, "--out-dir", tmp_path / "out", "--fill", "#FF00FF", "--format", "png")
    assert run.returncode == 0, run.stderr
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["portrait.png", "square.png"]
    portrait = np.array(Image.open(tmp_path / "out" / "portrait.png"))
    assert portrait.shape[:2] == (512, 384)  # stored 384 high and 512 wide, displayed turned upright
    assert magenta_share(portrait[core(ASTRONAUT_FACE)]) == 1.0
    square = np.array(Image.open(tmp_path / "out" / "square.png"))
    assert magenta_share(square[core(ASTRONAUT_FACE)]) == 1.0


def test_inputs_are_never_overwritten_without_in_place(tmp_path):
    photo = tmp_path / "photo.png"
    original = encode(astronaut(), "PNG")
    photo.write_bytes(original)
    run = shield("redact", photo, "--out-dir", tmp_path)
    assert run.returncode == 1 and "--in-place" in run.stderr
    assert photo.read_bytes() == original
    run = shield("redact", photo)
    assert run.returncode == 0 and (tmp_path / "photo.protected.png").exists()
    assert photo.read_bytes() == original
    run = shield("redact", photo, "--in-place")
    assert run.returncode == 0 and photo.read_bytes() != original


def test_every_failure_is_reported_with_file_and_reason(tmp_path):
    (tmp_path / "good.png").write_bytes(encode(astronaut(), "PNG"))
    (tmp_path / "truncated.jpg").write_bytes(encode(astronaut(), "JPEG")[:2000])
    (tmp_path / "empty.png").write_bytes(b"")
    run = shield("redact", tmp_path, "--out-dir", tmp_path / "out", "--jobs", "2")
    assert run.returncode == 1
    assert "truncated.jpg" in run.stderr and "empty.png" in run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_json_report_and_single_output(tmp_path):
    (tmp_path / "a.png").write_bytes(encode(astronaut(), "PNG"))
    run = shield("redact", tmp_path / "a.png", "-o", tmp_path / "b.jpg", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report[0]["faces"] >= 1 and report[0]["output"].endswith("b.jpg")
    assert (tmp_path / "b.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_blur_is_refused_and_nothing_is_written(tmp_path):
    (tmp_path / "a.png").write_bytes(encode(astronaut(), "PNG"))
    run = shield("redact", tmp_path / "a.png", "--fill", "blur", "--out-dir", tmp_path / "out")
    assert run.returncode == 2 and "reversed or recognised" in run.stderr
    assert not (tmp_path / "out").exists()


def test_an_engine_crash_fails_that_file_only(tmp_path, monkeypatch):
    from shield_server import cli, pipeline

    def crash(data, options):
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(pipeline, "protect", crash)
    (tmp_path / "a.png").write_bytes(encode(astronaut(), "PNG"))
    code = cli.main(["redact", str(tmp_path / "a.png"), "--out-dir", str(tmp_path / "out")])
    assert code == 1
    assert not (tmp_path / "out").exists()


def sized_astronaut(size: int) -> np.ndarray:
    return np.array(Image.fromarray(astronaut()).resize((size, size)))


def heic(pixels: np.ndarray) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(pixels, "HEIF", quality=90)


def test_pipes_devices_and_huge_files_are_refused_before_reading(tmp_path):
    # Under a 4 GB address-space limit, reading the 5 GB file (or /dev/zero) to refuse it later would end in
    # MemoryError; the pipe would hang the command until the timeout.
    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as handle:
        handle.truncate(5_000_000_000)  # sparse: no disk used
    (tmp_path / "good.png").write_bytes(encode(astronaut(), "PNG"))

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    run = subprocess.run([*SHIELD, "redact", str(pipe), str(huge), "/dev/zero", str(tmp_path / "good.png"),
                          "--out-dir", str(tmp_path / "out"), "--jobs", "1"],
                         capture_output=True, text=True, timeout=60, preexec_fn=limit_memory)
    assert run.returncode == 1
    assert f"{pipe}: not a regular file" in run.stderr
    assert "/dev/zero: not a regular file" in run.stderr
    assert f"{huge}: the file is 5000.0 MB; the limit is 40 MB" in run.stderr
    assert "1 protected, 3 failed" in run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_inputs_sharing_a_name_get_distinct_outputs(tmp_path):
    sizes = {"IMG_1.jpg": 512, "IMG_1.jpeg": 480, "IMG_1.heic": 448, "IMG_1.bmp": 416}
    for name, size in sizes.items():
        pixels = sized_astronaut(size)
        (tmp_path / name).write_bytes(heic(pixels) if name.endswith(".heic") else
                                      encode(pixels, {"jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP"}[name[6:]]))
    for where, outputs in ((None, tmp_path), (tmp_path / "out", tmp_path / "out")):
        run = shield("redact", *(tmp_path / name for name in sizes), *(["--out-dir", where] if where else []),
                     "--fill", "#FF00FF", "--jobs", "2")
        assert run.returncode == 0, run.stderr
        assert "4 protected, 0 failed" in run.stderr and "same name with another extension" in run.stderr
        for name, size in sizes.items():
            output = outputs / (f"{name}.jpg" if where else f"{name}.protected.jpg")
            pixels = np.array(Image.open(output).convert("RGB"))
            assert pixels.shape[:2] == (size, size)  # each output is its own input's, none overwritten
            scaled = tuple(v * size // 512 for v in ASTRONAUT_FACE)
            assert np.abs(pixels[core(scaled)].astype(int) - (255, 0, 255)).max() < 24


def test_a_name_shared_twice_is_numbered(tmp_path):
    (tmp_path / "a.jpg").write_bytes(encode(sized_astronaut(256), "JPEG"))
    (tmp_path / "a.png").write_bytes(encode(sized_astronaut(240), "PNG"))
    (tmp_path / "a.jpg.png").write_bytes(encode(sized_astronaut(224), "PNG"))
    run = shield("redact", tmp_path, "--out-dir", tmp_path / "out", "--format", "png", "--json")
    assert run.returncode == 0, run.stderr
    outputs = {Path(r["file"]).name: Path(r["output"]).name for r in json.loads(run.stdout)}
    assert len(set(outputs.values())) == 3
    for name, size in (("a.jpg", 256), ("a.png", 240), ("a.jpg.png", 224)):
        assert Image.open(tmp_path / "out" / outputs[name]).size == (size, size)


def test_in_place_never_replaces_another_file(tmp_path):
    unrelated = encode(sized_astronaut(300), "JPEG")
    (tmp_path / "photo.jpg").write_bytes(unrelated)
    (tmp_path / "photo.jpeg").write_bytes(encode(astronaut(), "JPEG"))
    run = shield("redact", tmp_path / "photo.jpeg", "--in-place")
    assert run.returncode == 0, run.stderr
    assert Image.open(tmp_path / "photo.jpeg").size == (512, 512)  # protected under its own name
    assert (tmp_path / "photo.jpg").read_bytes() == unrelated

    original_heic = heic(astronaut())
    (tmp_path / "photo.heic").write_bytes(original_heic)
    run = shield("redact", tmp_path / "photo.heic", "--in-place")
    assert run.returncode == 1 and "photo.jpg already exists" in run.stderr
    assert (tmp_path / "photo.jpg").read_bytes() == unrelated
    assert (tmp_path / "photo.heic").read_bytes() == original_heic

    (tmp_path / "other.heic").write_bytes(original_heic)
    run = shield("redact", tmp_path / "other.heic", "--in-place")
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "other.heic").exists() and (tmp_path / "other.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_in_place_replaces_the_file_in_one_step(tmp_path):
    """A reader holding the original (an upload, a backup) keeps reading the whole original: the protected
    file is written beside it and swapped in, never written over it."""
    photo = tmp_path / "photo.png"
    original = encode(astronaut(), "PNG")
    photo.write_bytes(original)
    photo.chmod(0o640)
    with open(photo, "rb") as reader:
        run = shield("redact", photo, "--in-place")
        assert run.returncode == 0, run.stderr
        assert reader.read() == original
    assert photo.read_bytes() != original and decode(photo.read_bytes()).shape == (512, 512, 3)
    assert stat.S_IMODE(photo.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["photo.png"]  # no temporary file left behind


def without_root_file_access():
    """In the child before exec: root reads every folder; without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    (dropped from the bounding set, so the exec'd command never gets them) it obeys permissions too."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        for capability in (1, 2):
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_broken_links_and_unreadable_folders_are_reported(tmp_path):
    (tmp_path / "good.png").write_bytes(encode(astronaut(), "PNG"))
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "hidden.png").write_bytes(encode(astronaut(), "PNG"))
    (tmp_path / "locked").chmod(0)
    try:
        run = subprocess.run([*SHIELD, "redact", str(tmp_path), "--out-dir", str(tmp_path / "out")],
                             capture_output=True, text=True, timeout=300, preexec_fn=without_root_file_access)
    finally:
        (tmp_path / "locked").chmod(0o700)
    assert run.returncode == 1, run.stderr
    assert f"{tmp_path / 'gone.jpg'}: a link to a file that does not exist" in run.stderr
    assert f"{tmp_path / 'locked'}: folder not searched: Permission denied" in run.stderr
    assert "1 protected, 2 failed" in run.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:  # a zombie nobody reaps any more (the container's init may not) is dead too
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")
def test_workers_die_with_the_command(tmp_path):
    photo = encode(astronaut(), "PNG")
    for number in range(40):
        (tmp_path / f"{number:02}.png").write_bytes(photo)
    command = subprocess.Popen([*SHIELD, "redact", str(tmp_path), "--out-dir", str(tmp_path / "out"), "--jobs", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()):  # workers at work
            assert command.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        workers = children_of(command.pid)
        assert len(workers) >= 2
        command.kill()  # kill -9: the command gets no chance to stop its workers itself
        command.wait(10)
        deadline = time.monotonic() + 10
        while any(map(running, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(running, workers)), "worker processes outlived the killed command"
    finally:
        command.kill()
        for worker in filter(running, workers):
            os.kill(worker, signal.SIGKILL)


def test_library_messages_only_with_verbose(tmp_path):
    """A person whose face is hidden sends whole-person mode to MediaPipe's pose model, whose TFLite and absl
    write to the process's stderr themselves."""
    pixels = astronaut()
    pixels[60:190, 160:290] = 128
    (tmp_path / "a.png").write_bytes(encode(pixels, "PNG"))
    (tmp_path / "b.png").write_bytes(encode(pixels[:, ::-1].copy(), "PNG"))
    noise = ("TensorFlow Lite", "absl::", "inference_feedback_manager")
    for args in ((tmp_path / "a.png", "-o", tmp_path / "out.png"), (tmp_path, "--out-dir", tmp_path / "out", "--jobs", "2")):
        quiet = shield("redact", *args, "--mode", "people")
        assert quiet.returncode == 0, quiet.stderr
        assert not [n for n in noise if n in quiet.stderr], quiet.stderr
    verbose = shield("redact", tmp_path / "a.png", "-o", tmp_path / "out.png", "--mode", "people", "--verbose")
    assert verbose.returncode == 0 and "TensorFlow Lite" in verbose.stderr


def test_running_twice_on_a_folder_skips_its_earlier_outputs(tmp_path):
    (tmp_path / "a.png").write_bytes(encode(astronaut(), "PNG"))
    (tmp_path / "b.jpg").write_bytes(encode(astronaut(), "JPEG"))
    first = shield("redact", tmp_path, "--jobs", 1)
    assert first.returncode == 0, first.stderr
    outputs = {p.name: p.read_bytes() for p in tmp_path.glob("*.protected.*")}
    assert set(outputs) == {"a.protected.png", "b.protected.jpg"}
    again = shield("redact", tmp_path, "--jobs", 1)
    assert again.returncode == 0, again.stderr
    assert "skipped 2 files named *.protected.*" in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.protected.png", "b.jpg", "b.protected.jpg"]
    # An earlier output named explicitly is taken like any file.
    explicit = shield("redact", tmp_path / "a.protected.png")
    assert explicit.returncode == 0 and (tmp_path / "a.protected.protected.png").exists()


def test_in_place_refuses_links_and_leaves_every_photo_as_it_was(tmp_path):
    """--in-place on a symbolic link replaced the link and left the photo it pointed to unprotected, while the
    person believed it protected; a hard link kept the original under its other name. Both are refused, the
    batch goes on, and the message says what to do (README: --in-place)."""
    original = encode(astronaut(), "PNG")
    real = tmp_path / "real"
    real.mkdir()
    (real / "photo.png").write_bytes(original)
    (real / "other.png").write_bytes(original)
    (tmp_path / "link.png").symlink_to(real / "photo.png")
    os.link(real / "other.png", tmp_path / "second-name.png")
    (tmp_path / "plain.png").write_bytes(original)
    run = shield("redact", tmp_path / "link.png", tmp_path / "second-name.png", tmp_path / "plain.png", "--in-place")
    assert run.returncode == 1
    assert f"link.png: --in-place refused: this is a link to {real / 'photo.png'}" in run.stderr
    assert "second-name.png: --in-place refused: this file has 1 other name(s)" in run.stderr
    assert (tmp_path / "link.png").is_symlink() and (real / "photo.png").read_bytes() == original
    assert (real / "other.png").read_bytes() == original and (tmp_path / "second-name.png").read_bytes() == original
    assert (tmp_path / "plain.png").read_bytes() != original  # the rest of the batch was protected
    run = shield("redact", real / "photo.png", "--in-place")  # on the file itself, as the message says
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "link.png").read_bytes() != original and (tmp_path / "link.png").is_symlink()
