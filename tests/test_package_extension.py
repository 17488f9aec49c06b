"""scripts/package-extension.sh: the zip a store takes holds the whole extension, and nothing else."""

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXTENSION = REPO / "extension"


def _package(store: str, tmp_path: Path) -> zipfile.ZipFile:
    done = subprocess.run(["bash", "scripts/package-extension.sh", "--store", store], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    built = REPO / done.stdout.strip()
    copy = tmp_path / built.name
    copy.write_bytes(built.read_bytes())
    built.unlink()
    return zipfile.ZipFile(copy)


def _referenced_files(manifest: dict) -> set[str]:
    named = set(manifest["background"]["scripts"]) | {manifest["background"]["service_worker"]}
    for script in manifest["content_scripts"]:
        named |= set(script["js"])
    named |= set(manifest["icons"].values()) | set(manifest["action"]["default_icon"].values())
    named |= {manifest["action"]["default_popup"], manifest["options_ui"]["page"],
              manifest["storage"]["managed_schema"]}
    return named


@pytest.mark.parametrize("store", ["self", "chrome", "firefox"])
def test_zip_holds_every_file_of_the_extension(store, tmp_path):
    archive = _package(store, tmp_path)
    names = set(archive.namelist())
    on_disk = {p.relative_to(EXTENSION).as_posix() for p in EXTENSION.rglob("*") if p.is_file()}
    assert names == on_disk
    manifest = json.loads(archive.read("manifest.json"))
    assert _referenced_files(manifest) <= names
    assert ("key" in manifest) == (store != "chrome")  # the Chrome Web Store refuses a manifest key


def test_same_extension_gives_the_same_zip(tmp_path):
    first = (tmp_path / "a").mkdir() or _package("self", tmp_path / "a")
    second = (tmp_path / "b").mkdir() or _package("self", tmp_path / "b")
    assert Path(first.filename).read_bytes() == Path(second.filename).read_bytes()
