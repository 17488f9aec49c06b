"""The `shield redact` command, run as a real process, including the benchmark contract."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from photos import ASTRONAUT_FACE, astronaut, core, encode, oriented_jpeg

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
