"""Streamlit helpers shared by ``app.py`` and the pages; the library never imports this.

- Where runs live: ``DYNCONF_RUNS`` (shipped runs, default ``cached_runs/`` beside this
  file), ``DYNCONF_WORK`` (the user's imports and simulations, default ``work_runs/``),
  ``DYNCONF_DATA`` (dataset root, for showing input images).
- Caching: one ``Run`` per run directory and one :class:`Analysis` per
  run + split + decoder + kappa (``st.cache_resource``), so that moving the threshold
  recomputes only that threshold's own policy result; curves and sweeps are computed once.
- The shared sidebar: run, split, decoder, kappa and threshold live in ``st.session_state``
  and are mirrored into the URL (``st.query_params``) so a view is shareable and survives a
  reload.
- Charts: every figure is drawn with PNG/SVG/PDF/CSV download buttons beside it.
- Background simulation jobs for the Runs page: a detached ``python -m dynconf simulate``
  process per job, with a small JSON job file, so a job survives reruns and page changes.

Nothing here imports torch: browsing runs must stay fast on a fresh machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from dynconf.errors import DynconfError
from dynconf.report import export, figures

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_THRESHOLD = 0.9
THRESHOLD_STEP = 0.005  # slider resolution; the number box beside it takes any value
PREFERRED_RUNS = ("cifar10_resnet20", "digits")


# --------------------------------------------------------------------------- locations


def runs_root() -> Path:
    return Path(os.environ.get("DYNCONF_RUNS") or ROOT / "cached_runs")


def work_root() -> Path:
    return Path(os.environ.get("DYNCONF_WORK") or ROOT / "work_runs")


def data_root() -> Path | None:
    root = os.environ.get("DYNCONF_DATA")
    return Path(root).expanduser() if root else None


def _stamp(path: Path) -> tuple[int, int]:
    """Changes whenever a run directory is replaced or gains a file (cache key)."""
    try:
        meta = (path / "meta.json").stat().st_mtime_ns
    except OSError:
        meta = 0
    try:
        return path.stat().st_mtime_ns, meta
    except OSError:
        return 0, meta


def _root_stamp(root: Path) -> tuple:
    try:
        entries = sorted(
            (e.name, _stamp(Path(e.path)))
            for e in os.scandir(root)
            if e.is_dir() and not e.name.startswith(".")
        )
    except OSError:
        return ()
    return tuple(entries)


# --------------------------------------------------------------------------- runs and caches


@dataclass(frozen=True)
class Listing:
    """One run directory as the app lists it (``error`` set when it is damaged)."""

    name: str
    path: str
    ok: bool
    error: str | None
    meta: dict
    source: str  # "shipped" or "mine"


@st.cache_data(show_spinner="Checking runs...", max_entries=8)
def _list_root(root: str, stamp: tuple, source: str) -> list[Listing]:
    from dynconf.core.store import list_runs

    out = []
    for item in list_runs(root):
        if Path(item.path).name.startswith("."):
            continue  # the job folder and temp dirs of atomic writes
        out.append(
            Listing(
                item.name, str(item.path), bool(item.ok), item.error, dict(item.meta or {}), source
            )
        )
    return out


def run_listing() -> list[Listing]:
    """Shipped runs first, then the user's; a name clash hides the user's copy."""
    seen: set[str] = set()
    out: list[Listing] = []
    for root, source in ((runs_root(), "shipped"), (work_root(), "mine")):
        if not root.is_dir():
            continue
        for item in _list_root(str(root), _root_stamp(root), source):
            if item.name not in seen:
                seen.add(item.name)
                out.append(item)
    return out


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_run(path: str, stamp: tuple):
    from dynconf.core.store import load_run

    return load_run(path)


def get_run(path: str | Path):
    return _load_run(str(path), _stamp(Path(path)))


class Analysis:
    """Everything about one run + split + decoder + kappa that does not depend on C.

    Built once per combination (cached); the threshold-dependent parts are the only
    computation a threshold move triggers.
    """

    def __init__(self, run: Any, split: str, decoder: str, kappa: float | None) -> None:
        from dynconf.core.decoders import decode

        self.run, self.split_name, self.decoder, self.kappa = run, split, decoder, kappa
        self.data = run.split(split)
        self.decoded = decode(self.data, decoder=decoder, kappa=kappa)
        self._lock = threading.Lock()
        self._memo: dict[tuple, Any] = {}

    def _get(self, key: tuple, fn):
        with self._lock:
            if key not in self._memo:
                self._memo[key] = fn()
            return self._memo[key]

    @cached_property
    def baseline(self) -> np.ndarray:
        from dynconf.core import metrics

        return np.asarray(metrics.baseline_curve(self.decoded))

    @cached_property
    def sweep(self) -> Any:
        from dynconf.core import metrics

        return metrics.sweep(self.decoded)

    def oracle_curve(self, variant: str = "first_correct", never_correct: str = "cap") -> Any:
        from dynconf.core import metrics

        return self._get(
            ("oracle_curve", variant, never_correct),
            lambda: metrics.oracle_curve(
                self.decoded, variant=variant, never_correct=never_correct
            ),
        )

    def oracle(self, variant: str = "first_correct", never_correct: str = "cap") -> Any:
        from dynconf.core import metrics

        return self._get(
            ("oracle", variant, never_correct),
            lambda: metrics.oracle(self.decoded, variant=variant, never_correct=never_correct),
        )

    def evaluate(self, threshold: float) -> Any:
        from dynconf.core import metrics

        return metrics.evaluate(
            self.decoded,
            threshold=threshold,
            spikes=self.data.spikes,
            neurons=self.run.meta.get("neurons"),
        )

    def capped(self, threshold: float) -> Any:
        from dynconf.core import metrics

        return metrics.capped_curve(self.decoded, threshold)


@st.cache_resource(show_spinner="Decoding confidences...", max_entries=32)
def _analysis(path: str, stamp: tuple, split: str, decoder: str, kappa: float | None) -> Analysis:
    return Analysis(_load_run(path, stamp), split, decoder, kappa)


def get_analysis(path: str | Path, split: str, decoder: str, kappa: float | None) -> Analysis:
    return _analysis(str(path), _stamp(Path(path)), split, decoder, kappa)


@st.cache_resource(show_spinner="Choosing a threshold on the calibration split...", max_entries=32)
def _selection(
    path: str,
    stamp: tuple,
    cal: str,
    split: str,
    decoder: str,
    kappa: float | None,
    tolerance: float,
) -> Any:
    from dynconf.core import metrics

    cal_a = _analysis(path, stamp, cal, decoder, kappa)
    test_a = _analysis(path, stamp, split, decoder, kappa)
    return metrics.select_threshold(cal_a.decoded, test_a.decoded, tolerance=tolerance)


def get_selection(path, cal: str, split: str, decoder: str, kappa, tolerance: float) -> Any:
    return _selection(str(path), _stamp(Path(path)), cal, split, decoder, kappa, tolerance)


# --------------------------------------------------------------------------- shared sidebar


@dataclass
class Context:
    """The view every page works on, as chosen in the sidebar."""

    listing: Listing
    run: Any
    split: str
    decoder: str
    kappa: float | None
    threshold: float

    @property
    def analysis(self) -> Analysis:
        return get_analysis(self.listing.path, self.split, self.decoder, self.kappa)

    @property
    def kappa_label(self) -> str:
        if self.decoder != "paper":
            return ""
        return (
            f"kappa = {self.kappa:g}"
            if self.kappa is not None
            else f"kappa = T_max = {self.run.T_max}"
        )


_CTX_KEY = "_dynconf_context"
_ERR_KEY = "_dynconf_context_error"


def _decoders() -> tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]:
    """Decoder names, their labels and those that take a kappa."""
    from dynconf.core import decoders as confidence

    return tuple(confidence.DECODERS), dict(confidence.DECODER_LABELS), confidence.USES_KAPPA


def _parse_float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _default_run(ok: list[Listing]) -> Listing:
    by_name = {item.name: item for item in ok}
    for name in PREFERRED_RUNS:
        if name in by_name:
            return by_name[name]
    for item in ok:
        if item.meta.get("dataset") == "cifar10":
            return item
    return ok[0]


def _sync_threshold_from(source: str) -> None:
    value = float(st.session_state[source])
    st.session_state["threshold"] = value
    # Keep the other control in step: the slider shows the nearest position it has.
    if source == "thr_slider":
        st.session_state["thr_number"] = value
    else:
        st.session_state["thr_slider"] = min(1.0, max(0.0, value))


def set_threshold(value: float) -> None:
    """Callback helper for pages ("use this threshold")."""
    value = float(value)
    st.session_state["threshold"] = value
    st.session_state["thr_slider"] = min(1.0, max(0.0, value))
    st.session_state["thr_number"] = value


def _initial_threshold(listing: Listing, run: Any, split: str, decoder: str, kappa) -> float:
    """The URL's threshold, else the one chosen on the calibration split, else 0.9."""
    from_url = _parse_float(st.query_params.get("threshold"))
    if from_url is not None and 0.0 <= from_url <= 1.0:
        return from_url
    cal = export.calibration_split(run, split)
    if cal is not None:
        try:
            return float(get_selection(listing.path, cal, split, decoder, kappa, 0.0).threshold)
        except DynconfError:
            pass
    return DEFAULT_THRESHOLD


