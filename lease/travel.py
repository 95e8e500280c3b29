"""What travels to a lent GPU machine, and keeping it under the 64 MiB it takes.

The device tool sends the checkout's tracked files, its untracked files that git does not
ignore, and the ignored paths named in ``carry``: 64 MiB at most (lease/README.md). The
shipped CIFAR-10 run alone is 51 MB of tracked arrays, which no GPU job needs, and the
CIFAR-10 pack that a job does need is 19 MB. So, for the one call that needs the room:

    python -m lease.travel prepare --data-root ../shared/data   # pack the data, hide big runs
    (the device call: carry [".lease"])
    python -m lease.travel restore                             # the checkout as it was

``hide`` takes paths out of git's index (``git rm --cached``: the files stay on disk) and
lists them in ``.git/info/exclude``, so git neither tracks nor offers them until ``restore``
puts the index entries back from HEAD (``git reset``) and removes those lines. Nothing is
committed, and ``restore`` checks that the hidden paths are tracked and unchanged again.
Until then ``git status`` shows them as deleted: do not commit in between.
``check`` prints what would travel, so the size is known before any device time is spent.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from dynconf.errors import DataError
from lease import print_result

LIMIT_BYTES = 64 * 2**20
LEASE_DIR = ".lease"  # what the job carries (ignored by git), at the repository's root
MARK = "# hidden by python -m lease.travel (undo: python -m lease.travel restore)"
# Tracked folders a GPU job never reads, largest first.
BIG_RUNS = ("cached_runs/cifar10_resnet18_l3", "cached_runs/cifar10_resnet20")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"git {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def exclude_file(repo: Path) -> Path:
    """The checkout's .git/info/exclude (git prints it relative to the checkout)."""
    return repo / git(repo, "rev-parse", "--git-path", "info/exclude").strip()


def travelling_files(repo: Path, carry: list[str] = ()) -> list[tuple[str, int]]:
    """(path, bytes) of every file the device tool would send, largest first."""
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    names = {name for name in listed.split("\0") if name}
    for path in carry:
        root = repo / path
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        names |= {str(p.relative_to(repo)) for p in files}
    sizes = [(name, (repo / name).stat().st_size) for name in names if (repo / name).is_file()]
    return sorted(sizes, key=lambda item: -item[1])


def check(repo: Path, carry: list[str] = ()) -> dict:
    """The total that would travel, against the limit, and the largest files."""
    files = travelling_files(repo, carry)
    total = sum(size for _, size in files)
    return {
        "bytes": total,
        "limit_bytes": LIMIT_BYTES,
        "fits": total <= LIMIT_BYTES,
        "files": len(files),
        "largest": [{"path": name, "bytes": size} for name, size in files[:8]],
    }


def hidden_paths(repo: Path) -> list[str]:
    """The paths an earlier ``hide`` listed in .git/info/exclude."""
    path = exclude_file(repo)
    lines = path.read_text().splitlines() if path.is_file() else []
    return [lines[i + 1].strip("/") for i, line in enumerate(lines[:-1]) if line == MARK]


def hide(repo: Path, paths: list[str]) -> list[str]:
    """Take tracked ``paths`` out of the index and out of git's sight (files stay)."""
    already = set(hidden_paths(repo))
    done = []
    for path in paths:
        if path in already or not git(repo, "ls-files", "--", path).strip():
            continue  # hidden before, or not tracked (a run not shipped yet)
        if git(repo, "status", "--porcelain", "--", path).strip():
            raise DataError(f"{path} has uncommitted changes; commit them before hiding it")
        git(repo, "rm", "-r", "-q", "--cached", "--", path)
        exclude = exclude_file(repo)
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with open(exclude, "a", encoding="utf-8") as fh:
            fh.write(f"{MARK}\n/{path}/\n")
        done.append(path)
    return done


def restore(repo: Path) -> list[str]:
    """Undo every ``hide``: index entries back from HEAD, exclude lines removed."""
    paths = hidden_paths(repo)
    for path in paths:
        git(repo, "reset", "-q", "HEAD", "--", path)
    exclude = exclude_file(repo)
    if exclude.is_file():
        lines = exclude.read_text().splitlines()
        marks = {i for i, line in enumerate(lines) if line == MARK}
        drop = marks | {i + 1 for i in marks}  # each mark and the path line it introduces
        exclude.write_text("".join(line + "\n" for i, line in enumerate(lines) if i not in drop))
    changed = [p for p in paths if git(repo, "status", "--porcelain", "--", p).strip()]
    if changed:
        raise DataError(f"restored, but these differ from HEAD: {', '.join(changed)}")
    return paths


def ignore_lease_dir(repo: Path) -> None:
    """``.lease/`` ignored by git: it travels only as ``carry``, never by accident."""
    exclude = exclude_file(repo)
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    if f"/{LEASE_DIR}/" not in lines:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with open(exclude, "a", encoding="utf-8") as fh:
            fh.write(f"/{LEASE_DIR}/\n")


def prepare(repo: Path, data_root: Path | None, dataset: str = "cifar10") -> dict:
    """Pack the dataset into .lease/ (once), hide the big runs, and check the size."""
    from lease.jpegpack import pack_tree

    ignore_lease_dir(repo)
    report: dict = {}
    if data_root is not None:
        pack = repo / LEASE_DIR / f"{dataset}.jpgpack"
        if not pack.is_file():
            pack.parent.mkdir(exist_ok=True)
            report["pack"] = pack_tree(data_root / dataset, pack)
        report["data_pack"] = str(pack.relative_to(repo))
    report["hidden"] = hide(repo, list(BIG_RUNS))
    report["check"] = check(repo, [LEASE_DIR])
    if not report["check"]["fits"]:
        mib = report["check"]["bytes"] / 2**20
        raise DataError(f"{mib:.1f} MiB would travel, over the 64 MiB limit (see `check`)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lease.travel", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=("check", "hide", "restore", "prepare"))
    parser.add_argument("paths", nargs="*", help="hide: tracked paths (default: the big runs)")
    parser.add_argument("--repo", default=".", help="the checkout (default: here)")
    parser.add_argument("--carry", action="append", default=[], help="check: a carried path")
    parser.add_argument("--data-root", default=None, help="prepare: where cifar10/ is")
    args = parser.parse_args(argv)
    repo = Path(args.repo).resolve()
    data_root = Path(args.data_root) if args.data_root else None
    actions = {
        "check": lambda: check(repo, args.carry),
        "hide": lambda: {"hidden": hide(repo, args.paths or list(BIG_RUNS))},
        "restore": lambda: {"restored": restore(repo)},
        "prepare": lambda: prepare(repo, data_root),
    }
    return print_result(actions[args.action])


if __name__ == "__main__":
    sys.exit(main())
