"""Runs: every run with its health, import your own outputs, simulate a checkpoint."""

from pathlib import Path

import pandas as pd
import streamlit as st

from dynconf import jobs
from dynconf.core.store import default_runs_root, default_work_root
from dynconf.engine.data import dataset_names  # the dataset registry; imports no torch
from dynconf.errors import DynconfError
from dynconf.inputs import default_data_root
from ui import caches, uploads
from ui.text import md_error, md_escape

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
    st.dataframe(pd.DataFrame(rows), hide_index=True)
else:
    st.info("No runs yet.")
for item in listing:
    if not item.ok:
        st.error(
            f"**{md_escape(item.name)}** is damaged and cannot be opened: "
            f"{md_escape(item.error, limit=2000)}"
        )
st.caption(
    f"Shipped runs: {md_escape(default_runs_root())} · yours: {md_escape(default_work_root())}"
)

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
        else:
            st.success(
                f"Imported: run **{md_escape(run.name)}** now has splits "
                f"{md_escape(', '.join(run.split_names))}. Pick it in the sidebar."
            )

# ------------------------------------------------------------------ simulate
st.header("Simulate a checkpoint")
candidates = uploads.checkpoint_candidates()
if not candidates:
    st.info(
        "No checkpoint found (shipped runs' `model.pt`, or `checkpoints/*/model.pt` written "
        "by `python -m dynconf train`). You can still type a path."
    )
with st.form("sim_form"):
    options = [*candidates, "other path..."]
    pick = st.selectbox("Checkpoint", options, key="sim_pick")
    other = st.text_input("Other checkpoint path", key="sim_other")
    c1, c2, c3, c4 = st.columns(4)
    datasets = list(dataset_names())
    guess = candidates.get(pick) if pick in candidates else None
    dataset = c1.selectbox(
        "Dataset",
        datasets,
        index=datasets.index(guess) if guess in datasets else 0,
        key="sim_dataset",
    )
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
    run_name = st.text_input("New run name", key="sim_name", placeholder="digits_T32")
    launch = st.form_submit_button("Start simulation", icon=":material/play_arrow:")
if launch:
    ckpt = other.strip() if pick == "other path..." else pick
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
                eta = prog.get("eta_s")
                c1.progress(
                    done / total if total else 0.0,
                    text=f"{done:,} / {total:,} images"
                    + (f" · about {eta:.0f} s left" if eta else " · starting"),
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
                    c1.success("Complete: pick it in the sidebar.")
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
