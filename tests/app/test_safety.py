"""The app under attack and misuse: changed files, FIFOs, memory, zip bombs, hostile
metadata, long names, markdown injection, server paths in messages.

Where a failure would take the whole process down (SIGBUS) or hang it (a FIFO), the app runs
in a subprocess (AppTest inside it) with a timeout, so the test reports it instead of dying.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dynconf.app.routes import page_path
from dynconf.app.text import ZWSP, md_escape
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.store import default_work_root, load_run
from dynconf.errors import DynconfError
from tests.app.helpers import app
from tests.helpers import synthetic_split

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ["home", "explorer", "oracle", "selection", "policies", "samples", "compare", "runs"]
PAYLOAD = (
    "x` ![p](http://127.0.0.1:8719/p.png) "
    "[Session expired: log in again](http://127.0.0.1:8719/phish) `y"
)
UNESCAPED_LINK = re.compile(r"(?<!\\)\]\s*\(")  # "](" not preceded by a backslash


def plain(markdown: str) -> str:
    """What an escaped markdown string shows (dynconf.app.text.md_escape undone)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(ZWSP, "")


def copy_run(src: Path, dst: Path, **meta_changes) -> Path:
    """A real copy of a run (files, not links: tests truncate them), meta.json edited."""
    shutil.copytree(src, dst)
    if meta_changes:
        meta = json.loads((dst / "meta.json").read_text())
        meta.update(meta_changes)
        (dst / "meta.json").write_text(json.dumps(meta))
    return dst


@pytest.fixture
def runs_root(dashboard_runs, tmp_path, monkeypatch):
    """An empty runs root with the synthetic run copied in; the app's env points at it."""
    root = tmp_path / "runs"
    root.mkdir()
    copy_run(dashboard_runs / "synth", root / "synth")
    monkeypatch.setenv("DYNCONF_RUNS", str(root))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    monkeypatch.delenv("DYNCONF_DATA", raising=False)
    return root


def markdown_texts(at: AppTest) -> list[str]:
    """Every string the page handed to a markdown-rendering element."""
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title",
                 "header", "subheader"):  # fmt: skip
        out += [el.value for el in getattr(at, kind)]
    for m in at.metric:
        out += [m.label, str(m.value), m.proto.help]
    for kind in ("selectbox", "number_input", "text_input", "slider", "multiselect"):
        out += [el.label for el in getattr(at, kind)]
    return [t for t in out if t]


def assert_no_markdown_injection(at: AppTest) -> None:
    for text in markdown_texts(at):
        assert not UNESCAPED_LINK.search(text), text[:500]
        assert "http://127.0.0.1:8719" not in text, text[:500]  # broken up by md_escape


def run_script(code: str, env: dict, timeout: float = 120) -> tuple[int, dict | None, str]:
    """Run python code in a fresh process; (returncode, last JSON line printed, stderr)."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True, text=True, cwd=ROOT, timeout=timeout,
            env={**os.environ, **env},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"the app did not finish within {timeout} s (frozen)")
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return out.returncode, (json.loads(lines[-1]) if lines else None), out.stderr[-3000:]


# --------------------------------------------------------------------------- 1: truncation


def test_truncated_file_under_a_memory_map_is_a_sigbus(runs_root):
    """The failure the app must never meet: reading a mapped file after it shrank."""
    victim = copy_run(runs_root / "synth", runs_root.parent / "victim")
    rc, _, _ = run_script(
        f"""
        import os, numpy as np
        from dynconf.core.store import load_run
        run = load_run({str(victim)!r})  # memory-mapped, as load_run does by default
        os.truncate({str(victim / "test.outputs.npy")!r}, 200)
        print(float(np.asarray(run.split("test").outputs[:, 500, :]).sum()))
        """,
        {},
    )
    assert rc == -signal.SIGBUS


APP_AFTER_TRUNCATION = """
    import json, os
    from pathlib import Path
    from streamlit.testing.v1 import AppTest
    from dynconf.app.routes import page_path
    victim = Path(os.environ["VICTIM"]) / "test.outputs.npy"
    original = victim.read_bytes()
    at = AppTest.from_file({app!r}, default_timeout=60)
    at.query_params["run"] = "victim"
    at.run()
    at.switch_page(page_path("samples")).run()
    at.number_input(key="sample_pos").set_value(500).run()
    steps = {{"before": [m.value for m in at.metric if m.label == "Exit step"]}}
    os.truncate(victim, 200)
    at.number_input(key="sample_pos").set_value(501).run()  # the page reads outputs[:, pos]
    steps["after"] = {{
        "exceptions": [e.value for e in at.exception],
        "errors": [e.value for e in at.error],
        "run": at.selectbox(key="run").value,
        "options": list(at.selectbox(key="run").options),
    }}
    victim.write_bytes(original)  # repaired: listed and usable again
    at.run()
    at.selectbox(key="run").set_value("victim").run()
    steps["repaired"] = {{
        "exceptions": [e.value for e in at.exception],
        "run": at.selectbox(key="run").value,
        "latency": [m.value for m in at.metric if m.label == "Exit step"],
    }}
    print(json.dumps(steps))
