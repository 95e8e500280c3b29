"""dynconf as a package: what pyproject.toml declares, where runs are looked for, the
``dynconf app`` command line, and (slow) the wheel installed into a fresh virtual environment
and used from another directory: the command line, the notebook API and the dashboard in a
real Chromium."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import tomllib

from dynconf.core import roots

ROOT = Path(__file__).resolve().parents[1]
WHEEL_LIMIT = 10 * 1024 * 1024
CHROMIUM = "/usr/bin/chromium"


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, exe=None, timeout=120):
    cmd = [str(exe)] if exe else [sys.executable, "-m", "dynconf"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


# --------------------------------------------------------------------------- declarations


def requirement_lines(path: Path) -> set[str]:
    """The requirement specifiers of a requirements file (comments and -r lines dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line.replace(" ", "") for line in lines if line and not line.startswith("-")}


def test_requirements_files_agree_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime = {"numpy", "torch", "torchvision", "pillow", "scikit-learn", "tqdm"}
    assert {re.split(r"[<>=!~ ]", d)[0] for d in project["dependencies"]} == runtime
    assert {"app", "frameworks", "dev"} <= set(extras)
    assert requirement_lines(ROOT / "requirements.txt") == {
        d.replace(" ", "") for d in [*project["dependencies"], *extras["app"]]
    }
    assert requirement_lines(ROOT / "requirements-dev.txt") == {
        d.replace(" ", "") for d in [*extras["frameworks"], *extras["dev"]]
    }
    assert project["scripts"]["dynconf"] == "dynconf.cli:main"


@pytest.mark.parametrize("name", roots.DEMO_RUNS)
def test_bundled_demo_runs_equal_cached_runs(name):
    bundled, cached = roots.bundled_runs_root() / name, ROOT / "cached_runs" / name
    files = sorted(p.name for p in bundled.iterdir())
    assert "meta.json" in files and sorted(p.name for p in cached.iterdir()) == files
    match, mismatch, errors = filecmp.cmpfiles(bundled, cached, files, shallow=False)
    assert not mismatch and not errors and match == files


