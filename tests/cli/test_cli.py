"""CLI: every command's JSON contract, human output, error lines and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from dynconf import cli
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.policies import POLICIES
from dynconf.core.store import load_run

REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv) -> dict:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    assert out.count("\n") == 1  # exactly one JSON object on one line
    return json.loads(out)


def test_import_info_evaluate(capsys, tmp_path, outputs_npz):
    run_dir = tmp_path / "r"
    out = run_json(capsys, "import", str(outputs_npz), "--out", str(run_dir), "--dataset", "syn",
                   "--classes", ",".join("abcdefghij"), "--neurons", "500")  # fmt: skip
    assert out["N"] == 300 and out["T_max"] == 12 and out["K"] == 10
    run = load_run(run_dir)
    assert run.classes == list("abcdefghij") and run.meta["dataset"] == "syn"
    assert "python -m dynconf import" in run.meta["created"]["command"]
    # A second split into the same run.
    out = run_json(
        capsys, "import", str(outputs_npz), "--out", str(run_dir), "--split", "calibration"
    )
    assert out["splits"] == {"test": 300, "calibration": 300}

    info = run_json(capsys, "info", str(run_dir))
    assert info["meta"]["T_max"] == 12 and info["splits"]["test"]["spikes"] is True
    dec = decode(run.split("test"))
    assert info["splits"]["test"]["baseline_accuracy"] == metrics.baseline_curve(dec)[-1]

    ev = run_json(capsys, "evaluate", str(run_dir), "--split", "test", "--threshold", "0.3")
    res = metrics.evaluate(dec, 0.3)
    assert ev["accuracy"] == res.accuracy and ev["mean_latency"] == res.mean_latency
    assert ev["exit_steps"] == res.exit_steps.tolist() and min(ev["exit_steps"]) >= 1
    assert ev["baseline_accuracy"] == metrics.baseline_curve(dec)[-1]
    assert ev["baseline_curve"] == metrics.baseline_curve(dec).tolist()
    assert len(ev["baseline_curve"]) == 12 and ev["kappa"] == 12.0 and ev["decoder"] == "paper"
    assert ev["spikes_per_neuron_at_exit"] > 0

    ev = run_json(capsys, "evaluate", str(run_dir), "--threshold", "0.3", "--decoder", "margin",
                  "--kappa", "4")  # fmt: skip
    assert ev["accuracy"] == metrics.evaluate(decode(run.split("test"), "margin", 4), 0.3).accuracy

    code, text, _ = run_cli(capsys, "evaluate", str(run_dir), "--threshold", "0.3")
    assert code == 0 and "mean steps" in text and not text.startswith("{")


def test_oracle_sweep_select(capsys, synthetic_run):
    path = str(synthetic_run.path)
    dec = decode(synthetic_run.split("test"))
    orc = run_json(capsys, "oracle", path, "--split", "test")
    ref = metrics.oracle(dec, "first_correct", "cap")
    assert orc["accuracy"] == ref.accuracy and orc["mean_latency"] == ref.mean_latency
    assert set(orc["variants"]) == {
        "first_correct/cap", "first_correct/step1", "stays_correct/cap", "stays_correct/step1"
    }  # fmt: skip
    assert orc["variants"]["first_correct/step1"]["never_correct"] == "step1"

    sw = run_json(capsys, "sweep", path, "--split", "test", "--thresholds", "0.2,0.5,0.9")
    assert sw["thresholds"] == [0.2, 0.5, 0.9]
    assert sw["accuracy"][1] == metrics.evaluate(dec, 0.5).accuracy
    assert all(p["threshold"] in sw["thresholds"] for p in sw["front_points"])
    sw = run_json(capsys, "sweep", path, "--thresholds", "300")
    assert 100 <= len(sw["thresholds"]) <= 300 and sum(sw["on_front"]) == len(sw["front"])

    sel = run_json(capsys, "select", path, "--calibration-split", "calibration",
                   "--eval-split", "test", "--tolerance", "0.01")  # fmt: skip
    ref = metrics.select_threshold(decode(synthetic_run.split("calibration")), dec, 0.01)
    assert sel["threshold"] == ref.threshold and sel["kappa"] == 16.0
    assert sel["test"]["accuracy"] == ref.test.accuracy
    assert sel["calibration"]["accuracy"] >= sel["target_accuracy"] - 1e-12
    assert sel["band"][0] <= sel["threshold"] <= sel["band"][1]
    cal = synthetic_run.split("calibration")
    assert cal.spikes is not None  # both splits report spikes at exit
    cal_ref = metrics.evaluate(
        decode(cal), sel["threshold"], spikes=cal.spikes, neurons=synthetic_run.meta["neurons"]
    )
    assert sel["calibration"]["spike_saving"] == pytest.approx(cal_ref.spike_saving, rel=1e-12)
    assert sel["test"]["spike_saving"] is not None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "/nonexistent/run"], "does not exist"),
        (["evaluate", "RUN", "--threshold", "0.5", "--split", "train"], "no split 'train'"),
        (["evaluate", "RUN", "--threshold", "nan"], "NaN"),
        (["evaluate", "RUN", "--threshold", "0.5", "--kappa", "-1"], "kappa"),
        (["evaluate", "RUN", "--policy", "conformal", "--threshold", "0.5"], "no threshold C"),
        (["evaluate", "RUN", "--policy", "patience", "--param", "k=x"], "integer >= 1"),
        (["evaluate", "RUN", "--threshold", "x"], "invalid float"),
        (["evaluate", "RUN", "--threshold", "0.5", "--decoder", "vibes"], "invalid choice"),
        (["sweep", "RUN", "--thresholds", "a,b"], "not a count"),
        (["oracle", "RUN", "--cap", "0"], "cap"),
        (["select", "RUN", "--calibration-split", "nope"], "no split 'nope'"),
        (["import", "/nonexistent.npz", "--out", "OUT"], "does not exist"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, synthetic_run, tmp_path, argv, message):
    argv = [str(synthetic_run.path) if a == "RUN" else str(tmp_path / "o") if a == "OUT" else a
            for a in argv]  # fmt: skip
    code, out, err = run_cli_exit(capsys, argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def run_cli_exit(capsys, argv):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own exits
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_corrupt_run_via_subprocess(tmp_path, synthetic_run):
    """Real processes: a damaged run and a pickled input fail cleanly, nothing is written."""
    (synthetic_run.path / "meta.json").write_text('{"schema": 1, "T_max": "lots"')
    evil = tmp_path / "evil.npz"
    np.savez(evil, outputs=np.array([object()], dtype=object), labels=np.zeros(1, int))
    for argv, message in (
        (["info", str(synthetic_run.path), "--json"], "not valid JSON"),
        (["import", str(evil), "--out", str(tmp_path / "x"), "--json"], "pickled"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "dynconf", *argv], cwd=REPO, capture_output=True, text=True
        )
        assert proc.returncode == 2 and proc.stdout == ""
        assert message in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_help_does_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "from dynconf.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "    main(['info', '/nonexistent'])\n"
        "print(sorted(m for m in ('torch', 'streamlit', 'plotly', 'kaleido') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_lazy_command_dispatch(capsys, monkeypatch):
    fake = types.ModuleType("dynconf_fake_train")
    fake.__doc__ = "Fake training command."
    fake.add_arguments = lambda p: p.add_argument("--epochs", type=int, default=1)
    fake.run_command = lambda args: {"epochs": args.epochs, "ok": True}
    monkeypatch.setitem(sys.modules, "dynconf_fake_train", fake)
    monkeypatch.setitem(cli.LAZY_COMMANDS, "train", ("dynconf_fake_train", "train"))
    assert run_json(capsys, "train", "--epochs", "3") == {"epochs": 3, "ok": True}
    code, out, _ = run_cli(capsys, "train")
    assert code == 0 and "epochs: 1" in out


def test_lazy_command_missing_module(capsys, monkeypatch):
    monkeypatch.setitem(cli.LAZY_COMMANDS, "export", ("dynconf.no_such_module", "export"))
    code, out, err = run_cli(capsys, "export", "--json")
    assert code == 2 and out == "" and "not available" in err and err.count("\n") == 1


def test_unexpected_error_is_one_line_exit_1(capsys, monkeypatch):
    fake = types.ModuleType("dynconf_fake_boom")
    fake.add_arguments = lambda p: None
    fake.run_command = lambda args: 1 / 0
    monkeypatch.setitem(sys.modules, "dynconf_fake_boom", fake)
    monkeypatch.setitem(cli.LAZY_COMMANDS, "simulate", ("dynconf_fake_boom", "simulate"))
    monkeypatch.delenv("DYNCONF_DEBUG", raising=False)
    code, _, err = run_cli(capsys, "simulate")
    assert code == 1 and "ZeroDivisionError" in err and err.count("\n") == 1


def test_evaluate_any_policy(capsys, synthetic_run):
    from dynconf.core.policies import Patience

    run_dir = str(synthetic_run.path)
    dec = decode(synthetic_run.split("test"))
    out = run_json(capsys, "evaluate", run_dir, "--threshold", "0.4", "--policy", "patience",
                   "--param", "k=3")  # fmt: skip
    want = Patience(0.4, 3).evaluate(dec)
    assert out["policy"] == "patience" and out["params"] == {"threshold": 0.4, "k": 3}
    assert out["exit_steps"] == want.exit_steps.tolist() and out["accuracy"] == want.accuracy
    same = run_json(capsys, "evaluate", run_dir, "--threshold", "0.4", "--policy", "patience",
                    "--param", "k=1")  # fmt: skip
    plain = run_json(capsys, "evaluate", run_dir, "--threshold", "0.4")
    assert same["exit_steps"] == plain["exit_steps"] and plain["policy"] == "threshold"
    code, _, err = run_cli(capsys, "evaluate", run_dir, "--threshold", "0.4", "--policy",
                           "patience", "--param", "j=3")  # fmt: skip
    assert code == 2 and "KEY in: k" in err and err.count("\n") == 1


def test_closed_pipe_ends_quietly(synthetic_run):
    """`python -m dynconf sweep ... | head` must not end with a BrokenPipeError: the JSON of
    5,000 thresholds is far larger than a pipe's buffer, so head closes it mid-write."""
    proc = subprocess.run(
        f"{sys.executable} -m dynconf sweep {synthetic_run.path} --thresholds 5000 --json"
        ' | head -c 20; echo " status=${PIPESTATUS[0]}"',
        shell=True,
        executable="/bin/bash",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.startswith('{"run": ') and proc.stdout.endswith(" status=0\n")
    assert proc.stderr == "", proc.stderr


def test_select_reports_synaptic_operations_where_the_run_has_them(capsys):
    path = REPO / "cached_runs" / "noisy_digits"
    run = load_run(path)
    sel = run_json(capsys, "select", str(path), "--calibration-split", "calibration",
                   "--eval-split", "test")  # fmt: skip
    for name in ("test", "calibration"):
        split = run.split(name)
        ref = metrics.evaluate(decode(split), sel["threshold"], synops=split.synops)
        assert sel[name]["synops_saving"] == ref.synops_saving is not None
        assert sel[name]["synops_per_sample_at_exit"] == ref.synops_per_sample_at_exit


@pytest.mark.parametrize("name", list(POLICIES))
def test_evaluate_fits_every_registered_policy_on_calibration(capsys, synthetic_run, name):
    """`evaluate --policy NAME` without its parameters fits on the calibration split, says
    what it fitted, and reports what the library's fit reports."""
    from dynconf.core.decoders import decode_split
    from dynconf.core.policies import attach_outputs

    cls = POLICIES[name]
    run_dir = str(synthetic_run.path)
    out = run_json(capsys, "evaluate", run_dir, "--split", "test", "--policy", name)
    assert out["policy"] == name and out["fitted_on"] == "calibration"

    def split(which):
        dec = decode_split(synthetic_run, which, cls.decoder or "paper")
        return attach_outputs(dec, synthetic_run.split(which).outputs)

    want = cls().fit(split("calibration")).evaluate(split("test"))
    assert out["exit_steps"] == want.exit_steps.tolist() and out["params"] == want.params
    assert out["spikes_per_neuron_at_exit"] == want.spikes_per_neuron_at_exit is not None
    code, text, _ = run_cli(capsys, "evaluate", run_dir, "--policy", name, "--fit-split",
                            "calibration", "--tolerance", "0.01")  # fmt: skip
    assert code == 0 and text.startswith("fitted on 'calibration' (tolerance 0.01): ")


def test_evaluate_with_every_parameter_given_does_not_fit(capsys, synthetic_run):
    out = run_json(capsys, "evaluate", str(synthetic_run.path), "--policy", "patience",
                   "--threshold", "0.5", "--param", "k=2", "--fit-split", "nope")  # fmt: skip
    assert out["fitted_on"] is None and out["params"] == {"threshold": 0.5, "k": 2}
    out = run_json(capsys, "evaluate", str(synthetic_run.path), "--policy", "topk_gap",
                   "--param", "epsilon=0.05", "--param", "mode=exact")  # fmt: skip
    assert out["params"]["mode"] == "exact" and out["params"]["epsilon"] == 0.05


def test_policies_reports_costs_on_both_splits_of_the_cifar_run(capsys, tmp_path, monkeypatch):
    path = REPO / "cached_runs" / "cifar10_resnet20"
    if not path.exists():
        pytest.skip("shipped CIFAR-10 run not present")
    monkeypatch.setenv("DYNCONF_CACHE_DIR", str(tmp_path / "cache"))
    out = run_json(capsys, "policies", str(path), "--policy", "threshold", "--policy", "patience")
    for p in out["policies"]:
        for split in ("calibration", "test"):
            for key in ("synops_per_sample_at_exit", "synops_saving", "spikes_per_image_at_exit",
                        "spikes_per_neuron_at_exit", "spike_saving"):  # fmt: skip
                assert p[split][key] is not None, (p["name"], split, key)
    threshold = out["policies"][0]
    assert threshold["params"]["threshold"] == pytest.approx(0.524264, abs=5e-7)
    assert threshold["calibration"]["mean_latency"] == pytest.approx(21.456)
    assert threshold["calibration"]["n_correct"] == 4449
    again = run_json(capsys, "policies", str(path), "--policy", "threshold", "--policy", "patience")
    assert again["policies"] == out["policies"]  # read back from the cache