"""


def test_truncating_an_open_run_shows_an_error_and_the_app_lives(runs_root):
    victim = copy_run(runs_root / "synth", runs_root / "victim")
    rc, steps, err = run_script(
        APP_AFTER_TRUNCATION.format(app=APP),
        {"VICTIM": str(victim), "DYNCONF_RUNS": str(runs_root)},
    )
    assert rc == 0, err  # not -SIGBUS
    assert steps["before"], "the samples page showed the victim run"
    after = steps["after"]
    assert after["exceptions"] == []
    assert any("victim" in plain(e) and "truncated" in plain(e) for e in after["errors"]), after
    assert after["run"] == "synth" and "victim" not in after["options"]  # the others still work
    repaired = steps["repaired"]
    assert repaired["exceptions"] == [] and repaired["run"] == "victim" and repaired["latency"]


def test_listing_and_pages_only_read_runs_into_memory(runs_root):
    """No array of a loaded run is a memory map: a later change cannot reach a mapped read."""
    from dynconf.app import caches

    app("samples")
    runs = [v for v in caches.CACHE.values() if hasattr(v, "splits")]
    assert runs
    for run in runs:
        for sp in run.splits.values():
            for arr in (sp.outputs, sp.labels, sp.spikes, sp.ids):
                if arr is not None:
                    assert not isinstance(arr, np.memmap) and not isinstance(arr.base, np.memmap)


# --------------------------------------------------------------------------- 2: FIFO


APP_WITH_FIFOS = """
    import json
    from streamlit.testing.v1 import AppTest
    from dynconf.app.routes import page_path
    at = AppTest.from_file({app!r}, default_timeout=60).run()
    out = {{"exceptions": [e.value for e in at.exception]}}
    at.switch_page(page_path("runs")).run()
    out["exceptions"] += [e.value for e in at.exception]
    table = at.table[0].value.set_index("run")
    out["status"] = table["status"].to_dict()
    out["problem"] = table["problem"].to_dict()
    print(json.dumps(out))
