"""The Runs page: the checkpoint's own dataset preselected, a typed path is the one
simulated, a button opens a new run, your own runs renamed and deleted (never shipped ones),
progress words (AppTest and dynconf.jobs, no browser)."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest

from dynconf import jobs
from dynconf.app.routes import page_path
from dynconf.core.store import default_work_root, load_run
from dynconf.errors import DynconfError
from tests.app.helpers import app


def import_mine(name: str) -> None:
    from dynconf.app import uploads
    from tests.helpers import synthetic_split

    buf = io.BytesIO()
    np.savez(buf, **synthetic_split(60, 8, 10, seed=2, neurons=50, dtype=np.float32))
    uploads.import_upload(name, "outs.npz", buf.getvalue(), split="test")


def plain(markdown: str) -> str:
    return markdown.replace("\\", "")


def problems(at) -> list[str]:
    """Errors on the page, less the fixture's damaged run (always listed on this page)."""
    return [e.value for e in at.error if "**broken** is damaged" not in e.value]


def button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, [b.label for b in at.button]
    return found[0]


def test_typed_checkpoint_sets_its_dataset_and_is_the_one_simulated(env, digits_checkpoint,
                                                                     tmp_path):  # fmt: skip
    # A copy nobody lists: its dataset can only come from its stored training config.
    typed = tmp_path / "elsewhere" / "my_model.pt"
    typed.parent.mkdir()
    shutil.copy(digits_checkpoint, typed)
    at = app("runs")
    before = at.selectbox(key="sim_dataset").value
    at.text_input(key="sim_other").set_value(str(typed)).run()
    assert not at.exception
    assert at.selectbox(key="sim_dataset").value == "digits", before
    assert any("trained on **digits**" in c.value for c in at.caption), [
        c.value for c in at.caption
    ] + [w.value for w in at.warning]
    # Another dataset is refused at once, naming the checkpoint's own.
    at.selectbox(key="sim_dataset").set_value("cifar10")
    at.text_input(key="sim_name").set_value("wrong_ds")
    button(at, "Start simulation").click().run()
    assert any("trained on digits, not cifar10" in plain(e.value) for e in at.error)
    assert not jobs.list_jobs()
    # The typed path is simulated although the menu still shows its first checkpoint.
    at.selectbox(key="sim_dataset").set_value("digits")
    at.number_input(key="sim_T").set_value(2)
    at.multiselect(key="sim_splits").set_value(["test"])
    at.number_input(key="sim_limit").set_value(10)
    at.text_input(key="sim_name").set_value("typed")
    button(at, "Start simulation").click().run()
    assert not problems(at), problems(at)
    job = next(j for j in jobs.list_jobs() if j.name == "typed")
    i = job.cmd.index("--checkpoint")
    assert job.cmd[i + 1] == str(typed) and job.cmd[job.cmd.index("--dataset") + 1] == "digits"
    jobs.cancel_job(job)


def test_listed_checkpoint_preselects_its_dataset(env, digits_checkpoint, monkeypatch):
    from dynconf.app import uploads

    monkeypatch.setattr(  # the listing of checkpoints of this test's runs root, plus one
        uploads,
        "checkpoint_candidates",
        lambda: {"/nonexistent/cifar.pt": "cifar10", str(digits_checkpoint): "digits"},
    )
    at = app("runs")
    assert at.selectbox(key="sim_dataset").value == "cifar10"
    at.selectbox(key="sim_pick").set_value(str(digits_checkpoint)).run()
    assert at.selectbox(key="sim_dataset").value == "digits"


def test_import_offers_a_button_that_opens_the_new_run(env, tmp_path):
    from tests.helpers import synthetic_split

    path = tmp_path / "outs.npz"
    np.savez(path, **synthetic_split(60, 8, 10, seed=4, neurons=50, dtype=np.float32))
    at = app("runs")
    # AppTest cannot fill a file uploader; the form's own handler is uploads.import_upload,
    # so import as it does and check the page's button on the next run.
    from dynconf.app import uploads

    run = uploads.import_upload("fresh", path.name, path.read_bytes(), split="test")
    at.session_state["_runs_imported"] = (run.name, "test")
    at.run()
    button(at, "Open fresh").click().run()
    assert not at.exception
    assert at.selectbox(key="run").value == "fresh"
    assert at.title[0].value == "Threshold explorer" or "explorer" in str(at.title[0].value)