def sidebar() -> Context | None:
    """Draw the shared sidebar; remember and return the current :class:`Context`.

    The first run of a session takes its state from the URL; afterwards the session state
    is the truth and the URL follows it.
    """
    ss = st.session_state
    qp = st.query_params
    st.session_state.pop(_CTX_KEY, None)
    st.session_state.pop(_ERR_KEY, None)
    listing = run_listing()
    ok = [item for item in listing if item.ok]
    damaged = [item for item in listing if not item.ok]
    with st.sidebar:
        if not ok:
            st.warning(
                f"No usable run under `{runs_root()}` or `{work_root()}`. Import an outputs "
                "file or simulate a checkpoint on the **Runs** page."
            )
            _show_damaged(damaged)
            return None
        names = [item.name for item in ok]
        if ss.get("run") not in names:
            wanted = qp.get("run")
            if wanted in names:
                ss["run"] = wanted
            else:
                if wanted and "run" not in ss:
                    st.error(f"Run `{wanted}` from the link is not available; showing another.")
                ss["run"] = _default_run(ok).name
        by_name = {item.name: item for item in ok}
        st.selectbox(
            "Run",
            names,
            key="run",
            format_func=lambda n: n if by_name[n].source == "shipped" else f"{n} (mine)",
            help="Shipped runs live in cached_runs/, yours in work_runs/.",
        )
        item = by_name[ss["run"]]
        try:
            run = get_run(item.path)
        except DynconfError as exc:  # damaged after it was listed
            st.error(f"Run `{item.name}` cannot be loaded: {exc}")
            return None
        splits = list(run.split_names)
        if ss.get("split") not in splits:
            wanted = qp.get("split")
            ss["split"] = wanted if wanted in splits else export.default_split(run)
        st.selectbox(
            "Split",
            splits,
            key="split",
            help="Evaluate on this split. Thresholds are chosen on calibration data.",
        )
        names_, labels, uses_kappa = _decoders()
        decoders = list(names_)
        if ss.get("decoder") not in decoders:
            wanted = qp.get("decoder")
            ss["decoder"] = wanted if wanted in decoders else decoders[0]
        st.selectbox(
            "Confidence decoder",
            decoders,
            key="decoder",
            format_func=lambda d: labels.get(d, d),
            help="How a confidence is read from the accumulated output S_t at each step. "
            "'paper' is the paper's decoder.",
        )
        if "kappa" not in ss:
            k = _parse_float(qp.get("kappa"))
            ss["kappa"] = k if k is not None and k > 0 else None
        st.number_input(
            "kappa (softmax scale)",
            min_value=0.01,
            value=None,
            step=1.0,
            key="kappa",
            placeholder=f"T_max = {run.T_max}",
            disabled=ss["decoder"] not in uses_kappa,
            help="p_t = softmax(S_t / kappa). Empty means T_max, the paper's default; "
            "larger values damp early exits more.",
        )
        kappa = ss["kappa"] if ss["decoder"] in uses_kappa else None
        if "threshold" not in ss:
            set_threshold(_initial_threshold(item, run, ss["split"], ss["decoder"], kappa))
        st.slider(
            "Threshold C",
            min_value=0.0,
            max_value=1.0,
            step=THRESHOLD_STEP,
            format="%.3f",
            key="thr_slider",
            on_change=_sync_threshold_from,
            args=("thr_slider",),
            help="A sample exits at the first step whose confidence is above C.",
        )
        st.number_input(
            "Exact threshold",
            min_value=0.0,
            max_value=1.0,
            step=0.0001,
            format="%.4f",
            key="thr_number",
            on_change=_sync_threshold_from,
            args=("thr_number",),
        )
        _show_damaged(damaged)
    ctx = Context(item, run, ss["split"], ss["decoder"], kappa, float(ss["threshold"]))
    _write_url(ctx)
    try:
        ctx.analysis  # noqa: B018 - decode now (cached) so a bad combination is caught here
    except DynconfError as exc:  # e.g. a top-k run cannot feed the per-step decoder
        ss[_ERR_KEY] = f"{item.name} / {ctx.split} / {ctx.decoder}: {exc}"
        return None
    ss.pop(_ERR_KEY, None)
    ss[_CTX_KEY] = ctx
    return ctx


