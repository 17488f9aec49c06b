"""The pairing token: 256 random bits in the user's config folder, readable by this user only.

The extension holds a copy; every API call must present it. `shield pair --rotate` replaces the file
atomically and a running server notices the new file on the next request (TokenStore re-reads on change).
"""

import os
import secrets
import stat
from pathlib import Path

import platformdirs

TOKEN_FILE = "pairing-token"
CONFIG_ENV = "SHIELD_CONFIG_DIR"
# POSIX protections; on Windows the user's profile folder ACLs do this job and these are no-ops.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _owned_by_someone_else(info: os.stat_result) -> bool:
    return hasattr(os, "getuid") and info.st_uid != os.getuid()


class PairingError(Exception):
    """The token file or its folder cannot be trusted (wrong owner, a symlink, unreadable)."""


def config_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get(CONFIG_ENV) or platformdirs.user_config_dir("photo-shield"))


def _secure_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PairingError(f"{folder} is not a plain folder.")
    if _owned_by_someone_else(info):
        raise PairingError(f"{folder} belongs to another user; refusing to keep the token there.")
    if info.st_mode & 0o077 and os.name == "posix":
        os.chmod(folder, 0o700)


def _read(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        raise PairingError(f"Cannot open the token file {path}: {exc.strerror}.") from None
    with os.fdopen(fd, "r", encoding="ascii") as handle:
        info = os.fstat(handle.fileno())
        if _owned_by_someone_else(info):
            raise PairingError(f"{path} belongs to another user; run `shield pair --rotate`.")
        if info.st_mode & 0o077 and os.name == "posix":
            os.fchmod(handle.fileno(), 0o600)
        token = handle.read(200).strip()
    if len(token) < 32:
        raise PairingError(f"{path} holds no valid token; run `shield pair --rotate`.")
    return token


def _write_new(path: Path, token: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 32 bytes = 256 bits


def load_or_create(folder: Path) -> str:
    _secure_dir(folder)
    path = folder / TOKEN_FILE
    try:
        _write_new(path, new_token())
    except FileExistsError:
        pass  # already paired (or another process won the race): keep that token
    return _read(path)


def rotate(folder: Path) -> str:
    _secure_dir(folder)
    temporary = folder / f".{TOKEN_FILE}.{secrets.token_hex(8)}"
    _write_new(temporary, new_token())
    os.replace(temporary, folder / TOKEN_FILE)  # atomic: a reader sees the old token or the new one
    return _read(folder / TOKEN_FILE)


class TokenStore:
    """The current token, re-read whenever the file changes (a rotation while the server runs)."""

    def __init__(self, folder: Path):
        self.path = folder / TOKEN_FILE
        self._token = load_or_create(folder)
        self._signature = self._stat_signature()

    def _stat_signature(self):
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def current(self) -> str | None:
        """The valid token, or None (no request is accepted) while the file is missing or unreadable."""
        signature = self._stat_signature()
        if signature is None:
            return None
        if signature != self._signature:
            try:
                self._token = _read(self.path)
            except PairingError:
                return None
            self._signature = signature
        return self._token
