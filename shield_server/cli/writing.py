"""Reading an input without being fooled by what it is, and writing an output so no one sees half of it."""

import os
import stat
import tempfile
from pathlib import Path

from shield_server.errors import ShieldError, TooLarge


class NotAFile(ShieldError):
    code = "not_a_file"


class OutputExists(ShieldError):
    code = "output_exists"


class InPlaceRefused(ShieldError):
    code = "in_place_refused"


def check_in_place(path: Path) -> None:
    """--in-place replaces the file at path in one step (a rename). A symbolic link would itself be replaced,
    leaving the photo it points to unprotected; a file with other names (hard links) would keep the original
    under them. Both are refused before anything is read."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise InPlaceRefused(f"--in-place refused: this is a link to {os.path.realpath(path)}, and replacing the "
                             "link would leave that photo unprotected. Run it on that file, or use --out-dir.")
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        raise InPlaceRefused(f"--in-place refused: this file has {info.st_nlink - 1} other name(s) (hard links) "
                             "that would keep the original. Use --out-dir.")


def open_without_blocking(path: Path) -> int:
    """A pipe named .jpg or .mp4 must not hang the command: it is opened, seen not to be a file, refused."""
    return os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))


def read_photo(path: Path, max_bytes: int) -> tuple[bytes, int]:
    """The file's bytes and permission bits. A pipe, device or folder is refused before anything is read,
    and so is a file over the size limit (a 2 GB file is never loaded to be refused)."""
    fd = open_without_blocking(path)
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


def file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def claim_name(path: Path) -> None:
    """Creates path empty, or FileExistsError: an output under a new name never replaces another file."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def write_atomically(path: Path, data: bytes, mode: int, new_name: bool = False) -> None:
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
            claim_name(path)
            claimed = True
        os.replace(temp, path)
    except BaseException:
        for leftover in (temp, path) if claimed else (temp,):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
        raise