def _write_url(ctx: Context) -> None:
    want = {
        "run": ctx.listing.name,
        "split": ctx.split,
        "decoder": ctx.decoder,
        "threshold": f"{ctx.threshold:.6g}",
    }
    if ctx.kappa is not None:
        want["kappa"] = f"{ctx.kappa:g}"
    current = {k: st.query_params.get(k) for k in (*want, "kappa")}
    if current != {**{"kappa": None}, **want}:
        # Keep parameters the pages own (e.g. "sample") and rewrite ours.
        keep = {k: v for k, v in st.query_params.to_dict().items() if k not in current}
        st.query_params.from_dict({**keep, **want})


def _show_damaged(damaged: list[Listing]) -> None:
    if damaged:
        with st.expander(f"Damaged runs ({len(damaged)})"):
            for item in damaged:
                st.markdown(f"**{item.name}**: {item.error}")


def context() -> Context:
    """The current view; stops the page with a hint when there is no run to show."""
    ctx = st.session_state.get(_CTX_KEY)
    if ctx is None:
        error = st.session_state.get(_ERR_KEY)
        if error:
            st.error(f"This view cannot be shown: {error}. Choose another decoder or split.")
        else:
            st.info("No run is selected. Use the **Runs** page to import or simulate one.")
        st.stop()
    return ctx


