"""Imports that cannot mislead: batch-first outputs, accumulated outputs, other
file layouts, and messages that say what to do.

Each trap is first reproduced as it was (the file imports without a word and the numbers are
wrong, which an explicit wrong flag still does), then shown refused with a message naming the
flag that fixes it, and imported correctly with that flag.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dynconf import cli
from dynconf.core import metrics
from dynconf.core.decoders import decode
from dynconf.core.importing import accumulation_evidence, import_outputs
from dynconf.errors import RunFormatError
from tests.helpers import synthetic_split

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "cached_runs").iterdir() if (p / "meta.json").is_file())


def _accuracy(run, split="test") -> float:
    return metrics.baseline_curve(decode(run.split(split)))[-1]


def _cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main(list(argv))
    _, err = capsys.readouterr()
    return code, err


# ----------------------------------------------------------------------------- layout


def test_batch_first_outputs_with_n_equal_t_are_refused_not_misread(tmp_path):
    """N = T = 16: read time-first, the batch-first array gives a wrong accuracy silently."""
    arrays = synthetic_split(16, 16, 10, seed=3, neurons=100)
    right = import_outputs(_npz(tmp_path / "tnk.npz", arrays), tmp_path / "right", layout="TNK")
    with pytest.raises(RunFormatError, match="could be time-first"):  # T = N, layout not said
        import_outputs(tmp_path / "tnk.npz", tmp_path / "unsaid")
    ntk = {**arrays, "outputs": np.ascontiguousarray(arrays["outputs"].transpose(1, 0, 2))}
    src = _npz(tmp_path / "ntk.npz", ntk)
    # The trap as it was: nothing checks the axes, and the accuracy is wrong.
    wrong = import_outputs(src, tmp_path / "wrong", layout="TNK")
    assert abs(_accuracy(wrong) - _accuracy(right)) > 0.1
    with pytest.raises(RunFormatError, match=r"first two axes are equal \(16\).*--layout NTK"):
        import_outputs(src, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    fixed = import_outputs(src, tmp_path / "fixed", layout="NTK")
    assert np.array_equal(fixed.split("test").outputs, right.split("test").outputs)
    assert _accuracy(fixed) == _accuracy(right)


def test_batch_first_outputs_are_called_batch_first_and_name_the_flag(tmp_path, capsys):
    arrays = synthetic_split(50, 8, 10, seed=1, neurons=100)
    ntk = {**arrays, "outputs": arrays["outputs"].transpose(1, 0, 2)}
    src = _npz(tmp_path / "ntk.npz", ntk)
    message = "outputs has shape (50, 8, 10) for 50 labels: this looks batch-first [N, T, K]; "
    with pytest.raises(RunFormatError, match=re.escape(message + "pass --layout NTK")):
        import_outputs(src, tmp_path / "r")
    code, err = _cli(capsys, "import", str(src), "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "pass --layout NTK" in err
    code, _ = _cli(capsys, "import", str(src), "--out", str(tmp_path / "r"), "--layout", "NTK")
    assert code == 0
    expected = arrays["outputs"]
    assert np.array_equal(import_outputs(src, tmp_path / "lib", layout="NTK").split("test")
                          .outputs, expected)  # fmt: skip
    # and the other way round: a time-first file declared batch-first
    with pytest.raises(RunFormatError, match=r"looks time-first \[T, N, K\]; pass --layout TNK"):
        import_outputs(_npz(tmp_path / "tnk.npz", arrays), tmp_path / "r2", layout="NTK")


def test_unknown_layout_is_refused(tmp_path, outputs_npz):
    with pytest.raises(RunFormatError, match="layout must be TNK or NTK"):
        import_outputs(outputs_npz, tmp_path / "r", layout="NKT")


# ----------------------------------------------------------------------------- accumulated


def _npz(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("run_dir", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_per_step_outputs_pass_and_their_sums_are_refused(run_dir):
    """The rule on real SNN outputs, whole and cut to shorter T: per-step outputs never look
    accumulated, their running sums always do."""
    for split in ("test", "calibration"):
        outputs = np.load(run_dir / f"{split}.outputs.npy", mmap_mode="r")
        for T in (4, 5, 8, 16, 32, outputs.shape[0]):
            assert accumulation_evidence(outputs[:T]) is None, (split, T)
            seen = accumulation_evidence(np.cumsum(outputs[:T], axis=0, dtype=np.float64))
            assert seen and re.search(rf"norm grows \d+x from step 1 to {T}\b", seen), (split, T)


@pytest.mark.parametrize("T", [4, 5, 6, 8, 12, 16, 32, 64])
def test_synthetic_per_step_outputs_pass_and_their_sums_are_refused(T):
    for seed in range(5):
        for n in (20, 300):
            outputs = synthetic_split(n, T, 10, seed, neurons=100)["outputs"]
            assert accumulation_evidence(outputs) is None, (seed, n)
            assert accumulation_evidence(np.cumsum(outputs, axis=0, dtype=np.float64)), (seed, n)


def test_other_per_step_shapes_are_not_called_accumulated():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(32, 400, 10))
    assert accumulation_evidence(noise) is None
    assert accumulation_evidence(np.cumsum(noise, axis=0))  # a random walk grows like sqrt(t)
    warm_up = noise.copy()
    warm_up[:5] = 0.0  # a deep network: nothing reaches the output for 5 steps, then steady
    assert accumulation_evidence(warm_up) is None
    assert accumulation_evidence(noise[:3].cumsum(axis=0)) is None  # 3 steps: cannot tell


def test_accumulated_digits_outputs_are_refused_unless_said(tmp_path, capsys):
    """The case: the digits test split's running sums imported as per-step outputs
    gave 97.00 % at 6.12 steps instead of 97.20 % at 10.56, without a word."""
    digits = ROOT / "cached_runs" / "digits"
    per_step = np.load(digits / "test.outputs.npy")
    labels = np.load(digits / "test.labels.npy")
    sums = np.cumsum(per_step, axis=0, dtype=np.float64)
    src = _npz(tmp_path / "sums.npz", {"outputs": sums, "labels": labels})
    right = import_outputs(_npz(tmp_path / "z.npz", {"outputs": per_step, "labels": labels}),
                           tmp_path / "right")  # fmt: skip
    # The trap as it was: read as per-step outputs, the numbers differ from the true ones.
    wrong = import_outputs(src, tmp_path / "wrong", cumulative=False)
    at = {name: metrics.evaluate(decode(run.split("test")), threshold=0.9)
          for name, run in (("wrong", wrong), ("right", right))}  # fmt: skip
    assert at["wrong"].mean_latency < at["right"].mean_latency - 1
    with pytest.raises(RunFormatError, match=r"look accumulated .*norm grows 55x from step 1 to "
                       r"64.*pass --cumulative .* or --per-step"):  # fmt: skip
        import_outputs(src, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    code, err = _cli(capsys, "import", str(src), "--out", str(tmp_path / "cli"))
    assert code == 2 and "norm grows 55x from step 1 to 64" in err and "--cumulative" in err
    code, _ = _cli(capsys, "import", str(src), "--out", str(tmp_path / "cli"), "--cumulative")
    assert code == 0
    fixed = import_outputs(src, tmp_path / "fixed", cumulative=True)
    assert np.allclose(fixed.split("test").outputs, per_step, atol=1e-9)
    assert metrics.evaluate(decode(fixed.split("test")), threshold=0.9).accuracy == \
        at["right"].accuracy  # fmt: skip
    code, _ = _cli(capsys, "import", str(src), "--out", str(tmp_path / "as_is"), "--per-step")
    assert code == 0  # the user said what they are: imported as they are
    with pytest.raises(SystemExit):  # the two flags contradict each other
        cli.main(["import", str(src), "--out", str(tmp_path / "x"), "--cumulative", "--per-step"])
    capsys.readouterr()


def test_shipped_outputs_import_without_a_flag(tmp_path):
    digits = ROOT / "cached_runs" / "digits"
    np.savez(tmp_path / "d.npz", outputs=np.load(digits / "test.outputs.npy"),
             labels=np.load(digits / "test.labels.npy"))  # fmt: skip
    assert import_outputs(tmp_path / "d.npz", tmp_path / "r").split("test").N == 539


# ----------------------------------------------------------------------------- other files


def test_outputs_and_labels_under_other_names(tmp_path, capsys):
    arrays = synthetic_split(40, 8, 10, seed=2, neurons=100)
    src = _npz(tmp_path / "o.npz", {"logits": arrays["outputs"], "targets": arrays["labels"]})
    with pytest.raises(RunFormatError, match=r"no 'outputs' array \(found: 'logits', "
                       r"'targets'\); name the right one with --outputs-key"):  # fmt: skip
        import_outputs(src, tmp_path / "r")
    with pytest.raises(RunFormatError, match=r"no 'labels' array .*--labels-key"):
        import_outputs(src, tmp_path / "r", outputs_key="logits")
    run = import_outputs(src, tmp_path / "r", outputs_key="logits", labels_key="targets")
    assert np.array_equal(run.split("test").labels, arrays["labels"])
    code, _ = _cli(capsys, "import", str(src), "--out", str(tmp_path / "c"),
                   "--outputs-key", "logits", "--labels-key", "targets")  # fmt: skip
    assert code == 0
    extra = _npz(tmp_path / "x.npz", {**arrays, "logits": arrays["outputs"]})
    with pytest.raises(RunFormatError, match=r"unexpected arrays \['logits'\].*--outputs-key"):
        import_outputs(extra, tmp_path / "r2")


def test_bare_tensor_pt_with_labels(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from dynconf.engine.tensor_files import read_tensors

    arrays = synthetic_split(30, 8, 10, seed=4, neurons=100)
    torch.save(torch.from_numpy(arrays["outputs"]), tmp_path / "logits.pt")
    torch.save(torch.from_numpy(arrays["labels"]), tmp_path / "y.pt")
    np.save(tmp_path / "y.npy", arrays["labels"])
    with pytest.raises(RunFormatError, match=r"no 'labels' array.*--labels"):
        import_outputs(tmp_path / "logits.pt", tmp_path / "r", read_pt=read_tensors)
    for labels in ("y.pt", "y.npy"):
        run = import_outputs(tmp_path / "logits.pt", tmp_path / labels.replace(".", "_"),
                             labels_path=tmp_path / labels, read_pt=read_tensors)  # fmt: skip
        assert np.array_equal(run.split("test").outputs, arrays["outputs"])
        assert np.array_equal(run.split("test").labels, arrays["labels"])
    code, err = _cli(capsys, "import", str(tmp_path / "logits.pt"), "--labels",
                     str(tmp_path / "y.pt"), "--out", str(tmp_path / "cli"))  # fmt: skip
    assert code == 0, err
    # a dict .pt with other names, and its batch-first layout
    torch.save({"logits": torch.from_numpy(arrays["outputs"].transpose(1, 0, 2).copy()),
                "targets": torch.from_numpy(arrays["labels"])}, tmp_path / "d.pt")  # fmt: skip
    code, err = _cli(capsys, "import", str(tmp_path / "d.pt"), "--out", str(tmp_path / "d"),
                     "--outputs-key", "logits", "--labels-key", "targets")  # fmt: skip
    assert code == 2 and "pass --layout NTK" in err
    keys = ["--outputs-key", "logits", "--labels-key", "targets"]
    code, err = _cli(capsys, "import", str(tmp_path / "d.pt"), "--out", str(tmp_path / "d"),
                     *keys, "--layout", "NTK")  # fmt: skip
    assert code == 0, err


def test_existing_split_names_overwrite(tmp_path, outputs_npz, capsys):
    import_outputs(outputs_npz, tmp_path / "r")
    with pytest.raises(RunFormatError, match="split 'test' already exists; pass --overwrite"):
        import_outputs(outputs_npz, tmp_path / "r")
    code, err = _cli(capsys, "import", str(outputs_npz), "--out", str(tmp_path / "r"))
    assert code == 2 and "--overwrite" in err
    assert import_outputs(outputs_npz, tmp_path / "r", overwrite=True).split_names == ("test",)


def test_labels_of_the_wrong_shape_say_what_labels_are(tmp_path):
    arrays = synthetic_split(20, 8, 10, seed=5, neurons=100)
    one_hot = np.eye(10, dtype=np.int64)[arrays["labels"]]
    src = _npz(tmp_path / "o.npz", {"outputs": arrays["outputs"], "labels": one_hot})
    with pytest.raises(RunFormatError, match=r"labels must be a 1-D array of N class indices "
                       r"\(one integer per sample\), got shape \(20, 10\) \(one-hot"):  # fmt: skip
        import_outputs(src, tmp_path / "r")
    column = _npz(tmp_path / "c.npz", {"outputs": arrays["outputs"],
                                       "labels": arrays["labels"][:, None]})  # fmt: skip
    with pytest.raises(RunFormatError, match=r"1-D array .*reshape\(-1\)"):
        import_outputs(column, tmp_path / "r")
    scalar = _npz(tmp_path / "s.npz", {"outputs": arrays["outputs"], "labels": np.int64(3)})
    with pytest.raises(RunFormatError, match=r"1-D array of N class indices.*got shape \(\)"):
        import_outputs(scalar, tmp_path / "r")
