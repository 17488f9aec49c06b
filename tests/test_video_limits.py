"""Video bounded whatever the file says: bombs (an index of 89 million samples, later frames far larger than
the header's, codecs outside the list) refused with every process's peak memory measured; degenerate clips
(1x1, no frame) refused clearly, in the server and in a CLI batch that goes on; the output's size bounded;
abandoned jobs removed on time by the server's timer, and at once when cancelled while uploading."""

import json
import os
import subprocess
import sys
import time

import pytest

from server_process import REPO_ROOT, start_server
from shield_server import video, video_bounds
from shield_server.errors import ShieldError
from shield_server.video import VideoOptions, protect_video
from shield_server.video_sandbox import decode_ceiling
from video_bombs import empty_clip, index_bomb, mjpeg_bomb, size_bomb, tiny_clip
from test_video import _job_folders
from videos import MAGENTA, decode_frames, magenta_share, make_clip

MB = 1 << 20
# No process may come near what the bombs cost before (CLI: 3.3 GB for the index bomb, 1.9 GB for
# 16384x9216 frames): the decoding child stays under its ceiling for a 64x36 header, the CLI itself
# under what its imports take (~200 MB; the detector is never loaded for a refused clip).
PEAK_LIMIT = decode_ceiling(64 * 36)

# name: (maker, refusal code, words of the message)
BOMBS = {
    "index.mp4": (index_bomb, "too_large", "index lists 89000000 frames"),
    "later-8k.mp4": (lambda p: size_bomb(p, 8192, 4608), "too_large", "8192x4608"),
    "later-16k.mp4": (lambda p: size_bomb(p, 16384, 9216), "too_large", "memory"),
    "mjpeg.mkv": (lambda p: mjpeg_bomb(p, 8192, 4608), "unsupported_media_type", "MJPEG"),
}
DEGENERATE = {
    "one-pixel.mp4": (lambda p: tiny_clip(p, 1, 1, 12), "at least 16x16"),
    "no-frame.mp4": (empty_clip, "no frame"),
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    for name, (make, _, _) in BOMBS.items():
        make(folder / name)
    assert (folder / "index.mp4").stat().st_size < 2000
    return folder


def peak_of(command: list[str]) -> tuple[subprocess.CompletedProcess, int]:
    """Runs command and returns it with the highest resident memory any of its processes reached (the
    command and the decoding child it starts: RUSAGE_CHILDREN of a process that only waits for it)."""
    wrapper = ("import resource, subprocess, sys; run = subprocess.run(sys.argv[1:], capture_output=True, "
               "text=True); print(run.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
               ".ru_maxrss); sys.stderr.write(run.stderr)")
    run = subprocess.run([sys.executable, "-c", wrapper, *command], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    returncode, peak_kb = run.stdout.split()
    return subprocess.CompletedProcess(command, int(returncode), "", run.stderr), int(peak_kb) * 1024


@pytest.mark.parametrize("name", BOMBS)
def test_bomb_refused_by_the_cli_with_memory_bounded(bombs, tmp_path, name):
    words = BOMBS[name][2]
    out = tmp_path / "out.mp4"
    run, peak = peak_of([sys.executable, "-m", "shield_server", "redact", str(bombs / name), "-o", str(out)])
    assert run.returncode == 1 and words in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert peak < PEAK_LIMIT, f"{name}: a process peaked at {peak / MB:.0f} MB"
    assert not out.exists()


@pytest.mark.parametrize("name", BOMBS)
def test_bomb_refused_by_the_engine_with_a_clear_reason(bombs, tmp_path, name):
    _, code, words = BOMBS[name]
    with pytest.raises(ShieldError) as caught:
        protect_video(bombs / name, tmp_path / "out.mp4")
    assert caught.value.code == code and words in caught.value.message, caught.value.message
    assert not (tmp_path / "out.mp4").exists()


def test_frame_size_change_within_the_limit_refused(tmp_path):
    """Every frame is checked, not only the header: a third frame of 640x360 in a 64x36 clip is refused
    (the encoder was opened for the first size)."""
    size_bomb(tmp_path / "grows.mp4", 640, 360)
    with pytest.raises(ShieldError) as caught:
        protect_video(tmp_path / "grows.mp4", tmp_path / "out.mp4")
    assert caught.value.code == "undecodable_video" and "from 64x36 to 640x360" in caught.value.message


def test_output_size_bounded_whatever_the_pictures(tmp_path):
    """Noise fill over a face that covers much of the frame is what x264 cannot compress: without the
    bitrate ceiling this clip's output is ~2x the bound."""
    source, out = tmp_path / "face.mp4", tmp_path / "out.mp4"
    make_clip(source, frames=48, fps=12, audio=False)
    result = protect_video(source, out, VideoOptions(fill="noise"))
    assert result.frames == 48
    bound = video_bounds.max_output_bytes(320, 240, 12, 48 / 12, 0)
    assert out.stat().st_size <= bound, (out.stat().st_size, bound)


def test_pictures_and_sound_through_the_pipe_where_there_is_no_shared_memory(tmp_path, monkeypatch):
    """macOS and Windows have no memfd: the child sends the pictures through its stdout instead."""
    source, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    truth = make_clip(source, frames=12)
    monkeypatch.delattr(os, "memfd_create")
    result = protect_video(source, out, VideoOptions(color=MAGENTA))
    assert result.frames == 12 and result.audio
    assert min(magenta_share(rgb, box) for rgb, box in zip(decode_frames(out), truth)) >= 0.95


def test_single_frame_clip_protected(tmp_path):
    source, out = tmp_path / "one.mp4", tmp_path / "out.mp4"
    make_clip(source, frames=1, audio=False)
    assert protect_video(source, out).frames == 1
    assert len(decode_frames(out)) == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = start_server(tmp_path_factory.mktemp("config"), env={**os.environ, "SHIELD_VIDEO_JOB_TTL_S": "3"})
    yield process
    process.stop()


def _wait(server, job_id, states, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = server.request("GET", f"/v1/video/{job_id}").json()
        if status["state"] in states:
            return status
        time.sleep(0.2)
    raise AssertionError(f"job never reached {states}: {status}")


def _peak_memory(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def test_server_refuses_bombs_and_degenerate_clips_and_stays_bounded(server, bombs, tmp_path):
    cases = {name: (bombs / name, code, words) for name, (_, code, words) in BOMBS.items()}
    for name, (make, words) in DEGENERATE.items():
        make(tmp_path / name)
        cases[name] = (tmp_path / name, "undecodable_video", words)
    statuses = {"too_large": 413, "unsupported_media_type": 415, "undecodable_video": 422}
    before = _peak_memory(server.pid)
    for name, (path, code, words) in cases.items():
        job = server.request("POST", "/v1/video", body=path.read_bytes())
        assert job.status == 202, job
        status = _wait(server, job.json()["id"], ("done", "failed"))
        assert status["state"] == "failed" and status["error"] == code and words in status["message"], (name, status)
        assert server.request("GET", f"/v1/video/{job.json()['id']}/result").status == statuses[code]
    assert server.request("GET", "/v1/health").status == 200
    grown = _peak_memory(server.pid) - before
    assert grown < 100 * MB, f"the server's peak grew by {grown / MB:.0f} MB"  # by 3.3-4.7 GB before isolation
    assert not _job_folders(server)


def test_cancelling_an_upload_removes_its_folder_at_once(server):
    part = server.request("POST", "/v1/video?more=1", body=b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000)
    assert part.status == 202
    folders = _job_folders(server)
    assert len(folders) == 1 and (folders[0] / "input").exists()
    assert server.request("DELETE", f"/v1/video/{part.json()['id']}").status == 204
    assert not folders[0].exists()
    assert server.request("POST", f"/v1/video/{part.json()['id']}/part?offset=1032", body=b"x").status == 404


def test_abandoned_jobs_expire_on_time_without_any_request(server, tmp_path):
    """A partial upload and an unfetched result go when their (shortened: 3 s) time is up, although no
    request comes to trigger a clean-up."""
    source = tmp_path / "clip.mp4"
    make_clip(source, frames=6, audio=False)
    done = server.request("POST", "/v1/video", body=source.read_bytes()).json()
    assert _wait(server, done["id"], ("done", "failed"))["state"] == "done"
    partial = server.request("POST", "/v1/video?more=1", body=source.read_bytes()[:1000]).json()
    folders = _job_folders(server)
    assert len(folders) == 2
    deadline = time.monotonic() + 30  # no request from here on: only the timer can remove them
    while any(folder.exists() for folder in folders) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(folder.exists() for folder in folders)
    for job in (done, partial):
        assert server.request("GET", f"/v1/video/{job['id']}").status == 404


def test_cli_batch_goes_on_after_degenerate_clips(tmp_path):
    for name, (make, _) in DEGENERATE.items():
        make(tmp_path / name)
    truth = make_clip(tmp_path / "holiday.mp4", frames=6, audio=False)
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(tmp_path / "one-pixel.mp4"),
                          str(tmp_path / "holiday.mp4"), str(tmp_path / "no-frame.mp4"), "--json"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    report = {entry["file"].rsplit("/", 1)[1]: entry for entry in json.loads(run.stdout)}
    assert report["holiday.mp4"]["frames"] == len(truth)
    for name, (_, words) in DEGENERATE.items():
        assert report[name]["error"] == "undecodable_video" and words in report[name]["message"]
    assert (tmp_path / "holiday.protected.mp4").exists()
    summary = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(tmp_path / "one-pixel.mp4"),
                              str(tmp_path / "no-frame.mp4")], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=300)
    assert summary.returncode == 1 and "0 protected, 2 failed" in summary.stderr, summary.stderr


def test_cli_batch_goes_on_after_a_video_engine_crash(tmp_path, monkeypatch, capsys):
    from shield_server import cli, video

    real = video.protect_video

    def crash_on_first(source, target, *args, **kwargs):
        if "first" in str(source):
            raise RuntimeError("decoder exploded")
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(video, "protect_video", crash_on_first)
    for name in ("first.mp4", "second.mp4"):
        make_clip(tmp_path / name, frames=4, audio=False)
    code = cli.main(["redact", str(tmp_path / "first.mp4"), str(tmp_path / "second.mp4")])
    assert code == 1
    assert "1 protected, 1 failed" in capsys.readouterr().err
    assert (tmp_path / "second.protected.mp4").exists() and not (tmp_path / "first.protected.mp4").exists()
