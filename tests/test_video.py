"""Video protection, judged by decoding what was written: every frame's face replaced, metadata gone,
audio kept or dropped, rotation honoured, bad clips refused; through the engine, the CLI and a real server."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest

from server_process import REPO_ROOT, start_server
from shield_server import video, video_faces
from shield_server.errors import ShieldError
from shield_server.video import VideoOptions, protect_video
from videos import (AUDIO_HANDLER, AUDIO_LANGUAGE, CHAPTER, COVER, CREATION, GPS, MAGENTA, VIDEO_HANDLER,
                    decode_frames, magenta_share, make_clip, upright_frames)

MAGENTA_OPTIONS = VideoOptions(color=MAGENTA)


def assert_every_face_replaced(output, truth):
    frames = decode_frames(output)
    assert len(frames) == len(truth)
    shares = [magenta_share(rgb, box) for rgb, box in zip(frames, truth)]
    assert min(shares) >= 0.95, f"face not replaced in frames {[i for i, s in enumerate(shares) if s < 0.95]}"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return path, make_clip(path)


def test_every_frame_face_replaced_and_metadata_gone(clip, tmp_path):
    source, truth = clip
    with av.open(str(source)) as original:  # the fixture really carries what must go
        assert original.metadata.get("location") == GPS and "creation_time" in original.metadata
        assert original.chapters() and "data" in [s.type for s in original.streams]
        assert original.streams.video[0].metadata.get("handler_name") == VIDEO_HANDLER
        assert original.streams.audio[0].metadata.get("handler_name") == AUDIO_HANDLER
        assert original.streams.audio[0].metadata.get("language") == AUDIO_LANGUAGE
        assert max(magenta_share(rgb, box) for rgb, box in zip(decode_frames(source), truth)) == 0
    out = tmp_path / "out.mp4"
    result = protect_video(source, out, MAGENTA_OPTIONS)
    assert (result.frames, result.width, result.height, result.audio) == (24, 320, 240, True)
    assert_every_face_replaced(out, truth)

    with av.open(str(out)) as clip_out:
        assert set(clip_out.metadata) <= {"major_brand", "minor_version", "compatible_brands"}
        assert [s.type for s in clip_out.streams] == ["video", "audio"]
        assert clip_out.streams.video[0].codec_context.name == "h264"
        assert float(clip_out.streams.video[0].average_rate) == pytest.approx(12, rel=0.01)
        for stream in clip_out.streams:  # the muxer's own values only, never the source's
            assert set(stream.metadata) <= {"language", "handler_name", "vendor_id"}
            assert stream.metadata.get("language", "und") == "und", stream.metadata
            assert stream.metadata.get("handler_name") in (None, "VideoHandler", "SoundHandler"), stream.metadata
            assert stream.metadata.get("vendor_id") in (None, "[0][0][0][0]"), stream.metadata
        assert not clip_out.chapters()
    raw = out.read_bytes()
    for secret in (GPS.encode(), b"\xa9xyz", b"2024", b"Apple", b"iPhone", b"ISO6709", b"Lavf", CHAPTER.encode(),
                   VIDEO_HANDLER.encode(), AUDIO_HANDLER.encode(), b"Anna"):
        assert secret not in raw, secret


def test_mkv_chapters_and_cover_art_dropped(tmp_path):
    source, out = tmp_path / "clip.mkv", tmp_path / "out.mp4"
    truth = make_clip(source, frames=12, container="matroska")
    with av.open(str(source)) as original:
        assert original.chapters() and len(original.streams.video) == 2  # the cover is a picture stream
    protect_video(source, out, MAGENTA_OPTIONS)
    assert_every_face_replaced(out, truth)
    with av.open(str(out)) as clip_out:
        assert [s.type for s in clip_out.streams] == ["video", "audio"] and not clip_out.chapters()
    raw = out.read_bytes()
    assert CHAPTER.encode() not in raw and COVER[4:40] not in raw and GPS.encode() not in raw


def test_audio_kept_then_dropped(clip, tmp_path):
    source, _ = clip
    kept, dropped = tmp_path / "kept.mp4", tmp_path / "dropped.mp4"
    protect_video(source, kept, MAGENTA_OPTIONS)
    protect_video(source, dropped, VideoOptions(color=MAGENTA, audio=False))
    with av.open(str(kept)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        assert samples == pytest.approx(48000 * 2, rel=0.05)  # the 2 s tone, all of it
    with av.open(str(dropped)) as c:
        assert not c.streams.audio


def test_rotation_applied(tmp_path):
    source, out = tmp_path / "portrait.mp4", tmp_path / "out.mp4"
    truth = make_clip(source, frames=12, rotation=90, audio=False)
    with av.open(str(source)) as c:
        assert c.streams.video[0].codec_context.width == 240  # stored sideways
    result = protect_video(source, out, MAGENTA_OPTIONS)
    assert (result.width, result.height, result.rotation) == (320, 240, 90)
    assert_every_face_replaced(out, truth)
    upright = [canvas for canvas, _ in upright_frames(12)]
    frames = decode_frames(out)
    for frame in frames:
        assert frame.shape == (240, 320, 3)
    # Outside the face the pictures are the upright source's (lossy: a few grey levels apart).
    assert np.abs(frames[6][:, 250:].astype(int) - upright[6][:, 250:]).mean() < 8
    with av.open(str(out)) as c:
        assert not next(c.decode(video=0)).rotation  # upright pixels, no display matrix left


def test_webm_input(tmp_path):
    source, out = tmp_path / "clip.webm", tmp_path / "out.mp4"
    truth = make_clip(source, frames=12, container="webm", codec="libvpx-vp9", metadata=False)
    result = protect_video(source, out, MAGENTA_OPTIONS)
    assert result.audio
    assert_every_face_replaced(out, truth)


def test_detection_held_between_detection_frames(clip, tmp_path, monkeypatch):
    """The hold alone (no glimpses between full searches): a full search on one frame in 8 still covers
    all 24 frames."""
    source, truth = clip
    monkeypatch.setattr(video_faces, "EVERY_FRAME", False)
    monkeypatch.setattr(video_faces, "DETECT_EVERY", 8)
    monkeypatch.setattr(video_faces, "HOLD", 8)
    out = tmp_path / "sparse.mp4"
    result = protect_video(source, out, MAGENTA_OPTIONS)
    assert result.detected_frames == 3
    assert_every_face_replaced(out, truth)


def test_held_boxes_follow_the_camera(tmp_path, monkeypatch):
    """The face slides 13 px a frame; after the last detection (frame 6) it is only covered in frames 7-11
    because the held box follows the motion estimated between frames (glimpses off: the hold alone)."""
    monkeypatch.setattr(video_faces, "EVERY_FRAME", False)
    source, out = tmp_path / "fast.mp4", tmp_path / "out.mp4"
    truth = make_clip(source, frames=12, audio=False)
    monkeypatch.setattr(video_faces, "DETECT_EVERY", 6)
    monkeypatch.setattr(video_faces, "HOLD", 6)
    assert protect_video(source, out, MAGENTA_OPTIONS).detected_frames == 2
    assert_every_face_replaced(out, truth)


def test_face_leaving_the_frame_held_after_its_last_sighting(tmp_path, monkeypatch):
    """The face slides out through the right edge. Cut to a third by the edge it is no longer found (frame
    18), though a sliver of it is still visible in frames 16-17: the last sighting (frame 12) is held past
    HOLD (3 here) because no later detection found the face again (glimpses off: the hold alone)."""
    monkeypatch.setattr(video_faces, "EVERY_FRAME", False)
    source, out = tmp_path / "exit.mp4", tmp_path / "out.mp4"
    truth = make_clip(source, frames=24, audio=False, travel=(164, 247))
    monkeypatch.setattr(video_faces, "DETECT_EVERY", 6)
    monkeypatch.setattr(video_faces, "HOLD", 3)
    assert protect_video(source, out, MAGENTA_OPTIONS).detected_frames == 4
    assert_every_face_replaced(out, truth)


def test_face_stopped_at_the_edge_held_while_part_of_it_shows(tmp_path):
    """The face slides to the right edge and stays there, a quarter of it in view: too little for the
    detector, which last finds it near frame 14. Its last sighting, at the frame's edge, is held for the
    rest of the clip (EDGE_LOST_HOLD), not just LOST_HOLD frames."""
    source, out = tmp_path / "edge.mp4", tmp_path / "out.mp4"
    truth = make_clip(source, frames=36, audio=False, travel=(150, 226), stop_at=16)
    assert 36 - 16 > video_faces.LOST_HOLD
    protect_video(source, out, MAGENTA_OPTIONS)
    assert_every_face_replaced(out, truth)


@pytest.mark.parametrize("stop_x, stop_at", [(224, 12), (227, 12), (228, 18)])
def test_face_parked_at_the_edge_held_while_it_stays(tmp_path, stop_x, stop_at):
    """A sliver of a face parked at the right edge for 3.5-4 s: the detector finds it rarely or never, and when
    it does, often as a small box off its middle. It stays covered to the end: the whole box of its last
    full sighting is held (a sighting covering less than half of it does not replace it), then parked while
    nothing changes there.
    The x264 pictures differ a little from run to run, so three parkings are tried."""
    source, out = tmp_path / "parked.mp4", tmp_path / "out.mp4"
    truth = make_clip(source, frames=60, audio=False, travel=(150, stop_x), stop_at=stop_at)
    assert 60 - stop_at > video_faces.EDGE_LOST_HOLD + video_faces.HOLD
    protect_video(source, out, MAGENTA_OPTIONS)
    assert_every_face_replaced(out, truth)


def test_parked_face_let_go_when_its_place_changes(tmp_path):
    """Once the photo leaves, the parked box goes with it. A sighting of the sliver just before it left is
    still held EDGE_LOST_HOLD frames: the frames after that are left untouched. It leaves at a full search,
    which misses it: a face that leaves between its last sighting and that search is kept parked by design
    (in doubt, covered; docs/VIDEO.md)."""
    source, out = tmp_path / "gone.mp4", tmp_path / "out.mp4"
    gone_at = 8 * video_faces.DETECT_EVERY
    truth = make_clip(source, frames=gone_at + video_faces.EDGE_LOST_HOLD + 8, audio=False, travel=(150, 226),
                      stop_at=12, gone_at=gone_at)
    protect_video(source, out, MAGENTA_OPTIONS)
    frames = decode_frames(out)
    assert min(magenta_share(rgb, box) for rgb, box in zip(frames[:gone_at], truth)) >= 0.95
    assert max(magenta_share(rgb, None) for rgb in frames[gone_at + video_faces.EDGE_LOST_HOLD:]) == 0


def test_scene_cut_ends_the_hold(tmp_path, monkeypatch):
    """The face's box is not carried over a hard cut, held or glimpsed: the frames after it (no face) are
    left untouched."""
    source, out = tmp_path / "cut.mp4", tmp_path / "out.mp4"
    truth = make_clip(source, frames=16, audio=False, cut_at=6)
    monkeypatch.setattr(video_faces, "DETECT_EVERY", 8)
    monkeypatch.setattr(video_faces, "HOLD", 8)
    result = protect_video(source, out, MAGENTA_OPTIONS)
    assert result.scene_cuts == 1
    frames = decode_frames(out)
    assert min(magenta_share(rgb, box) for rgb, box in zip(frames[:6], truth)) >= 0.95
    assert max(magenta_share(rgb, None) for rgb in frames[6:]) == 0


@pytest.mark.parametrize("name, kind, kept", [
    ("index-last.mp4", {}, 0.6),  # the index (moov) is cut off
    ("index-first.mp4", {"faststart": True, "audio": False}, 0.9),  # frames missing the index lists
    ("clip.webm", {"container": "webm", "codec": "libvpx-vp9"}, 0.9),  # ends before its stated duration
])
def test_truncated_clip_refused(tmp_path, name, kind, kept):
    source = tmp_path / name
    make_clip(source, frames=24, **kind)
    data = source.read_bytes()
    source.write_bytes(data[:int(len(data) * kept)])
    out = tmp_path / "out.mp4"
    with pytest.raises(ShieldError) as caught:
        protect_video(source, out, MAGENTA_OPTIONS)
    assert caught.value.code == "undecodable_video"
    assert "truncated" in caught.value.message
    assert not out.exists()


def test_corrupt_and_wrong_files_refused(clip, tmp_path):
    data = bytearray(clip[0].read_bytes())
    middle = len(data) // 3
    data[middle:middle + 3000] = bytes(b ^ 0x55 for b in data[middle:middle + 3000])
    cases = {"damaged.mp4": (bytes(data), "undecodable_video"),
             "text.mp4": (b"not a video at all " * 20, "unsupported_media_type"),
             "header-only.mp4": (bytes(data[:200]), "undecodable_video")}
    for name, (content, code) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ShieldError) as caught:
            protect_video(tmp_path / name, tmp_path / "out.mp4", MAGENTA_OPTIONS)
        assert caught.value.code == code, name
        assert not (tmp_path / "out.mp4").exists()


def test_frame_with_damaged_picture_data_refused(tmp_path):
    """Bytes flipped inside one frame's picture data: the container reads fine and the decoder conceals the
    damage; the frame it flags as corrupt is refused rather than released half-decoded."""
    source = tmp_path / "clip.mp4"
    make_clip(source, frames=24, faststart=True, audio=False)
    with av.open(str(source)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    position, size = packets[3]
    data = bytearray(source.read_bytes())
    start = position + size // 2
    data[start:start + 20] = bytes(b ^ 0xA5 for b in data[start:start + 20])
    source.write_bytes(bytes(data))
    with pytest.raises(ShieldError) as caught:
        protect_video(source, tmp_path / "out.mp4", MAGENTA_OPTIONS)
    assert "a frame could not be decoded intact" in caught.value.message


def test_limits_refused_before_decoding(clip, tmp_path):
    source, _ = clip
    size = source.stat().st_size
    for limits, words in (({"max_bytes": size - 1}, "MB"), ({"max_seconds": 1.5}, "minutes"),
                          ({"max_pixels": 320 * 240 - 1}, "megapixels")):
        with pytest.raises(ShieldError) as caught:
            protect_video(source, tmp_path / "out.mp4", VideoOptions(**limits))
        assert caught.value.code == "too_large" and words in caught.value.message


def test_blur_and_people_refused():
    for params in ({"fill": "blur"}, {"mode": "people"}, {"audio": "maybe"}, {"format": "webm"},
                   {"regions": "[[0, 0, 10, 10]]"}, {"keep": "[[0, 0, 10, 10]]"}):
        with pytest.raises(ShieldError):
            VideoOptions.from_params(params)


def test_stale_workdir_of_dead_process_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(video, "_root", None)
    mine = video.make_workdir()
    assert oct(mine.stat().st_mode & 0o777) == "0o700"
    assert oct(video.workdir_root().stat().st_mode & 0o777) == "0o700"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{video.RUN_PREFIX}{os.getuid()}-{dead.stdout.strip()}-abc"
    (stale / "job-abc").mkdir(parents=True)
    (stale / "job-abc" / "input").write_bytes(b"x")
    assert video.sweep_stale_workdirs() == 1
    assert not stale.exists() and mine.exists()


def test_cli_writes_protected_clip(clip, tmp_path):
    source = tmp_path / "holiday.mov"
    source.write_bytes(clip[0].read_bytes())
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(source), "--fill", "#ff00ff",
                          "--no-audio"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "frame" in run.stderr  # the progress bar
    out = tmp_path / "holiday.protected.mp4"
    assert_every_face_replaced(out, clip[1])
    with av.open(str(out)) as c:
        assert not c.streams.audio


def test_cli_in_place_never_replaces_another_file(clip, tmp_path):
    data = clip[0].read_bytes()
    (tmp_path / "a.mov").write_bytes(data)
    (tmp_path / "b.mov").write_bytes(data)
    (tmp_path / "b.mp4").write_bytes(b"someone else's file")
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(tmp_path / "a.mov"),
                          str(tmp_path / "b.mov"), "--in-place", "--fill", "#ff00ff"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1 and "b.mp4 already exists" in run.stderr
    assert not (tmp_path / "a.mov").exists()
    assert_every_face_replaced(tmp_path / "a.mp4", clip[1])
    assert (tmp_path / "b.mov").read_bytes() == data
    assert (tmp_path / "b.mp4").read_bytes() == b"someone else's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mov", "b.mp4"]  # no temporary left


def test_cli_in_place_refuses_a_link_to_a_clip(clip, tmp_path):
    data = clip[0].read_bytes()
    (tmp_path / "real.mp4").write_bytes(data)
    (tmp_path / "link.mp4").symlink_to(tmp_path / "real.mp4")
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(tmp_path / "link.mp4"), "--in-place"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "--in-place refused: this is a link to" in run.stderr
    assert (tmp_path / "link.mp4").is_symlink() and (tmp_path / "real.mp4").read_bytes() == data


def test_cli_refuses_truncated_clip(clip, tmp_path):
    source = tmp_path / "cut.mp4"
    source.write_bytes(clip[0].read_bytes()[:5000])
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(source)], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "truncated or damaged" in run.stderr
    assert not (tmp_path / "cut.protected.mp4").exists()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = start_server(tmp_path_factory.mktemp("config"))
    yield process
    process.stop()


def _wait(server, job_id, states, timeout=180):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = server.request("GET", f"/v1/video/{job_id}").json()
        seen.append(status["progress"])
        if status["state"] in states:
            return status, seen
        time.sleep(0.2)
    raise AssertionError(f"job never reached {states}: {status}")


def _job_folders(server):
    roots = Path(tempfile.gettempdir()).glob(f"{video.RUN_PREFIX}*-{server.pid}-*")
    return [job for root in roots for job in root.glob(f"{video.WORKDIR_PREFIX}*")]


def test_server_job_end_to_end(server, clip, tmp_path):
    source, truth = clip
    data = source.read_bytes()
    assert server.request("POST", "/v1/video", body=data, token=False).status == 401
    half = len(data) // 2
    first = server.request("POST", "/v1/video?color=ff00ff&more=1", body=data[:half])
    assert first.status == 202, first
    job_id = first.json()["id"]
    assert first.json()["state"] == "uploading"
    assert server.request("POST", f"/v1/video/{job_id}/part?offset=1", body=data[half:]).status == 400
    assert server.request("POST", f"/v1/video/{job_id}/part?offset={half}", body=data[half:]).status == 202
    status, seen = _wait(server, job_id, ("done", "failed"))
    assert status["state"] == "done", status
    assert status["report"]["frames"] == 24 and status["progress"] == 1.0
    assert seen == sorted(seen)
    result = server.request("GET", f"/v1/video/{job_id}/result")
    assert result.status == 200 and result.headers["Content-Type"] == "video/mp4"
    out = tmp_path / "server.mp4"
    out.write_bytes(result.body)
    assert_every_face_replaced(out, truth)
    assert GPS.encode() not in result.body
    assert server.request("GET", f"/v1/video/{job_id}/result").status == 404  # fetched once, then gone
    assert not _job_folders(server)


def test_server_job_cancel_and_errors(server, clip, tmp_path):
    long_clip = tmp_path / "long.mp4"
    make_clip(long_clip, frames=480, fps=24, audio=False)  # some 30 s of work on this machine
    job = server.request("POST", "/v1/video?audio=drop", body=long_clip.read_bytes()).json()
    _wait(server, job["id"], ("running",))
    assert _job_folders(server)
    assert server.request("DELETE", f"/v1/video/{job['id']}").status == 204
    assert server.request("GET", f"/v1/video/{job['id']}").status == 404
    deadline = time.monotonic() + 5  # the worker stops within a frame or two, its folder removed
    while _job_folders(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _job_folders(server)

    bad = server.request("POST", "/v1/video", body=clip[0].read_bytes()[:5000]).json()
    status, _ = _wait(server, bad["id"], ("done", "failed"))
    assert status["state"] == "failed" and status["error"] == "undecodable_video"
    assert server.request("GET", f"/v1/video/{bad['id']}/result").status == 422
    assert server.request("POST", "/v1/video?fill=blur", body=b"x").status == 400
    assert server.request("GET", "/v1/health").status == 200  # the server stays up


def test_upload_left_by_a_crashed_server_removed_at_next_start(tmp_path):
    first = start_server(tmp_path / "config")
    part = first.request("POST", "/v1/video?more=1", body=b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000)
    assert part.status == 202
    left = _job_folders(first)
    assert left and (left[0] / "input").exists()
    first.kill()  # SIGKILL: no clean-up runs
    assert left[0].exists()
    second = start_server(tmp_path / "config")
    try:
        assert not left[0].exists()
    finally:
        second.stop()