def test_rename_and_delete_your_own_runs_only(env):
    import_mine("mine_a")
    at = app("runs", run="mine_a")
    assert at.selectbox(key="own_pick").options == ["mine_a"]  # shipped runs are not offered
    at.text_input(key="own_new_name").set_value("mine_b")
    button(at, "Rename").click().run()
    assert not at.exception and not problems(at), problems(at)
    work = default_work_root()
    assert (work / "mine_b" / "meta.json").is_file() and not (work / "mine_a").exists()
    assert load_run(work / "mine_b").split("test").N == 60
    assert at.selectbox(key="run").value == "mine_b"  # the sidebar follows the rename
    # A bad or taken name is refused with one line.
    at.text_input(key="own_new_name").set_value("synth").run()
    button(at, "Rename").click().run()
    assert any("shipped run" in e.value for e in at.error)
    # Delete asks first; Cancel keeps it.
    button(at, "Delete mine_b...").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    button(at, "Cancel").click().run()
    assert (work / "mine_b").is_dir()
    button(at, "Delete mine_b...").click().run()
    button(at, "Yes, delete mine_b").click().run()
    assert not at.exception
    assert not (work / "mine_b").exists()
    assert not [p for p in work.iterdir() if not p.name.startswith(".")]  # nothing left
    assert "mine_b (mine)" not in at.selectbox(key="run").options


def test_own_run_operations_refuse_everything_but_your_runs(env, tmp_path):
    import_mine("keep")
    work = default_work_root()
    for bad in ("synth", "../x", "nope"):
        with pytest.raises(DynconfError):
            jobs.delete_run(bad)
    (work / "link").symlink_to(env / "synth")  # a link to a shipped run is not yours
    with pytest.raises(DynconfError, match="not one of your runs"):
        jobs.delete_run("link")
    assert (env / "synth" / "meta.json").is_file()
    with pytest.raises(DynconfError, match="shipped run"):
        jobs.rename_run("keep", "synth")
    import_mine("other")
    with pytest.raises(DynconfError, match="already exists"):
        jobs.rename_run("keep", "other")
    with pytest.raises(DynconfError, match="overlaps"):
        jobs.delete_run("synth", work_root=env)


def test_progress_words_say_done_when_done():
    assert jobs.progress_words({"done": 200, "total": 200, "eta_s": 0}) == (
        "200 / 200 images · done, writing the run"
    )
    assert jobs.progress_words({"done": 0, "total": 200}) == "0 / 200 images · starting"
    assert jobs.progress_words({"done": 50, "total": 200, "eta_s": 12.4}).endswith("12 s left")


# --------------------------------------------------------------------------- where runs live


def test_every_listed_run_says_which_folder_it_lives_in(env, tmp_path, monkeypatch):
    from tests.helpers import build_synthetic_run

    extra = tmp_path / "extra runs"
    build_synthetic_run(extra / "elsewhere", n_test=40, n_cal=30)
    monkeypatch.setenv("DYNCONF_RUNS", f"{extra}{os.pathsep}{env}")
    at = app("runs")
    table = at.table[0].value
    folders = dict(zip(table["run"], table["folder"], strict=True))
    assert folders["elsewhere"] == str(extra) and folders["synth"] == str(env)
    where = " ".join(m.value for m in at.markdown)
    assert f"{plain(str(extra))} (shipped): 1 run(s)" in plain(where)
    assert f"{plain(str(env))} (shipped): 3 run(s)" in plain(where)


def test_a_run_opened_by_path_becomes_the_current_run(env, tmp_path):
    from dynconf.app.caches import OPENED_KEY
    from tests.helpers import build_synthetic_run

    path = tmp_path / "far" / "away" / "synth"  # the same name as a listed run: it wins
    build_synthetic_run(path, n_test=50, n_cal=20, seed=5)
    at = app("runs")
    at.text_input(key="open_path").set_value(str(path))
    button(at, "Open").click().run()
    assert not at.exception and not problems(at)
    assert at.session_state["run"] == "synth"
    assert at.session_state[OPENED_KEY] == [str(path.resolve())]
    at.switch_page(page_path("runs")).run()
    table = at.table[0].value
    opened = table[table["run"] == "synth"]
    assert list(opened["where"]) == ["opened"] and list(opened["folder"]) == [str(path.parent)]
    # The sidebar now shows the opened run, not the listed one of the same name.
    at.switch_page(page_path("home")).run()
    assert any("N=50" in m.value or "50" in m.value for m in at.metric)


@pytest.mark.parametrize("typed", ["", "no/such/run", "FILE"])
def test_a_path_that_is_no_run_is_refused_in_one_line(env, tmp_path, typed):
    if typed == "FILE":
        typed = str(tmp_path / "meta.json")
        (tmp_path / "meta.json").write_text("{}")
    at = app("runs")
    at.text_input(key="open_path").set_value(typed)
    button(at, "Open").click().run()
    errors = [plain(e) for e in problems(at)]
    assert len(errors) == 1 and errors[0].startswith("Not opened:"), errors
    assert "run" not in at.session_state or at.session_state["run"] != "meta.json"
