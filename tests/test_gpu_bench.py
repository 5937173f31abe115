"""The accelerator benchmark (``python -m lshlib.bench``, :mod:`lshlib.bench.gpu`) at tiny sizes
on CPU, uncompiled: the import stays light, the record has its shape and is saved after every
length, the time budget and the eager limit are recorded as skips, and the readers say "not
measured on a GPU yet" without a record. The GPU numbers themselves come from a GPU session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lshlib.bench import gpu as gpu_bench
from lshlib.paths import REPO_ROOT

HEAVY = ("datasets", "ipywidgets", "transformers", "accelerate", "tokenizers", "pydantic")


def test_import_and_help_without_heavy_modules(tmp_path):
    code = (
        "import sys\n"
        "import lshlib.bench.attention, lshlib.bench.gpu, lshlib.bench.__main__\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
        "sys.argv = ['lshlib.bench', '--help']\n"
        "lshlib.bench.__main__.main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "[]"
    assert "--device" in out.stdout and "--no-compile" in out.stdout


def tiny_grid(path, **kw):
    seen = []

    def on_length(record):  # the file on disk after each length
        seen.append(json.loads(path.read_text()))

    args = dict(
        device="cpu",
        ns=(128, 256),
        methods=("sdpa", "flex", "bucketed", "eager"),
        extras=False,
        train=False,
        compile_flex=False,
        repeats=1,
        min_time=0.0,
        eager_max_n=128,
        heads=2,
        path=path,
        on_length=on_length,
    )
    args.update(kw)
    return gpu_bench.run_grid(**args), seen


@pytest.mark.slow  # runs the grid (make slow)
def test_tiny_grid_record_and_saves_after_each_length(tmp_path):
    path = tmp_path / "attention_bench.json"
    record, seen = tiny_grid(path)
    # saved after each length: the goals' methods at each length, the training step, the rest
    lengths = [sorted({r["n"] for r in s["rows"]}) for s in seen]
    assert lengths[:2] == [[128], [128, 256]] and len(seen) == 6
    assert [len(s["rows"]) for s in seen] == [2, 4, 4, 6, 8, 8]
    assert [s["complete"] for s in seen] == [False] * 5 + [True]
    saved = json.loads(path.read_text())
    assert saved["benchmark"] == gpu_bench.BENCHMARK and saved["complete"]
    assert saved["device"]["type"] == "cpu" and saved["device"]["torch"]
    assert saved["dtype"] == "float32"
    assert saved["shape"] == {"batch": 1, "heads": 2, "head_dim": 64}
    rows = {(r["n"], r["method"]): r for r in saved["rows"]}
    assert set(rows) == {(n, m) for n in (128, 256) for m in ("sdpa", "flex", "bucketed", "eager")}
    for key in [(128, "sdpa"), (256, "bucketed"), (128, "eager")]:
        for phase in ("forward", "forward_backward"):
            r = rows[key][phase]
            assert r["median"] > 0 and r["peak_bytes"] >= 0 and r["first_call_s"] > 0
    assert "scaled_dot_product" in rows[128, "sdpa"]["sdpa_backend"]
    flex = rows[256, "flex"]
    assert flex["block_size"] == 128 and flex["compiled"] is False
    assert flex["forward"]["median"] > 0 and "compile_s" not in flex["forward"]
    assert "no backward on cpu" in flex["forward_backward"]["skipped"]
    assert 0 < flex["blocks"]["kept_fraction"] <= 1
    assert "only up to n=128" in rows[256, "eager"]["skipped"]
    assert saved["training_step"] == {"skipped": "not asked for"}
    assert "bucketed, batch 1 x 2 heads, forward_backward" in saved["summary"]["speedup_vs_sdpa"]
    assert {g["met"] for g in saved["goals"]} == {None}  # not the goals' lengths and shape
    text = gpu_bench.report(saved, where=str(path))
    assert "cpu (" in text and "not measured" in text and "flex" in text


@pytest.mark.slow  # runs the grid (make slow)
def test_budget_skips_are_recorded(tmp_path):
    record, _ = tiny_grid(tmp_path / "b.json", ns=(128,), methods=("sdpa",), budget_s=0.0)
    (row,) = record["rows"]
    assert row["skipped"] == "time budget spent" and record["budget_spent"]


@pytest.mark.slow  # runs the grid (make slow)
def test_extras_at_the_extra_length():
    jobs = gpu_bench.jobs_at(gpu_bench.EXTRA_N, gpu_bench.METHODS, True, gpu_bench.EAGER_MAX_N)
    shapes = {(j.method, j.batch, j.heads, j.block_size) for j in jobs}
    assert ("flex", 1, 12, 64) in shapes and ("flex", 8, 2, 128) in shapes
    assert ("sdpa", 8, 2, None) in shapes and ("eager", 8, 2, None) not in shapes
    assert [j.method for j in jobs][:2] == ["sdpa", "flex"]  # the goals' rows first
    assert len(gpu_bench.jobs_at(4096, gpu_bench.METHODS, True, gpu_bench.EAGER_MAX_N)) == 4


@pytest.mark.slow  # runs the grid (make slow)
def test_cli_quick_on_cpu(tmp_path, capsys):
    out = tmp_path / "q.json"
    argv = ["--device", "cpu", "--quick", "--no-compile", "--no-train", "--methods", "sdpa"]
    argv += ["--heads", "2"]
    assert gpu_bench.main([*argv, "--out", str(out)]) == out
    record = json.loads(out.read_text())
    assert record["ns"] == [256] and record["rows"][0]["method"] == "sdpa"
    assert "wrote" in capsys.readouterr().out


def test_readers_without_a_record(monkeypatch, tmp_path):
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path))
    assert gpu_bench.load("laptop") is None
    assert "not measured on a GPU yet" in gpu_bench.report(None)
    assert gpu_bench.readme_lines(None) == [
        "**GPU** (`make bench-gpu`, "
        f"`{tmp_path / 'laptop-cuda' / 'attention_bench.json'}`): not measured on a GPU yet."
    ]
    assert not (tmp_path / "laptop-cuda").exists()  # readers never create folders
    folder = tmp_path / "laptop-cuda"
    folder.mkdir()
    (folder / "attention_bench.json").write_text(json.dumps({"benchmark": "attention"}))
    assert gpu_bench.load("laptop") is None  # another kind of record is not a GPU record


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown methods"):
        gpu_bench.run_grid(device="cpu", ns=(128,), methods=("nope",), path=None)


def test_goals_and_readme_from_a_gpu_record():
    """Goal arithmetic on a made-up record (not a measurement: the numbers are invented here)."""

    def row(n, method, fb, peak, **extra):
        fwd_bwd = {"median": fb, "peak_bytes": peak}
        base = {"n": n, "method": method, "batch": 1, "heads": 12, "forward": {"median": fb / 2}}
        return {**base, **extra, "forward_backward": fwd_bwd}

    rows = [
        row(16384, "sdpa", 1.0, 100),
        row(16384, "flex", 0.2, 120, block_size=128, compile_s=30.0),
        row(65536, "sdpa", 16.0, 400),
        row(65536, "flex", 4.0, 800, block_size=128, compile_s=70.0),
    ]
    device = {"type": "cuda", "name": "GPU X", "driver": "1", "torch": "2.11", "cuda_runtime": "12"}
    record = {
        "rows": rows,
        "dtype": "bfloat16",
        "commit": "abc",
        "shape": {"batch": 1, "heads": 12, "head_dim": 64},
        "setting": {"bits": 4, "tables": 1},
        "device": device,
    }
    got = {g["goal"]: (g["measured"], g["met"]) for g in gpu_bench.goals(record)}
    assert got["flex 128-blocks / SDPA, forward+backward, n=16384"] == (5.0, True)
    assert got["flex 128-blocks / SDPA, forward+backward, n=65536"] == (4.0, False)
    assert got["peak memory flex / SDPA, forward+backward, n=16384"] == (1.2, True)
    assert got["peak memory flex / SDPA, forward+backward, n=65536"] == (2.0, False)
    assert got["largest flex compile time of one shape, forward + backward (s)"] == (70.0, False)
    (line,) = gpu_bench.readme_lines(record)
    assert "GPU X" in line and "torch 2.11" in line and "**not met**" in line
    assert "GPU (" in gpu_bench.report(record)
