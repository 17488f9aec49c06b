"""Nothing another account can squat: the server's private folders (video jobs) are made with a fresh,
unguessable name, so a folder, file or link that another user put in the shared temporary folder first
can neither stop the server nor receive a clip (docs/SECURITY.md, "Video jobs")."""

import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from server_process import start_server

NOBODY = 65534
CLIP_START = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000  # a first part: the job waits for the rest


@pytest.fixture()
def shared_tmp():
    """A fresh folder like /tmp (world-writable, sticky) so squatters do not touch the real one."""
    folder = Path(tempfile.mkdtemp(prefix="shield-shared-tmp-"))
    folder.chmod(0o1777)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def squat(shared: Path, names: list[str], as_other_user: bool) -> None:
    """Folders, a file and links under the names the server used or might guess, made by another user when
    the test runs as root (else by this user: the server must still start and keep clips elsewhere)."""
    script = (f"import os\nfor n in {names!r}:\n    p = os.path.join({str(shared)!r}, n)\n"
              "    os.mkdir(p, 0o777); os.chmod(p, 0o777)\n"
              f"os.symlink('/', os.path.join({str(shared)!r}, {names[0] + '-link'!r}))\n"
              f"open(os.path.join({str(shared)!r}, {names[0] + '-file'!r}), 'w').close()\n")
    subprocess.run(["/usr/bin/python3" if as_other_user else "python3", "-c", script], check=True, cwd="/",
                   **({"user": NOBODY, "group": NOBODY} if as_other_user else {}))


def test_folders_taken_by_another_account_neither_stop_the_server_nor_get_a_clip(shared_tmp, tmp_path):
    root = hasattr(os, "getuid") and os.getuid() == 0 and os.path.exists("/usr/bin/python3")
    uid = os.getuid()
    names = [f"photo-shield-{uid}", f"photo-shield-{uid}-1", f"photo-shield-{uid}-{os.getpid() + 1}"]
    squat(shared_tmp, names, as_other_user=root)
    server = start_server(tmp_path / "config", env={**os.environ, "TMPDIR": str(shared_tmp)})
    try:
        reply = server.request("POST", "/v1/video?more=1", body=CLIP_START)
        assert reply.status == 202, reply
        jobs = [job for folder in shared_tmp.iterdir() for job in
                (folder.iterdir() if folder.is_dir() and not folder.is_symlink() and os.access(folder, os.R_OK)
                 else []) if job.name.startswith("job-")]
        assert len(jobs) == 1, jobs
        job, its_root = jobs[0], jobs[0].parent
        assert its_root.name not in names and its_root.name.startswith(f"photo-shield-{uid}-{server.pid}-")
        for folder in (job, its_root):
            info = os.lstat(folder)
            assert stat.S_ISDIR(info.st_mode) and info.st_uid == uid and stat.S_IMODE(info.st_mode) == 0o700
        assert not any(list((shared_tmp / name).iterdir()) for name in names)  # nothing went into a squatted one
        assert server.request("DELETE", f"/v1/video/{reply.json()['id']}").status == 204
    finally:
        server.stop()
    assert not its_root.exists()  # removed at exit
    assert all((shared_tmp / name).is_dir() for name in names)  # another account's folders are left alone


def test_a_crashed_servers_folder_is_swept_but_never_through_a_link(shared_tmp, tmp_path):
    uid = os.getuid()
    first = start_server(tmp_path / "config", env={**os.environ, "TMPDIR": str(shared_tmp)})
    assert first.request("POST", "/v1/video?more=1", body=CLIP_START).status == 202
    left = [p for p in shared_tmp.iterdir() if p.name.startswith(f"photo-shield-{uid}-{first.pid}-")]
    first.kill()
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    trap = shared_tmp / f"photo-shield-{uid}-{first.pid}-link"
    trap.symlink_to(outside)  # named like a dead process's folder, pointing at someone's files
    second = start_server(tmp_path / "config", env={**os.environ, "TMPDIR": str(shared_tmp)})
    try:
        assert left and not any(p.exists() for p in left)
        assert (outside / "keep").is_dir() and trap.is_symlink()
    finally:
        second.stop()
