"""`shield redact`'s messages speak the command line's language: the flags the person typed, what was replaced,
every fill, every file skipped, and the exit codes README.md lists."""

from pathlib import Path

from photos import astronaut, encode
from test_cli import shield


def photo(folder: Path, name: str = "a.png") -> Path:
    path = folder / name
    path.write_bytes(encode(astronaut(), "PNG"))
    return path


def test_a_bad_region_names_the_flag_typed(tmp_path):
    inverted = shield("redact", photo(tmp_path), "--region", "50,50,10,10")
    assert inverted.returncode == 2
    assert "A box of --region is empty or inverted" in inverted.stderr, inverted.stderr
    outside = shield("redact", photo(tmp_path), "--region", "0,0,9000,10", "-o", tmp_path / "out.png")
    assert outside.returncode == 1
    assert "A box of --region is outside the 512x512 photo" in outside.stderr, outside.stderr
    for run in (inverted, outside):
        assert "'regions'" not in run.stderr


def test_a_keep_box_matching_no_face_names_the_flag_typed(tmp_path):
    run = shield("redact", photo(tmp_path), "--keep", "0,0,10,10", "-o", tmp_path / "out.png")
    assert run.returncode == 1
    assert "A box of --keep matches no detected face" in run.stderr and "'keep'" not in run.stderr, run.stderr


def test_people_mode_reports_people_not_faces(tmp_path):
    run = shield("redact", photo(tmp_path), "--mode", "people", "-o", tmp_path / "out.png")
    assert run.returncode == 0, run.stderr
    line = run.stdout.strip()
    assert line.startswith(f"{tmp_path / 'out.png'}: whole people replaced ("), line
    assert "% of the photo; 1 face found among them)" in line and "face(s)" not in line


def test_face_counts_are_plural_only_when_several(tmp_path):
    run = shield("redact", photo(tmp_path), "-o", tmp_path / "out.png")
    assert run.returncode == 0 and run.stdout.strip() == f"{tmp_path / 'out.png'}: 1 face replaced", run.stdout


def test_refusing_blur_lists_every_fill(tmp_path):
    run = shield("redact", photo(tmp_path), "--fill", "blur", "--out-dir", tmp_path / "out")
    assert run.returncode == 2
    for fill in ("solid colour (#RRGGBB)", "'noise'", "'sticker'", "smile", "flower"):
        assert fill in run.stderr, (fill, run.stderr)


def test_files_skipped_in_a_folder_are_named_and_counted_and_leave_the_exit_code_alone(tmp_path):
    photo(tmp_path)
    (tmp_path / "notes.txt").write_text("a note")
    (tmp_path / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / ".hidden").write_text("not looked at")
    run = shield("redact", tmp_path, "--jobs", 1)
    assert run.returncode == 0, run.stderr
    assert (f"skipped 2 files in the folders given that are not photos or videos (by name): "
            f"{tmp_path / 'logo.svg'}, {tmp_path / 'notes.txt'}") in run.stderr, run.stderr
    assert ".hidden" not in run.stderr
    again = shield("redact", tmp_path, "--jobs", 1)  # README: skipping an earlier output keeps 0
    assert again.returncode == 0, again.stderr
    assert f"skipped 1 file named *.protected.* in the folders given (outputs of an earlier run: " \
           f"{tmp_path / 'a.protected.png'})" in again.stderr, again.stderr


def test_exit_codes_match_the_readme(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "**0** every photo and video taken was protected" in readme and "**2** nothing was done" in readme
    (tmp_path / "only-text").mkdir()
    (tmp_path / "only-text" / "notes.txt").write_text("a note")
    nothing = shield("redact", tmp_path / "only-text")
    assert nothing.returncode == 2 and "no photos or videos found" in nothing.stderr
    assert "notes.txt" in nothing.stderr
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    failed = shield("redact", tmp_path / "broken.png")
    assert failed.returncode == 1 and "broken.png" in failed.stderr
    margin = shield("redact", photo(tmp_path), "--margin", "9")
    assert margin.returncode == 2 and "The margin (--margin) must be between 0 and" in margin.stderr, margin.stderr
