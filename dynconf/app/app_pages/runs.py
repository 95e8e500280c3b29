"""Runs: every run with its health and the folder it lives in, open a run folder by path,
import your own outputs, simulate a checkpoint, and rename or delete your own runs (work root
only; shipped runs are never touched).

After an import or a finished simulation a button opens the new run. The checkpoint to
simulate is chosen outside the form, so its dataset (from its stored training config) is
preselected as soon as it is picked or typed; a typed path is always the one used.
"""

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from dynconf import jobs
from dynconf.app import caches, uploads
from dynconf.app.routes import page_path
from dynconf.app.text import md_error, md_escape
from dynconf.core.format import check_run_name
from dynconf.core.roots import listing_roots
from dynconf.core.store import default_work_root, load_run
from dynconf.engine.data import dataset_names  # the dataset registry; imports no torch
from dynconf.errors import DynconfError
from dynconf.inputs import default_data_root

OPEN_KEY = "_runs_open"  # a run to open: set by a button's callback, acted on below


def open_run(name: str) -> None:
    """Callback: make ``name`` the sidebar's run (before the sidebar draws) and go to it."""
    st.session_state["run"] = name
    st.session_state.pop("threshold", None)  # its own calibrated C, not the last run's
    st.session_state[OPEN_KEY] = name


def open_run_path() -> None:
    """Callback: open the run folder typed into ``open_path`` (listed first from now on in
    this browser tab), or say why it cannot be opened."""
    ss = st.session_state
    text = str(ss.get("open_path", "")).strip()
    ss.pop("_runs_open_error", None)
    try:
        if not text:
            raise DynconfError("type the path of a run folder (the folder holding meta.json)")
        path = Path(text).expanduser().resolve()
        load_run(path, check_values=False)  # shape and meta checks; the app validates fully
    except (DynconfError, OSError) as exc:
        ss["_runs_open_error"] = f"Not opened: {exc}"
        return
    opened = [p for p in ss.get(caches.OPENED_KEY, []) if Path(p).name != path.name]
    ss[caches.OPENED_KEY] = [str(path), *opened]  # a name opened again: the newest path
    open_run(path.name)


if st.session_state.pop(OPEN_KEY, None):
    st.switch_page(page_path("explorer"))

st.title("Runs")
listing = caches.run_listing()
rows = []
for item in listing:
    meta = item.meta or {}
    splits = meta.get("splits")
    # A damaged run's meta may hold anything: show it as text, never trust its types.
    rows.append(
        {
            "run": item.name,
            "where": item.source,
            "folder": str(Path(item.path).parent),
            "status": "ok" if item.ok else "damaged",
            "dataset": str(meta.get("dataset", "")),
            "model": str(meta.get("model", "")),
            "T_max": str(meta.get("T_max", "")),
            "splits": ", ".join(f"{k} ({v})" for k, v in splits.items())
            if isinstance(splits, dict)
            else "",
            "problem": item.error or "",
        }
    )
if rows:
    # A static table wraps its cells to the page (a data grid of nine columns scrolls
    # sideways at 1024 px).
    st.table(pd.DataFrame(rows), border="horizontal", hide_index=True)
else:
    st.info("No runs yet.")
for item in listing:
    if not item.ok:
        st.error(
            f"**{md_escape(item.name)}** is damaged and cannot be opened: "
            f"{md_escape(item.error, limit=2000)}"
        )
st.subheader("Where the runs live")
shown = {}
for item in listing:
    shown.setdefault(str(Path(item.path).parent), []).append(item.name)