# --------------------------------------------------------------------------- charts & downloads


def show_chart(chart: figures.Chart, key: str, **kwargs: Any) -> Any:
    """Draw a chart (exactly the exported figure) with its download buttons underneath."""
    event = st.plotly_chart(
        chart.figure,
        theme=None,  # the exported image and the screen must look the same
        key=key,
        config={"displaylogo": False},
        **kwargs,
    )
    download_row(chart, key)
    return event


def clicked_position(event: Any, where: str) -> int | None:
    """The split position of a newly clicked exit-scatter point, else None.

    A chart selection persists across reruns; only a selection that differs from the last
    one handled here counts, so typing another sample number is not undone by an old click.
    """
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points or "customdata" not in points[0]:
        st.session_state.pop(f"_click_{where}", None)
        return None
    data = points[0]["customdata"]
    # Numeric customdata travels as a typed array; a selected row then arrives as
    # {"0": .., "1": ..} rather than a list.
    pos = int(data[0] if isinstance(data, list | tuple) else data.get("0", data.get(0)))
    if st.session_state.get(f"_click_{where}") == pos:
        return None
    st.session_state[f"_click_{where}"] = pos
    return pos


def download_row(chart: figures.Chart, key: str) -> None:
    """PNG/SVG/PDF/CSV buttons in one wrapping row under a chart."""
    row = st.container(horizontal=True, gap="small")
    fig = chart.figure
    for fmt in export.FORMATS:
        row.download_button(
            fmt.upper(),
            # Rendering costs ~0.3 s per image, so it happens only on click, off the script
            # thread (deferred data): drawing a page never waits for kaleido.
            data=lambda fmt=fmt: export.figure_bytes(fig, fmt),
            file_name=f"{chart.key}.{fmt}",
            mime=export.MIME[fmt],
            key=f"{key}-dl-{fmt}",
            on_click="ignore",
            icon=":material/download:",
            type="tertiary",
        )
    row.download_button(
        "CSV",
        data=chart.csv,  # deferred too: a 10k-sample table is not built on every rerun
        file_name=f"{chart.key}.csv",
        mime=export.MIME["csv"],
        key=f"{key}-dl-csv",
        on_click="ignore",
        icon=":material/table:",
        type="tertiary",
    )