"""


def test_fifo_in_a_run_never_freezes_the_app(runs_root):
    fifo_array = copy_run(runs_root / "synth", runs_root / "fifo_array")
    (fifo_array / "test.outputs.npy").unlink()
    os.mkfifo(fifo_array / "test.outputs.npy")
    fifo_meta = runs_root / "fifo_meta"
    fifo_meta.mkdir()
    os.mkfifo(fifo_meta / "meta.json")
    rc, out, err = run_script(
        APP_WITH_FIFOS.format(app=APP), {"DYNCONF_RUNS": str(runs_root)}, timeout=90
    )
    assert rc == 0, err
    assert out["exceptions"] == []
    assert out["status"] == {"fifo_array": "damaged", "fifo_meta": "damaged", "synth": "ok"}
    assert "not a regular file" in out["problem"]["fifo_array"]


# --------------------------------------------------------------------------- 3: memory


def test_cache_bytes_stay_within_budget_while_cycling_kappas(runs_root, monkeypatch):
    from dynconf.app import caches
    from dynconf.app.memcache import nbytes_of

    run = load_run(runs_root / "synth")
    sp = run.split("test")
    caches.CACHE.clear()
    monkeypatch.setenv("DYNCONF_CACHE_MB", "10000")
    at = app("explorer", threshold="0.5")
    one_view = nbytes_of(caches.CACHE.values())
    assert one_view > 0
    budget = int(1.6 * one_view)  # room for the run and about one more kappa's analyses
    monkeypatch.setenv("DYNCONF_CACHE_MB", str(budget / 1e6))
    analyses_seen = set()
    for kappa in np.linspace(1.0, 40.0, 14):
        at.number_input(key="kappa").set_value(float(kappa)).run()
        assert not at.exception
        held = caches.CACHE.values()
        # Counted independently: every buffer reachable from every cached value, once.
        assert nbytes_of(held) <= budget
        assert caches.CACHE.nbytes <= budget
        analyses_seen |= {k for k in caches.CACHE.ordered_keys() if k[0] == "analysis"}
        want = metrics.evaluate(decode(sp, "paper", kappa=float(kappa)), 0.5)
        shown = next(m.value for m in at.metric if m.label == "Mean latency")
        assert shown == f"{want.mean_latency:.2f} steps"
    cached_now = {k for k in caches.CACHE.ordered_keys() if k[0] == "analysis"}
    assert len(analyses_seen) >= 14 > len(cached_now)  # older kappas were evicted


def test_one_decode_per_split_serves_every_page(runs_root, monkeypatch):
    import dynconf.core.decoders
    from dynconf.app import caches

    caches.CACHE.clear()
    calls = []
    original = dynconf.core.decoders.decode

    def counting(split, decoder="paper", kappa=None):
        calls.append((split.name, decoder, kappa))
        return original(split, decoder, kappa)

    monkeypatch.setattr(dynconf.core.decoders, "decode", counting)
    at = app("explorer", threshold="0.5")
    for page in ("oracle", "selection", "policies", "samples", "home", "compare"):
        at.switch_page(page_path(page)).run()
        assert not at.exception
    assert sorted(calls) == [("calibration", "paper", None), ("test", "paper", None)]
    at.number_input(key="kappa").set_value(float(load_run(runs_root / "synth").T_max)).run()
    assert len(calls) == 2  # kappa = T_max is the default: the same analysis


# --------------------------------------------------------------------------- 4: zip bomb


def npz_bomb(shape: tuple[int, ...], chunk: int = 1 << 20) -> bytes:
    """A real .npz (zip, deflate) with one member, ``outputs``: float32 zeros of ``shape``.

    Built without inflating anything: after a full flush, deflating the same zero chunk gives
    the same bytes, so the stream is one compressed chunk repeated (1 GB in about 1 MB).
    """
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    head, nbytes = header.getvalue(), int(np.prod(shape)) * 4
    assert nbytes % chunk == 0
    zeros = bytes(chunk)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH) == block
    data = first + block * (nbytes // chunk) + comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head)
    for _ in range(nbytes // chunk):
        crc = zlib.crc32(zeros, crc)
    size, name = len(head) + nbytes, b"outputs.npy"
    assert size < 1 << 32  # no zip64 needed
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size,
                        len(name), 0) + name  # fmt: skip
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data),
                          size, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)  # fmt: skip
    return local + data + central + end


def test_the_bomb_is_a_real_zip_of_that_size():
    import zipfile

    bomb = npz_bomb((16, 16384, 4))  # 4 MiB: small enough to inflate here
    with zipfile.ZipFile(io.BytesIO(bomb)) as zf, zf.open("outputs.npy") as fh:
        arr = np.lib.format.read_array(fh)
    assert arr.shape == (16, 16384, 4) and not arr.any()
    assert len(bomb) < 20_000


def test_zip_bomb_upload_is_refused_without_inflating_or_writing(runs_root, tmp_path):
    """A 3 MB .npz that inflates to 3 GB: one clear error, no memory."""
    bomb = tmp_path / "bomb.npz"
    bomb.write_bytes(npz_bomb((64, 1_228_800, 10)))
    assert 2e6 < bomb.stat().st_size < 4e6
    rc, out, err = run_script(
        f"""
        import json
        from pathlib import Path
        from dynconf.app import uploads
        data = Path({str(bomb)!r}).read_bytes()
        try:
            uploads.import_upload("bombed", "bomb.npz", data)
            message = None
        except Exception as exc:
            message = f"{{type(exc).__name__}}: {{exc}}"
        # VmHWM: this process's peak resident memory (ru_maxrss would include pytest's,
        # inherited across fork)
        status = Path("/proc/self/status").read_text()
        hwm = next(ln for ln in status.splitlines() if ln.startswith("VmHWM"))
        peak_mb = int(hwm.split()[1]) / 1024
        print(json.dumps({{"message": message, "peak_mb": peak_mb}}))
        """,
        {"DYNCONF_RUNS": str(runs_root), "DYNCONF_WORK": str(tmp_path / "work")},
    )
    assert rc == 0, err
    assert out["message"] and out["message"].startswith("DynconfError: bomb.npz"), out
    assert "bomb" in out["message"] and ".uploads" not in out["message"]
    assert out["peak_mb"] < 300, out  # the server took 6.2 GB before
    work = tmp_path / "work"
    assert not (work / "bombed").exists()
    assert not any((work / ".uploads").iterdir())  # the temporary copy is gone too


def test_zip_bomb_through_the_runs_page_form(runs_root):
    at = app("runs")
    at.file_uploader(key="imp_file").set_value(
        ("bomb.npz", npz_bomb((64, 409_600, 10)), "application/zip")
    )
    at.text_input(key="imp_name").set_value("bombed")
    next(b for b in at.button if b.label == "Import").click()
    at.run()
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert any(e.startswith("Import refused: bomb.npz") for e in errors), errors
    assert not any(".uploads" in e for e in errors)
    assert not (default_work_root() / "bombed").exists()


# --------------------------------------------------------------------------- 5: metadata


HOSTILE_META = {
    "dataset": PAYLOAD,
    "model": "**bold** <img src=x onerror=alert(1)> $\\int$ :red[red] " + "m" * 200_000,
    "notes": "# Heading\n\n> quote\n\n" + PAYLOAD + "\n<script>alert(1)</script> ‮gnp.exe",
    "classes": [f"c{i} [x](http://127.0.0.1:8719/c{i}) `{i}` **{i}** 日本 🙂" for i in range(10)],
    "created": {"command": "python -m dynconf `x` [cmd](http://127.0.0.1:8719/cmd) $x$"},
    "ann_accuracy": {"other_split": 0.5},
    "unknown_field": {"anything": [None, True, {"x": "y" * 1000}]},
}


@pytest.fixture
def hostile_run(runs_root):
    path = copy_run(runs_root / "synth", runs_root / "hostile", **HOSTILE_META)
    load_run(path)  # the library accepts it: so must every page
    return path


@pytest.mark.parametrize("page", PAGES)
def test_every_page_survives_hostile_metadata(hostile_run, page):
    at = app(page, run="hostile", threshold="0.5")
    assert at.selectbox(key="run").value == "hostile"
    assert_no_markdown_injection(at)
    texts = markdown_texts(at)
    assert not any(len(t) > 20_000 for t in texts), "a 200 kB model name reached the page"
    if page == "home":
        body = next(m.value for m in at.markdown if "**Dataset**" in m.value)
        assert PAYLOAD in plain(body)  # the user sees the text as written
        assert any("imported" not in t and "Heading" in plain(t) for t in texts)
    if page == "explorer":
        sp = load_run(hostile_run).split("test")
        want = metrics.evaluate(decode(sp), 0.5)
        assert next(m.value for m in at.metric if m.label == "Mean latency") == (
            f"{want.mean_latency:.2f} steps"
        )


# --------------------------------------------------------------------------- 6: run names


def outputs_file() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **synthetic_split(60, 8, 10, seed=5, neurons=100, dtype=np.float32))
    return buf.getvalue()


def test_300_character_run_name_in_the_import_form(runs_root):
    at = app("runs")
    at.file_uploader(key="imp_file").set_value(("outs.npz", outputs_file(), "application/zip"))
    at.text_input(key="imp_name").set_value("a" * 300)
    next(b for b in at.button if b.label == "Import").click()
    at.run()
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert any(e.startswith("Import refused: run name") and "300 characters" in e for e in errors)
    assert not default_work_root().exists() or not any(
        p.name.startswith("a") for p in default_work_root().iterdir()
    )


def test_300_character_run_name_in_the_simulate_form(runs_root, tmp_path):
    at = app("runs")
    at.selectbox(key="sim_pick").set_value("other path...")
    at.text_input(key="sim_other").set_value(str(tmp_path / "model.pt"))
    at.text_input(key="sim_name").set_value("b" * 300)
    next(b for b in at.button if b.label == "Start simulation").click()
    at.run()
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert any(e.startswith("Not started: run name") and "300 characters" in e for e in errors)
    from dynconf import jobs

    assert jobs.list_jobs() == []


# --------------------------------------------------------------------------- 7: injection


def test_run_name_in_the_url_is_shown_as_text(runs_root):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = PAYLOAD
    at.switch_page(page_path("explorer"))  # a deep link: explorer?run=...
    at.run()
    assert not at.exception
    assert at.title[0].value == "Threshold explorer"
    errors = [e.value for e in [*at.error, *at.warning]]
    assert any(PAYLOAD in plain(e) for e in errors), errors
    assert_no_markdown_injection(at)
    assert at.selectbox(key="run").value == "synth"


def test_md_escape_leaves_no_markdown():
    from dynconf.app.text import md_escape

    for text in (PAYLOAD, "a_b*c*", "<b>x</b>", "$x$", ":red[x]", "www.evil.com", "a@b.co",
                 "line\n# heading", "1. item", "\u202eevil"):  # fmt: skip
        escaped = md_escape(text)
        assert "\n" not in escaped and "\u202e" not in escaped
        assert not re.search(r"(?<!\\)[`*_\[\]()<>$#!|~]", escaped), escaped
        assert plain(escaped) == text.replace("\n", " ").replace("\u202e", "")
    assert md_escape("m" * 1000).endswith("…") and len(md_escape("m" * 1000)) == 300


# --------------------------------------------------------------------------- 8: file names


def test_upload_messages_and_notes_name_the_users_file(runs_root):
    from dynconf.app import uploads

    user_name = "my outputs (v2).npz"
    bad = io.BytesIO()
    np.savez(bad, outputs=np.zeros((4, 10)), labels=np.zeros(10))  # 2-D outputs
    with pytest.raises(Exception) as info:
        uploads.import_upload("mine", user_name, bad.getvalue())
    message = str(info.value)
    assert user_name in message, message
    assert ".uploads" not in message and str(default_work_root()) not in message
    assert not (default_work_root() / "mine").exists()

    npy = io.BytesIO()
    np.save(npy, synthetic_split(60, 8, 10, seed=5, neurons=100)["outputs"])
    labels = io.BytesIO()
    np.save(labels, np.zeros(7, np.int64))  # 7 labels for 60 samples
    with pytest.raises(Exception) as info:
        uploads.import_upload(
            "mine", "outs.npy", npy.getvalue(), labels=("lab.npy", labels.getvalue())
        )
    message = str(info.value)
    assert ".uploads" not in message and str(default_work_root()) not in message, message

    run = uploads.import_upload("mine", user_name, outputs_file())
    assert run.meta["notes"] == f"imported from {user_name}"
    assert not any((default_work_root() / ".uploads").iterdir())
    at = app("home", run="mine")
    assert any(f"imported from {user_name}" == plain(x.value) for x in at.info)

    # A name the server cannot store as given still never shows a server path.
    with pytest.raises(Exception) as info:
        uploads.import_upload("mine2", "../../" + "z" * 300 + ".npz", bad.getvalue())
    assert ".uploads" not in str(info.value)


def test_upload_error_in_the_form_shows_the_users_file_name(runs_root):
    at = app("runs")
    bad = io.BytesIO()
    np.savez(bad, outputs=np.zeros((4, 10)), labels=np.zeros(10))
    at.file_uploader(key="imp_file").set_value(
        ("results_final.npz", bad.getvalue(), "application/zip")
    )
    at.text_input(key="imp_name").set_value("mine")
    next(b for b in at.button if b.label == "Import").click()
    at.run()
    errors = [plain(e.value) for e in at.error]
    assert any("results_final.npz" in e for e in errors), errors
    assert not any(".uploads" in e or str(default_work_root()) in e for e in errors)
    assert md_escape("results_final.npz") in " ".join(e.value for e in at.error)


def test_md_error_names_paths_relative_to_their_runs_folder(runs_root, tmp_path):
    from dynconf.app.text import md_error

    inside = runs_root / "synth" / "test.outputs.npy"
    text = plain(md_error(DynconfError(f"{inside}: truncated, and '{tmp_path}/elsewhere/x.npy'")))
    assert "runs/synth/test.outputs.npy: truncated" in text, text
    assert "…/x.npy" in text and str(tmp_path) not in text, text
    work = tmp_path / "work" / "mine" / "meta.json"
    assert plain(md_error(DynconfError(f"cannot read {work}"))) == "cannot read work/mine/meta.json"


def test_no_app_error_names_an_absolute_server_path(runs_root, tmp_path):
    copy_run(runs_root / "synth", runs_root / "broken")
    outputs = runs_root / "broken" / "test.outputs.npy"
    outputs.write_bytes(outputs.read_bytes()[:200])  # damaged: listed with its error
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()

    def errors() -> list[str]:  # messages, and the damaged-run list of the sidebar
        found = [e.value for kind in ("error", "warning") for e in getattr(at, kind)]
        return found + [m.value for m in at.markdown if "broken" in m.value]

    texts = errors()
    for page in ("oracle", "runs"):
        at.switch_page(page_path(page)).run()
        texts += errors()
    joined = "\n".join(plain(t) for t in texts)
    assert "broken/test.outputs.npy: truncated" in joined, joined  # the damage is reported ...
    assert str(tmp_path) not in joined  # ... by names relative to the runs folder