lines = [
    f"- {md_escape(folder)} ({source}): "
    + (f"{len(shown[str(folder)])} run(s)" if str(folder) in shown else "no run listed")
    for folder, source in listing_roots()
    if folder.is_dir()
]
lines += [
    f"- {md_escape(folder)} (opened): {md_escape(', '.join(names))}"
    for folder, names in shown.items()
    if all(str(root) != folder for root, _ in listing_roots())
]
st.markdown("\n".join(lines) or "No runs folder exists yet.")
st.caption(
    "Folders come from `dynconf app --runs DIR`, DYNCONF\\_RUNS (several joined by "
    f"{md_escape(os.pathsep)}), the current folder's runs/ and cached\\_runs/, the demo runs "
    "installed with dynconf, and your own runs (DYNCONF\\_WORK). A name listed earlier hides a "
    "later run of the same name."
)
with st.form("open_form"):
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.text_input(
        "Open a run folder by path",
        key="open_path",
        placeholder="/path/to/my_run (the folder holding meta.json)",
    )
    c2.form_submit_button("Open", on_click=open_run_path, icon=":material/folder_open:")
if st.session_state.get("_runs_open_error"):
    st.error(md_escape(st.session_state["_runs_open_error"], limit=2000))

# ------------------------------------------------------------------ import
st.header("Import an outputs file")
st.markdown(
    "An `.npz` with `outputs` **[T, N, K]** (per-step outputs of the last layer, time first), "
    "`labels` [N] and optionally `spikes` [T, N] and `ids` [N]; or an `.npy` outputs array "
    "plus a labels `.npy`. Checked exactly like `python -m dynconf import` "
    f"(at most {uploads.max_upload_mb():g} MB, {uploads.max_inflated_mb():g} MB unpacked)."
)
with st.form("import_form", clear_on_submit=False):
    up = st.file_uploader("Outputs file", type=list(uploads.UPLOAD_TYPES), key="imp_file")
    up_labels = st.file_uploader(
        "Labels (.npy, only with an .npy outputs file)", type=["npy"], key="imp_labels"
    )
    c1, c2 = st.columns(2)
    name = c1.text_input("Run name", key="imp_name", placeholder="my_snn")
    split = c2.text_input("Split", value="test", key="imp_split")
    c1, c2, c3 = st.columns(3)
    dataset = c1.text_input("Dataset (optional)", key="imp_dataset")
    model = c2.text_input("Model (optional)", key="imp_model")
    classes = c3.text_input("Class names, comma-separated (optional)", key="imp_classes")
    c1, c2 = st.columns(2)
    layout = c1.selectbox(
        "Layout of the outputs",
        list(uploads.LAYOUT_CHOICES),
        key="imp_layout",
        help="SEENN and other batch-first code save [N, T, K]; the run format is [T, N, K]. "
        "With the first choice a file whose T equals N is refused until you say which.",
    )
    steps = c2.selectbox(
        "The outputs are",
        list(uploads.STEP_CHOICES),
        key="imp_steps",
        help="Running sums S_t read as per-step outputs give wrong numbers: 'detect' refuses "
        "outputs whose norm grows steadily with t until you say what they are.",
    )
    submitted = st.form_submit_button("Import", icon=":material/upload:")
if submitted:
    if up is None:
        st.error("Choose an outputs file first.")
    else:
        try:
            run = uploads.import_upload(
                name.strip(),
                up.name,
                up.getvalue(),
                split=split.strip() or "test",
                labels=(up_labels.name, up_labels.getvalue()) if up_labels else None,
                layout=uploads.LAYOUT_CHOICES[layout],
                cumulative=uploads.STEP_CHOICES[steps],
                dataset=dataset.strip(),
                model=model.strip(),
                classes=[c.strip() for c in classes.split(",") if c.strip()] or None,
            )
        except DynconfError as exc:
            st.error(f"Import refused: {md_error(exc)}")
            st.session_state.pop("_runs_imported", None)
        else:
            st.session_state["_runs_imported"] = (run.name, ", ".join(run.split_names))
imported = st.session_state.get("_runs_imported")
# (listed again: the run was made after the page's listing at the top)
if imported and any(item.name == imported[0] and item.ok for item in caches.run_listing()):
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.success(
        f"Imported: run **{md_escape(imported[0])}** now has splits {md_escape(imported[1])}."
    )
    c2.button(
        f"Open {imported[0]}",
        key="imp_open",
        on_click=open_run,
        args=(imported[0],),
        icon=":material/open_in_new:",
        type="primary",
    )