def pack_buttons(ctx: Context, key: str, res: Any) -> None:
    """One-click figure pack (ZIP, the same set as ``dynconf export``) and LaTeX table.

    ``res`` is the page's PolicyResult at the current threshold.
    """
    cal = export.calibration_split(ctx.run, ctx.split)
    stem = f"{ctx.listing.name}_{ctx.split}_{ctx.decoder}_C{ctx.threshold:.4g}"

    def build_pack() -> bytes:
        charts, result, info = export.collect_charts(
            ctx.run,
            ctx.split,
            threshold=ctx.threshold,
            decoder=ctx.decoder,
            kappa=ctx.kappa,
            calibration=cal,
        )
        return export.zip_bytes(export.pack_files(ctx.run, charts, result, info))

    info = {
        "run": ctx.listing.name,
        "split": ctx.split,
        "decoder": ctx.decoder,
        "kappa": ctx.kappa,
        "threshold": ctx.threshold,
    }
    c1, c2, _ = st.columns([2, 2, 3])
    c1.download_button(
        "Figure pack (ZIP)",
        data=build_pack,
        file_name=f"{stem}.zip",
        mime=export.MIME["zip"],
        key=f"{key}-pack",
        on_click="ignore",
        icon=":material/folder_zip:",
        help="Every figure as PNG, SVG and PDF with its CSV, metrics.tex and metrics.json: "
        "the same files as `python -m dynconf export`.",
    )
    c2.download_button(
        "LaTeX table",
        data=export.latex_table(res, ctx.run.T_max, export._caption(ctx.run, info)),
        file_name=f"{stem}.tex",
        mime=export.MIME["tex"],
        key=f"{key}-tex",
        on_click="ignore",
        icon=":material/functions:",
    )


# --------------------------------------------------------------------------- formatting


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


# --------------------------------------------------------------------------- background jobs


def jobs_dir() -> Path:
    return work_root() / ".jobs"


# Popen handles of jobs this server process started, so finished ones are reaped and their
# exit codes known. Jobs from an earlier server process are judged by their files alone.
_PROCS: dict[str, subprocess.Popen] = {}