def test_import_dynconf_is_light():
    """``import dynconf`` (and loading and evaluating a run) pulls no torch, Streamlit or
    Plotly: the library must start fast in a notebook and on a machine without them."""
    code = (
        "import json, sys, dynconf\n"
        "if hasattr(dynconf, 'load'):\n"
        "    dynconf.load('digits').evaluate(split='test', threshold=0.5)\n"
        "heavy = {'torch', 'torchvision', 'streamlit', 'plotly', 'kaleido', 'pandas'}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []


# --------------------------------------------------------------------------- where runs live


def test_runs_roots_from_the_environment(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b / "digits"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("DYNCONF_RUNS", os.pathsep.join([str(a), str(b), str(a), ""]))
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    assert roots.runs_roots() == [a, b]
    assert roots.default_runs_root() == a
    assert roots.find_run("digits") == b / "digits"  # the first folder holding that name
    assert roots.find_run("elsewhere/digits") == Path("elsewhere/digits")  # a path stays
    assert roots.listing_roots() == [(a, "shipped"), (b, "shipped"), (tmp_path / "work", "mine")]


def test_default_roots_follow_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("DYNCONF_RUNS", raising=False)
    monkeypatch.delenv("DYNCONF_WORK", raising=False)
    monkeypatch.chdir(tmp_path)
    bundled = roots.bundled_runs_root()
    assert roots.runs_roots() == [tmp_path / "runs", tmp_path / "cached_runs", bundled]
    assert roots.default_work_root() == tmp_path / "work_runs"
    assert roots.find_run("noisy_digits") == bundled / "noisy_digits"
    assert roots.listing_roots()[-2:] == [(bundled, "demo"), (tmp_path / "work_runs", "mine")]


def test_cli_finds_a_bundled_run_by_name_from_any_directory(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DYNCONF_RUNS", None)
    out = run_cli("info", "noisy_digits", "--json", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["run"] == str(roots.bundled_runs_root() / "noisy_digits")
    assert info["meta"]["T_max"] == 64 and set(info["meta"]["splits"]) == {"calibration", "test"}


def test_library_has_no_checkout_root():
    """No module assumes it runs from a checkout: the runs folders come from roots.py."""
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in sorted((ROOT / "dynconf").rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "REPO_ROOT" in line
    ]
    assert offenders == []


# --------------------------------------------------------------------------- dynconf app


def test_app_command_lists_folders_in_order_and_passes_streamlit_options(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), DYNCONF_RUNS=str(tmp_path / "env_runs"))
    out = run_cli(
        "app", "--runs", str(mine), "--data", str(tmp_path), "--server.port", "8642",
        "--server.headless=true", "--dry-run", "--json", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["runs"] == [
        str(mine), str(tmp_path / "env_runs"), str(tmp_path / "runs"),
        str(tmp_path / "cached_runs"), str(roots.bundled_runs_root()),
    ]  # fmt: skip
    assert result["work"] == str(tmp_path / "work_runs") and result["data"] == str(tmp_path)
    cmd = result["command"]
    assert cmd[1:4] == ["-m", "streamlit", "run"]
    assert Path(cmd[4]) == ROOT / "dynconf" / "app" / "main.py"
    assert cmd[-3:] == ["--server.port", "8642", "--server.headless=true"]
    assert "--browser.gatherUsageStats" in cmd


@pytest.mark.parametrize(
    "args, message",
    [
        (["--runs", "no/such/folder"], "--runs no/such/folder: not a directory"),
        (["--data", "no/such/data"], "--data no/such/data: not a directory"),
        (["--bogus"], "unrecognized argument '--bogus'"),
    ],
)
def test_app_command_refuses_bad_options(tmp_path, args, message):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = run_cli("app", *args, "--dry-run", cwd=tmp_path, env=env)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.splitlines()) == 1


def test_other_commands_still_refuse_unknown_options():
    out = run_cli("info", "digits", "--server.port", "1")
    assert out.returncode == 2 and "unrecognized arguments: --server.port 1" in out.stderr


def test_background_job_finds_dynconf_from_any_directory(tmp_path, monkeypatch):
    """A job is ``sys.executable -m dynconf simulate``: it must reach this package even when
    the server's working directory is not a checkout."""
    from dynconf import jobs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DYNCONF_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("DYNCONF_RUNS", str(tmp_path / "runs"))
    job = jobs.start_job("nowhere", ["--checkpoint", str(tmp_path / "missing.pt")])
    deadline = time.time() + 60
    while job.alive() and time.time() < deadline:
        time.sleep(0.2)
    log = Path(job.log_file).read_text()
    assert "No module named" not in log and "error:" in log, log
    assert job.status() == "failed"


# --------------------------------------------------------------------------- the wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, built from a copy of the sources (the checkout stays clean) and installed
    with --no-deps into a fresh venv that sees this machine's packages but not the
    checkout. Yields the venv's bin folder, the wheel and a working directory elsewhere."""
    base = tmp_path_factory.mktemp("package")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "dynconf", src / "dynconf",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    wheels = base / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("dynconf-*.whl")
    venv = base / "venv"
    # --without-pip: no ensurepip needed (Debian's Python ships without it); this pip installs
    # into the venv's interpreter with --python.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=300)  # fmt: skip
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYNCONF_", "PYTHONPATH"))}
    return {"bin": venv / "bin", "wheel": wheel, "cwd": elsewhere, "env": env}


@pytest.mark.slow
def test_wheel_is_small_and_holds_the_app_and_demo_runs(installed):
    wheel = installed["wheel"]
    assert wheel.stat().st_size <= WHEEL_LIMIT
    names = set(zipfile.ZipFile(wheel).namelist())
    for run in roots.DEMO_RUNS:
        assert f"dynconf/demo_runs/{run}/meta.json" in names
        assert f"dynconf/demo_runs/{run}/test.outputs.npy" in names
    assert "dynconf/app/main.py" in names and "dynconf/app/app_pages/home.py" in names
    assert any(n.endswith(".js") for n in names)  # the dashboard's browser code
    assert not any("cifar10_resnet20" in n or "__pycache__" in n for n in names)
    # Every file of the package travels: modules, pages, browser assets, report templates and
    # vendored scripts, the demo runs.
    source = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "dynconf").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert source - names == set()
    assert not any(n.split("/")[0] in ("tests", "cached_runs", "benchmarks") for n in names)


@pytest.mark.slow
def test_installed_command_line_from_another_directory(installed):
    exe, cwd, env = installed["bin"] / "dynconf", installed["cwd"], installed["env"]
    help_ = run_cli("--help", exe=exe, cwd=cwd, env=env)
    assert help_.returncode == 0 and "usage: dynconf" in help_.stdout and " app " in help_.stdout
    info = run_cli("info", "digits", "--json", exe=exe, cwd=cwd, env=env)
    assert info.returncode == 0, info.stderr
    meta = json.loads(info.stdout)["meta"]
    assert meta["T_max"] == 64 and meta["splits"] == {"calibration": 300, "test": 539}
    where = subprocess.run(
        [str(installed["bin"] / "python"), "-c", "import dynconf; print(dynconf.__file__)"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(installed["bin"].parent)), where


NOTEBOOK_SNIPPET = """
import json, dynconf
run = dynconf.load("digits")
result = run.evaluate(split="test", threshold=0.9)
full = run.evaluate(split="test", threshold=1.0)
print(json.dumps({"file": dynconf.__file__, "accuracy": float(result.accuracy),
                  "latency": float(result.mean_latency), "full": float(full.mean_latency),
                  "repr": repr(run)}))
"""


@pytest.mark.slow
def test_installed_notebook_api_from_another_directory(installed):
    import numpy as np

    python, cwd, env = installed["bin"] / "python", installed["cwd"], installed["env"]
    has_api = subprocess.run([str(python), "-c", "import dynconf; dynconf.load"],
                             cwd=cwd, env=env, capture_output=True, timeout=60)  # fmt: skip
    if has_api.returncode != 0:
        pytest.skip("dynconf.load (the notebook API) is not in this tree yet")
    out = subprocess.run([str(python), "-c", NOTEBOOK_SNIPPET], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["file"].startswith(str(installed["bin"].parent))
    # The same numbers from the raw arrays (docs/METHOD.md sections 2 and 3): S_t the
    # accumulated outputs, c_t = max softmax(S_t / kappa) with kappa = T_max, exit at the
    # first step with c_t > C (else T_max), answer argmax S_tau.
    outputs = np.load(roots.bundled_runs_root() / "digits" / "test.outputs.npy")
    labels = np.load(roots.bundled_runs_root() / "digits" / "test.labels.npy")
    scaled = np.cumsum(outputs.astype(np.float64), axis=0) / outputs.shape[0]
    prob = np.exp(scaled - scaled.max(-1, keepdims=True))
    prob /= prob.sum(-1, keepdims=True)
    conf, pred = prob.max(-1), prob.argmax(-1)
    above = conf > 0.9
    exit_at = np.where(above.any(0), above.argmax(0), 63)
    cols = np.arange(labels.size)
    assert got["accuracy"] == pytest.approx((pred[exit_at, cols] == labels).mean(), abs=1e-12)
    assert got["latency"] == pytest.approx(exit_at.mean() + 1, abs=1e-12)
    assert got["full"] == 64.0 and len(got["repr"].splitlines()) <= 2


RECORD_SNIPPET = """
import sys, torch
from dynconf.record import record_run

class Readout:
    '''A fixed random linear readout, stepped like an SNN (step/reset).'''
    def __init__(self):
        torch.manual_seed(0)
        self.w = torch.randn(64, 10)
    def reset(self):
        pass
    def step(self, x):
        return x.flatten(1) @ self.w

from sklearn.datasets import load_digits
digits = load_digits()
x = torch.tensor(digits.data[:40] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
y = torch.tensor(digits.target[:40])
record_run(Readout(), [(x, y)], T=4, out=sys.argv[1], framework="callable",
           classes=[str(d) for d in range(10)], dataset="digits", progress=False)
"""


def wait_for_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(f"no health answer from {url}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.browser
def test_installed_app_serves_runs_recorded_anywhere(installed, tmp_path):
    """`dynconf app --runs DIR` from another directory: the health check answers, the Home
    page of a run recorded into DIR draws its first chart, and the Runs page says where each
    run lives."""
    if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import expect, sync_playwright

    from tests.app.serve import CHROMIUM_ARGS, free_port

    bin_, cwd, env = installed["bin"], installed["cwd"], installed["env"]
    folder = tmp_path / "my runs"
    recorded = subprocess.run(
        [str(bin_ / "python"), "-c", RECORD_SNIPPET, str(folder / "mine")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    port, log = free_port(), tmp_path / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(bin_ / "dynconf"), "app", "--runs", str(folder), "--server.headless", "true",
             "--server.port", str(port)],
            cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, proc, log)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/?run=mine", timeout=60_000)
            page.get_by_text("Run: mine").wait_for(timeout=60_000)
            chart = page.locator('[data-testid="stPlotlyChart"] .main-svg').first
            chart.wait_for(timeout=60_000)
            assert page.get_by_text("is not available").count() == 0
            page.goto(f"{url}/runs?run=mine", timeout=60_000)
            # The page streams its elements: wait for the folder list itself, not its heading.
            main = page.locator('[data-testid="stMain"]')
            expect(main).to_contain_text(str(folder), timeout=60_000)
            expect(main).to_contain_text(roots.bundled_runs_root().name, timeout=60_000)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