# ------------------------------------------------------------------ simulate
st.header("Simulate a checkpoint")
candidates = uploads.checkpoint_candidates()
if not candidates:
    st.info(
        "No checkpoint found (shipped runs' `model.pt`, or `checkpoints/*/model.pt` written "
        "by `python -m dynconf train`). You can still type a path."
    )
OTHER = "other path..."
# Outside the form, so a choice reruns the page and the dataset below follows it.
c1, c2 = st.columns(2)
pick = c1.selectbox("Checkpoint", [*candidates, OTHER], key="sim_pick")
other = c2.text_input(
    "Other checkpoint path",
    key="sim_other",
    help="A typed path is the checkpoint simulated, whatever the menu shows.",
)
ckpt = other.strip() or ("" if pick == OTHER else pick)
trained_on, why = uploads.checkpoint_dataset(ckpt) if ckpt else (None, "no checkpoint chosen")
datasets = list(dataset_names())
if st.session_state.get("_sim_ckpt_seen") != ckpt:  # a new checkpoint: its dataset
    st.session_state["_sim_ckpt_seen"] = ckpt
    if trained_on in datasets:
        st.session_state["sim_dataset"] = trained_on
if ckpt and trained_on:
    st.caption(f"Simulates **{md_escape(ckpt, limit=400)}**, trained on **{trained_on}**.")
elif ckpt:
    st.warning(f"{md_escape(why, limit=600)}.")
with st.form("sim_form"):
    # Two rows of two: four columns cut the split names at 1024 px.
    c1, c2 = st.columns(2)
    c3, c4 = st.columns(2)
    dataset = c1.selectbox("Dataset", datasets, key="sim_dataset")
    T = c2.number_input("T (time steps)", min_value=1, max_value=1024, value=32, key="sim_T")
    splits = c3.multiselect(
        "Splits",
        ["calibration", "test", "train"],
        default=["calibration", "test"],
        key="sim_splits",
    )
    limit = c4.number_input(
        "Samples per split (0 = all)", min_value=0, value=0, step=100, key="sim_limit"
    )
    run_name = st.text_input(  # the example follows the chosen checkpoint's dataset
        "New run name", key="sim_name", placeholder=f"{trained_on or 'my_run'}_T32"
    )
    launch = st.form_submit_button("Start simulation", icon=":material/play_arrow:")
if launch:
    args = [
        "--checkpoint",
        ckpt,
        "--dataset",
        dataset,
        "--T",
        str(int(T)),
        "--splits",
        ",".join(splits),
    ]
    if limit:
        args += ["--limit", str(int(limit))]
    data_root = default_data_root()
    if data_root is not None:
        args += ["--data-root", str(data_root)]
    try:
        uploads.check_new_name(run_name.strip())  # length and characters, before any path
        if not ckpt or not Path(ckpt).is_file():
            raise DynconfError(f"checkpoint {ckpt!r} does not exist")
        if trained_on and dataset != trained_on:  # refuse now, not after the job starts
            raise DynconfError(f"the checkpoint was trained on {trained_on}, not {dataset}")
        if not splits:
            raise DynconfError("choose at least one split")
        jobs.start_job(run_name.strip(), args)
    except DynconfError as exc:
        st.error(f"Not started: {md_error(exc)}")
    else:
        st.success(
            f"Started **{md_escape(run_name.strip())}** in the background; it joins the run "
            "list when done."
        )


