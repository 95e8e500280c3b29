"""lease.jpegpack: an image tree packed into one .npz comes back byte for byte, and a damaged
or hostile pack is refused with one clear DataError before anything appears at dest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dynconf.errors import DataError
from lease.jpegpack import pack_tree, read_pack, unpack_tree

REPO = Path(__file__).resolve().parents[2]


def tree_files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    """An ImageFolder tree of digits as 32x32 RGB JPEGs (train/ and test/, two classes x 20),
    two JPEGs at quality 95 (a second prefix), a PNG, and a file in a deeper folder."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("tree") / "digits"
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)

    def rgb(i: int) -> Image.Image:
        big = np.kron(pixels[i], np.ones((4, 4), dtype=np.uint8))
        return Image.fromarray(np.stack([big] * 3, axis=-1))

    index = 0
    for split in ("train", "test"):
        for label in (0, 1):
            folder = root / split / str(label)
            folder.mkdir(parents=True)
            for n in range(20):
                rgb(index).save(folder / f"{n:04d}.jpg")
                index += 1
    for n in range(2):
        rgb(index + n).save(root / "train" / "0" / f"q95_{n}.jpg", quality=95)
    rgb(index + 2).save(root / "extra.png")
    deep = root / "deeper" / "still" / "deeper"
    deep.mkdir(parents=True)
    rgb(index + 3).save(deep / "last.jpg")
    return root