@dataclass
class Job:
    name: str
    pid: int
    out: str
    progress_file: str
    log_file: str
    started: float
    cmd: list[str]
    cancelled: bool = False

    @property
    def job_file(self) -> Path:
        return jobs_dir() / f"{self.name}.job.json"

    def progress(self) -> dict[str, Any]:
        try:
            return json.loads(Path(self.progress_file).read_text())
        except (OSError, ValueError):
            return {}

    def alive(self) -> bool:
        proc = _PROCS.get(self.name)
        if proc is not None:
            return proc.poll() is None
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"

    def returncode(self) -> int | None:
        proc = _PROCS.get(self.name)
        return None if proc is None else proc.poll()

    def status(self) -> str:
        if self.alive():
            return "running"
        if self.cancelled:
            return "cancelled"
        if (Path(self.out) / "meta.json").is_file():
            return "done"
        return "failed"

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.log_file).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def list_jobs() -> list[Job]:
    jobs = []
    d = jobs_dir()
    if not d.is_dir():
        return jobs
    for f in sorted(d.glob("*.job.json")):
        try:
            jobs.append(Job(**json.loads(f.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(jobs, key=lambda j: -j.started)


def _save_job(job: Job) -> None:
    jobs_dir().mkdir(parents=True, exist_ok=True)
    tmp = job.job_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(job.__dict__))
    os.replace(tmp, job.job_file)


def start_job(name: str, args: list[str]) -> Job:
    """Launch ``python -m dynconf simulate ARGS --out WORK/NAME --progress-file ...``.

    The process gets its own session so that it outlives the script run that started it
    and can be cancelled as a group (the simulator may start workers).
    """
    _check_new_name(name)
    out = work_root() / name
    if out.exists():
        raise DynconfError(f"a run named {name!r} already exists")
    for job in list_jobs():
        if job.name == name and job.alive():
            raise DynconfError(f"a job named {name!r} is already running")
    jobs_dir().mkdir(parents=True, exist_ok=True)
    progress = jobs_dir() / f"{name}.progress.json"
    log = jobs_dir() / f"{name}.log"
    progress.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "dynconf",
        "simulate",
        *args,
        "--out",
        str(out),
        "--progress-file",
        str(progress),
    ]
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
    _PROCS[name] = proc
    job = Job(name, proc.pid, str(out), str(progress), str(log), time.time(), cmd)
    _save_job(job)
    return job


def cancel_job(job: Job) -> None:
    if job.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGTERM)
    job.cancelled = True
    _save_job(job)


def forget_job(job: Job) -> None:
    for path in (job.job_file, Path(job.progress_file)):
        path.unlink(missing_ok=True)
    _PROCS.pop(job.name, None)


# --------------------------------------------------------------------------- input images


@st.cache_resource(show_spinner=False)
def _digits_images() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images  # [1797, 8, 8], values 0..16


@st.cache_resource(show_spinner=False, max_entries=8)
def _imagefolder_files(folder: str) -> list[str]:
    """Files of an ImageFolder tree in torchvision's order, as the simulator numbered them."""
    from dynconf.engine.data import scan_imagefolder  # imports no torch

    return [str(f) for f in scan_imagefolder(Path(folder))[1]]


def sample_image(run: Any, split: str, sample_id: int | None) -> tuple[np.ndarray | None, str]:
    """The input image behind a sample id, or None and the reason it is unavailable.

    The run's meta says how ids map to images (``id_scheme``, set by ``simulate``) and which
    source split a run split was drawn from (``id_source``: calibration comes from train).
    """
    meta = run.meta
    scheme = meta.get("id_scheme") or meta.get("ids")
    if sample_id is None or not scheme:
        return None, "this run does not record which image each sample is"
    source = (meta.get("id_source") or {}).get(split, split)
    if scheme == "sklearn-digits-index":
        images = _digits_images()
        if not 0 <= sample_id < len(images):
            return None, f"id {sample_id} is outside sklearn's digits (0..{len(images) - 1})"
        return (np.asarray(images[sample_id]) * (255.0 / 16.0)).astype(np.uint8), "sklearn digits"
    if scheme.startswith("imagefolder"):
        root = data_root()
        if root is None:
            return None, "set DYNCONF_DATA to the data root to see the images"
        names = [meta.get("dataset", ""), str(meta.get("dataset", "")).upper(), ""]
        folder = next((root / n / source for n in names if (root / n / source).is_dir()), None)
        if folder is None:
            return None, f"no '{source}' image folder under {root}"
        files = _imagefolder_files(str(folder))
        if not 0 <= sample_id < len(files):
            return None, f"id {sample_id} is outside {folder} ({len(files)} images)"
        from PIL import Image

        with Image.open(files[sample_id]) as im:
            return np.asarray(im.convert("RGB")), str(Path(files[sample_id]).relative_to(root))
    return None, f"images for id scheme '{scheme}' cannot be shown"