def jobs_panel() -> None:
    listed = jobs.list_jobs()
    if not listed:
        st.caption("No simulations yet.")
        return
    for job in listed:
        status = job.status()
        prog = job.progress()
        done, total = prog.get("done", 0), prog.get("total") or 0
        with st.container(border=True):
            c1, c2 = st.columns([4, 1])
            c1.markdown(f"**{md_escape(job.name)}** · {md_escape(status)}")
            if status == "running":
                c1.progress(
                    min(1.0, done / total) if total else 0.0, text=jobs.progress_words(prog)
                )
                c2.button(
                    "Cancel",
                    key=f"cancel-{job.name}",
                    on_click=jobs.cancel_job,
                    args=(job,),
                    icon=":material/stop:",
                )
            else:
                if status == "done":
                    c1.success(f"Done: {done:,} / {total:,} images simulated.")
                    if any(i.name == job.name and i.ok for i in caches.run_listing()):
                        c2.button(
                            "Open",
                            key=f"open-{job.name}",
                            on_click=open_run,
                            args=(job.name,),
                            icon=":material/open_in_new:",
                        )
                elif status == "failed":
                    c1.error("Failed; the log's last lines:")
                    c1.code(job.log_tail() or "(empty log)")
                c2.button(
                    "Dismiss", key=f"forget-{job.name}", on_click=jobs.forget_job, args=(job,)
                )
    # A job that just finished must reach the sidebar's run list: rerun the whole app once.
    finished = {j.name for j in listed if j.status() == "done"}
    if finished - st.session_state.get("_jobs_done", set()):
        st.session_state["_jobs_done"] = finished
        st.rerun(scope="app")


st.subheader("Simulations")
running = any(job.alive() for job in jobs.list_jobs())
# Poll only while something runs, so an idle page does not rerun forever.
st.fragment(jobs_panel, run_every=1.0 if running else None)()


# ------------------------------------------------------------------ your runs
st.header("Your runs")
mine = [item for item in listing if item.source == "mine"]
st.caption(
    f"Runs in {md_escape(default_work_root())} only; the runs of other folders cannot be "
    "renamed or deleted here."
)
RENAMED = "_runs_renamed"
if st.session_state.get(RENAMED):
    st.success(md_escape(st.session_state.pop(RENAMED), limit=400))
if not mine:
    st.caption("You have no runs yet: import or simulate one above.")
else:

    def do_rename(old: str) -> None:
        ss = st.session_state
        new = ss.get("own_new_name", "").strip()
        try:
            check_run_name(new)
            jobs.rename_run(old, new)
        except DynconfError as exc:
            ss["_runs_manage_error"] = f"Not renamed: {exc}"
            return
        ss.pop("_runs_manage_error", None)
        if ss.get("run") == old:
            ss["run"] = new  # keep showing it, under its new name
        ss["own_pick"] = new
        ss["own_new_name"] = ""
        ss[RENAMED] = f"Renamed {old} to {new}."

    def do_delete(name: str) -> None:
        ss = st.session_state
        try:
            jobs.delete_run(name)
        except DynconfError as exc:
            ss["_runs_manage_error"] = f"Not deleted: {exc}"
        else:
            ss.pop("_runs_manage_error", None)
            if ss.get("run") == name:
                ss.pop("run", None)
                ss.pop("threshold", None)
            ss.pop("own_pick", None)
            ss[RENAMED] = f"Deleted {name}."
        ss.pop("_runs_confirm", None)

    names = [item.name for item in mine]
    if st.session_state.get("own_pick") not in names:
        st.session_state["own_pick"] = names[0]
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    own = c1.selectbox("Run", names, key="own_pick")
    c2.text_input("New name", key="own_new_name", placeholder="letters, digits, - or _")
    c3.button("Rename", key="own_rename", on_click=do_rename, args=(own,))
    if st.session_state.get("_runs_manage_error"):
        st.error(md_escape(st.session_state["_runs_manage_error"], limit=2000))
    if st.session_state.get("_runs_confirm") == own:
        st.warning(f"Delete **{md_escape(own)}** and all its files? This cannot be undone.")
        d1, d2, _ = st.columns([1, 1, 3])
        d1.button(
            f"Yes, delete {own}",
            key="own_delete_yes",
            on_click=do_delete,
            args=(own,),
            type="primary",
            icon=":material/delete:",
        )
        d2.button(
            "Cancel",
            key="own_delete_no",
            on_click=lambda: st.session_state.pop("_runs_confirm", None),
        )
    else:
        st.button(
            f"Delete {own}...",
            key="own_delete",
            on_click=lambda name=own: st.session_state.__setitem__("_runs_confirm", name),
            icon=":material/delete:",
        )