@pytest.fixture(scope="module")
def good_pack(image_tree, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pack") / "digits.npz"
    return out, pack_tree(image_tree, out)


def test_round_trip_is_byte_identical(image_tree, good_pack, tmp_path):
    pack, stats = good_pack
    originals = tree_files(image_tree)
    assert stats["files"] == len(originals) == 84
    assert stats["bytes_in"] == sum(len(b) for b in originals.values())
    assert stats["prefixes"] == 3  # quality 75 tables, quality 95 tables, b"" (the PNG)
    assert stats["bytes_out"] == pack.stat().st_size < stats["bytes_in"]
    result = unpack_tree(pack, tmp_path / "out")
    assert result == {"files": 84, "bytes": stats["bytes_in"], "digest": stats["digest"]}
    assert tree_files(tmp_path / "out") == originals
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left


def test_pack_holds_plain_arrays(good_pack):
    pack, _ = good_pack
    with np.load(pack, allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)
        assert npz["format"].tobytes() == b"dynconf-jpegpack-1"
    paths, arrays = read_pack(pack)
    assert paths == sorted(paths) and "deeper/still/deeper/last.jpg" in paths
    assert arrays["prefix_of"].dtype == np.int32 and arrays["body_offsets"].dtype == np.int64


def test_pack_refuses_symlinks_and_empty_trees(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files"):
        pack_tree(tmp_path / "empty", tmp_path / "e.npz")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    os.symlink(tree / "a.txt", tree / "link.txt")
    with pytest.raises(DataError, match="symlink"):
        pack_tree(tree, tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()


def rewrite(pack: Path, out: Path, **changes) -> Path:
    """A copy of ``pack`` with some arrays replaced (np.savez pickles object arrays)."""
    with np.load(pack, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays.update(changes)
    np.savez(out, **arrays)
    return out


def paths_array(pack: Path, first: str) -> np.ndarray:
    paths, _ = read_pack(pack)
    return np.frombuffer("\n".join([first, *paths[1:]]).encode(), dtype=np.uint8)


def hostile_packs(pack: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (damaged pack, a pattern its DataError must match)."""
    with np.load(pack, allow_pickle=False) as npz:
        bodies, offsets = npz["bodies"].copy(), npz["body_offsets"].copy()
    bodies[len(bodies) // 2] ^= 0xFF
    offsets[-1] += 10
    data = pack.read_bytes()
    (folder / "text.npz").write_text("just some text, not a pack\n")
    (folder / "truncated.npz").write_bytes(data[: len(data) * 2 // 3])
    return {
        "flipped body byte": (
            rewrite(pack, folder / "flipped.npz", bodies=bodies),
            "digest mismatch: the pack is damaged",
        ),
        "parent path": (
            rewrite(pack, folder / "evil.npz", paths=paths_array(pack, "../evil")),
            r"'\.\./evil'.*'\.\.'",
        ),
        "absolute path": (
            rewrite(pack, folder / "abs.npz", paths=paths_array(pack, "/tmp/evil")),
            "absolute",
        ),
        "offsets past the blob": (
            rewrite(pack, folder / "offsets.npz", body_offsets=offsets),
            "body_offsets end at",
        ),
        "pickled object array": (
            rewrite(pack, folder / "pickle.npz", bodies=np.array({"a": 1}, dtype=object)),
            "not a readable jpegpack.*bodies",
        ),
        "truncated": (folder / "truncated.npz", "not a readable jpegpack"),
        "text file": (folder / "text.npz", "not a readable jpegpack"),
    }


def test_damaged_or_hostile_packs_are_refused(good_pack, tmp_path):
    pack, _ = good_pack
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = hostile_packs(pack, bad)
    for name, (path, pattern) in cases.items():
        dest = tmp_path / "dest" / name.replace(" ", "_")
        with pytest.raises(DataError, match=pattern) as info:
            unpack_tree(path, dest)
        assert str(path) in str(info.value), name  # the message names the file
        assert "\n" not in str(info.value), name
        assert not dest.exists(), name
        if dest.parent.exists():
            assert list(dest.parent.iterdir()) == [], name  # no temporary folder left
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


def test_existing_dest_is_refused(good_pack, tmp_path):
    pack, _ = good_pack
    (tmp_path / "dest").mkdir()
    with pytest.raises(DataError, match="already exists"):
        unpack_tree(pack, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lease.jpegpack", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli(image_tree, good_pack, tmp_path):
    import json

    pack, _ = good_pack
    done = run_cli("pack", str(image_tree), str(tmp_path / "p.npz"))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line and json.loads(line)["files"] == 84
    done = run_cli("unpack", str(tmp_path / "p.npz"), str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["digest"] == json.loads(line)["digest"]
    assert tree_files(tmp_path / "out") == tree_files(image_tree)

    damaged = hostile_packs(pack, tmp_path)["flipped body byte"][0]
    done = run_cli("unpack", str(damaged), str(tmp_path / "out2"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "digest mismatch" in done.stderr
    assert not (tmp_path / "out2").exists()


# --------------------------------------------------------------------------- real CIFAR-10


def cifar_root() -> Path | None:
    candidates = [REPO.parent / "shared" / "data" / "cifar10"]
    if os.environ.get("DYNCONF_DATA"):
        candidates.insert(0, Path(os.environ["DYNCONF_DATA"]) / "cifar10")
    return next((c for c in candidates if (c / "train").is_dir()), None)


@pytest.mark.skipif(cifar_root() is None, reason="no CIFAR-10 ImageFolder tree here")
def test_real_cifar10_subset(tmp_path):
    from dynconf.engine.data.base import decode_images

    source = cifar_root() / "train"
    tree = tmp_path / "cifar10"
    for cls in sorted(p for p in source.iterdir() if p.is_dir())[:2]:
        (tree / "train" / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:100]:
            shutil.copyfile(f, tree / "train" / cls.name / f.name)
    stats = pack_tree(tree, tmp_path / "cifar.npz")
    assert stats["files"] == 200
    assert stats["prefixes"] == 1
    assert stats["bytes_out"] < 0.45 * stats["bytes_in"]
    unpack_tree(tmp_path / "cifar.npz", tmp_path / "back")
    assert tree_files(tmp_path / "back") == tree_files(tree)
    rel = sorted(p.relative_to(tree) for p in tree.rglob("*.jpg"))
    original = decode_images([tree / r for r in rel])
    unpacked = decode_images([tmp_path / "back" / r for r in rel])
    assert original.shape == (200, 32, 32, 3)
    np.testing.assert_array_equal(unpacked, original)
