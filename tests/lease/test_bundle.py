"""lease.bundle: files cut into parts of at most part_bytes come back identical, a bundle that
would need too many parts is refused before anything is written, and a missing, truncated or
altered part, an unsafe manifest or an existing dest is refused with nothing left at dest."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dynconf.errors import DataError
from lease.bundle import pack_files, unpack_files

REPO = Path(__file__).resolve().parents[2]
PART = 1000  # small parts, so files spanning, filling and missing parts are all exercised


@pytest.fixture
def sources(tmp_path) -> dict[str, Path]:
    """name -> source file: 0 bytes, 1 byte, exactly one part, 2.5 parts in a subfolder."""
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    contents = {
        "empty.bin": b"",
        "one.bin": b"\x07",
        "exact.bin": bytes(range(256)) * 3 + bytes(232),
        "sub/big.bin": bytes((i * 7 + 3) % 251 for i in range(2500)),
    }
    assert len(contents["exact.bin"]) == PART
    paths = {}
    for name, data in contents.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


def entries(sources: dict[str, Path]) -> list[tuple[str, Path]]:
    # an empty file first (a file that takes no bytes of any part), a 2.5-part file last
    order = ["empty.bin", "one.bin", "exact.bin", "sub/big.bin"]
    return [(f"run/{name}", sources[name]) for name in order]


@pytest.fixture
def bundle(sources, tmp_path) -> tuple[Path, list[Path]]:
    out = tmp_path / "out"
    written = pack_files(entries(sources), out, "result", part_bytes=PART)
    return out / "result.manifest.json", written


def test_round_trip_and_part_sizes(sources, bundle, tmp_path):
    manifest, written = bundle
    total = sum(p.stat().st_size for p in sources.values())
    assert total == 3501
    parts = written[:-1]
    assert written[-1] == manifest
    count = math.ceil(total / PART)
    assert [p.name for p in parts] == [f"result.part{i:02d}" for i in range(count)]
    assert len(parts) == 4
    assert all(p.stat().st_size <= PART for p in parts)
    assert sum(p.stat().st_size for p in parts) == total
    data = json.loads(manifest.read_text())
    assert data["format"] == "dynconf-bundle-1" and data["total_bytes"] == total
    assert [f["name"] for f in data["files"]] == [name for name, _ in entries(sources)]

    rebuilt = unpack_files(manifest, tmp_path / "back")
    assert set(rebuilt) == {name for name, _ in entries(sources)}
    for name, source in entries(sources):
        assert rebuilt[name] == tmp_path / "back" / name
        assert rebuilt[name].read_bytes() == source.read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back", "out", "src"]


def test_too_many_parts_is_refused_before_writing(sources, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("already here")
    with pytest.raises(DataError, match=r"4 parts.*limit of 3"):
        pack_files(entries(sources), out, "result", part_bytes=PART, max_parts=3)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    written = pack_files(entries(sources), out, "result", part_bytes=PART, max_parts=4)
    assert len(written) == 5


def test_duplicate_names_and_bad_stems_are_refused(sources, tmp_path):
    twice = [("a.bin", sources["one.bin"]), ("a.bin", sources["exact.bin"])]
    with pytest.raises(DataError, match="twice"):
        pack_files(twice, tmp_path / "out", "x", part_bytes=PART)
    for stem in ("a b", "x/y", "", ".."):
        with pytest.raises(DataError, match="stem"):
            pack_files(entries(sources), tmp_path / "out", stem, part_bytes=PART)
    for name in ("../x", "/abs", "a//b", "a\\b"):
        with pytest.raises(DataError, match="file name"):
            pack_files([(name, sources["one.bin"])], tmp_path / "out", "x", part_bytes=PART)
    assert not (tmp_path / "out").exists()


def damage(manifest: Path, how: str) -> str:
    """Damage part 1 of the bundle; returns its name."""
    part = manifest.parent / "result.part01"
    data = part.read_bytes()
    if how == "missing":
        part.unlink()
    elif how == "truncated":
        part.write_bytes(data[:-1])
    else:
        part.write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])
    return part.name


@pytest.mark.parametrize(
    "how, pattern",
    [("missing", "is missing"), ("truncated", "is damaged"), ("flipped", "is damaged")],
)
def test_damaged_parts_are_refused(bundle, tmp_path, how, pattern):
    manifest, _ = bundle
    name = damage(manifest, how)
    with pytest.raises(DataError, match=f"part {name} {pattern}"):
        unpack_files(manifest, tmp_path / "back" / "dest")
    assert not (tmp_path / "back").exists()


@pytest.mark.parametrize("name", ["../x", "/abs", "run/../../x", "a/./b"])
def test_unsafe_file_names_in_a_manifest_are_refused(bundle, tmp_path, name):
    manifest, _ = bundle
    data = json.loads(manifest.read_text())
    data["files"][1]["name"] = name
    manifest.write_text(json.dumps(data))
    with pytest.raises(DataError, match="file name"):
        unpack_files(manifest, tmp_path / "back" / "dest")
    assert not (tmp_path / "back").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "change, pattern",
    [
        (lambda d: d["parts"][0].update(name="../result.part00"), "not a plain file name"),
        (lambda d: d["parts"][0].update(name="/etc/passwd"), "not a plain file name"),
        (lambda d: d["files"][0].update(bytes=5), "do not add up"),
        (lambda d: d.update(format="other"), "not a dynconf-bundle-1 manifest"),
        (lambda d: d["files"].append({"name": "x"}), "lacks a name, bytes or sha256"),
    ],
)
def test_inconsistent_manifests_are_refused(bundle, tmp_path, change, pattern):
    manifest, _ = bundle
    data = json.loads(manifest.read_text())
    change(data)
    manifest.write_text(json.dumps(data))
    with pytest.raises(DataError, match=pattern):
        unpack_files(manifest, tmp_path / "back" / "dest")
    assert not (tmp_path / "back").exists()


def test_wrong_file_sha256_leaves_nothing(bundle, tmp_path):
    manifest, _ = bundle
    data = json.loads(manifest.read_text())
    data["files"][3]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(data))
    with pytest.raises(DataError, match="file run/sub/big.bin is damaged"):
        unpack_files(manifest, tmp_path / "back" / "dest")
    assert list((tmp_path / "back").iterdir()) == []  # the temporary folder is gone too


def test_existing_dest_is_refused(bundle, tmp_path):
    manifest, _ = bundle
    (tmp_path / "dest").mkdir()
    with pytest.raises(DataError, match="already exists"):
        unpack_files(manifest, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lease.bundle", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_round_trip_with_a_folder(sources, tmp_path):
    single = tmp_path / "notes.txt"
    single.write_text("a file given by itself\n")
    part_mib = str(PART / 2**20)
    src = str(sources["one.bin"].parent)
    out = str(tmp_path / "out")
    done = run_cli("pack", "--out", out, "--stem", "r", "--part-mib", part_mib, src, str(single))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert done.stdout.count("\n") == 1 and len(result["parts"]) == 4

    done = run_cli("unpack", result["manifest"], str(tmp_path / "back"))
    assert done.returncode == 0, done.stderr
    rebuilt = json.loads(done.stdout)
    expected = {f"src/{name}": path for name, path in sources.items()} | {"notes.txt": single}
    assert set(rebuilt) == set(expected)
    for name, source in expected.items():
        assert Path(rebuilt[name]).read_bytes() == source.read_bytes(), name

    done = run_cli("pack", "--out", str(tmp_path / "o2"), "--stem", "r", "--max-parts", "0", src)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    done = run_cli("unpack", result["manifest"], str(tmp_path / "back"))
    assert done.returncode == 2 and "already exists" in done.stderr