# --------------------------------------------------------------------------- imports & checkpoints

MAX_UPLOAD_MB = float(os.environ.get("DYNCONF_MAX_UPLOAD_MB", "200"))
UPLOAD_TYPES = ("npz", "npy")


def _check_new_name(name: str) -> None:
    if not name or name.startswith(".") or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise DynconfError("run name: use letters, digits, '-' or '_'")
    if (runs_root() / name).exists():
        raise DynconfError(f"'{name}' is a shipped run; choose another name")


def import_upload(
    name: str,
    filename: str,
    data: bytes,
    *,
    split: str = "test",
    labels: tuple[str, bytes] | None = None,
    cumulative: bool = False,
    dataset: str | None = None,
    model: str | None = None,
    classes: list[str] | None = None,
) -> Any:
    """Validate and import an uploaded outputs file exactly as ``dynconf import`` does.

    The bytes go to a temporary file under the work folder, then through
    ``dynconf.core.store.import_outputs`` (shape, dtype, pickle and finiteness checks); the run
    appears atomically as ``work_runs/NAME`` or gains the split if it exists already.
    """
    from dynconf.core.store import import_outputs

    _check_new_name(name)
    for fname, blob in ((filename, data), *([labels] if labels else [])):
        if len(blob) > MAX_UPLOAD_MB * 1e6:
            raise DynconfError(
                f"{fname} is {len(blob) / 1e6:.1f} MB; uploads are limited to {MAX_UPLOAD_MB:g} "
                "MB (use `python -m dynconf import` for large files)"
            )
        if Path(fname).suffix.lower().lstrip(".") not in UPLOAD_TYPES:
            raise DynconfError(
                f"{fname}: upload an .npz (outputs, labels, optional spikes, ids) or an .npy "
                "outputs array with a labels .npy; .pt files need torch, import them with "
                "`python -m dynconf import`"
            )
    tmp_dir = work_root() / ".uploads"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{os.getpid()}-{time.monotonic_ns()}"
    src = tmp_dir / f"{stem}{Path(filename).suffix.lower()}"
    lab = tmp_dir / f"{stem}-labels.npy" if labels else None
    try:
        src.write_bytes(data)
        if lab is not None:
            lab.write_bytes(labels[1])
        return import_outputs(
            src,
            work_root() / name,
            split=split,
            cumulative=cumulative,
            labels_path=lab,
            dataset=dataset or None,
            model=model or None,
            classes=classes or None,
        )
    finally:
        src.unlink(missing_ok=True)
        if lab is not None:
            lab.unlink(missing_ok=True)


def checkpoint_candidates() -> dict[str, str | None]:
    """Checkpoint path -> dataset it was trained on (None: unknown), for the simulate form.

    Shipped runs keep a copy of their checkpoint (meta "checkpoint") and say their dataset;
    ``checkpoints/*/model.pt`` are what ``dynconf train`` writes.
    """
    found: dict[str, str | None] = {}
    for item in run_listing():
        ckpt = item.meta.get("checkpoint") if item.ok else None
        if isinstance(ckpt, str) and (Path(item.path) / ckpt).is_file():
            found[str(Path(item.path) / ckpt)] = item.meta.get("dataset")
    for path in sorted((ROOT / "checkpoints").glob("*/model.pt")):
        guess = next((d for d in ("digits", "cifar10") if d in path.parent.name.lower()), None)
        found.setdefault(str(path), guess)
    return found
