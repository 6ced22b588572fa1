"""``memjax bench`` runs end to end at a tiny shape (it measures; nothing here asserts speed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jax
import pytest

from memjax import bench, bench_baselines, options
from memjax.bench_baselines import BASELINES


def test_bench_writes_rows_for_each_memory_pass_and_baseline(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(
        [
            "--mixers",
            "lstm;lstm:bptt=False",
            "--lengths",
            "4,8",
            "--width",
            "8",
            "--batch",
            "2",
            "--repeats",
            "1",
            "--json",
            str(out),
        ]
    )
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    names = {r["name"] for r in rows}
    assert {"memjax lstm", "memjax lstm:bptt=False", "flax OptimizedLSTMCell"} <= names
    assert {(r["length"], r["pass_"]) for r in rows if r["name"] == "memjax lstm"} == {
        (4, "forward"),
        (4, "forward+backward"),
        (8, "forward"),
        (8, "forward+backward"),
    }
    assert all(r["median_ms"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    assert all(r["peak_bytes"] > 0 for r in rows if not r["name"].startswith("torch"))
    assert payload["environment"]["backend"] == "cpu"
    table = capsys.readouterr().out
    assert re.search(r"\| memjax lstm +\| +8 \| forward\+backward +\|", table)


def test_parse_memory_options():
    assert options.parse_memory("lstm:bptt=False,forget_bias=0.5") == (
        "lstm",
        {"bptt": False, "forget_bias": 0.5},
    )
    assert options.parse_memory("attention:positional=rope") == (
        "attention",
        {"positional": "rope"},
    )
    with pytest.raises(ValueError, match=r"got 'bptt'; expected key=value"):
        options.parse_memory("lstm:bptt")
    assert options.parse_memories("lstm,gru,lstm") == ["lstm", "gru"]
    assert options.parse_memories("lstm;lstm:bptt=False,unroll=2") == [
        "lstm",
        "lstm:bptt=False,unroll=2",
    ]
    with pytest.raises(ValueError, match=r"'bptt' given twice"):
        options.parse_memory("lstm:bptt=False,bptt=True")


def test_bench_measures_each_unroll_side_by_side(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--mixers", "gru", "--lengths", "4", "--width", "4", "--batch", "1"]
    bench.main(
        [*argv, "--repeats", "1", "--no-baselines", "--unroll", "auto,2", "--json", str(out)]
    )
    names = {r["name"] for r in json.loads(out.read_text())["rows"]}
    assert names == {"memjax gru unroll=auto", "memjax gru unroll=2"}


@pytest.mark.parametrize("text", ["0", "two", "1,,2", "-1"])
def test_bad_unroll_list_is_refused(text):
    with pytest.raises(ValueError, match="unroll"):
        bench.parse_unrolls(text)


def test_bench_measures_each_mode_a_memory_supports(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--mixers", "mingru;lstm;attention", "--lengths", "4", "--width", "8", "--batch", "1"]
    argv += ["--repeats", "1", "--no-baselines", "--mode", "sequential,parallel"]
    bench.main([*argv, "--json", str(out)])
    names = {r["name"] for r in json.loads(out.read_text())["rows"]}
    assert names == {
        "memjax mingru mode=sequential",
        "memjax mingru mode=parallel",
        "memjax lstm mode=sequential",
        "memjax attention mode=sequential",
    }
    with pytest.raises(ValueError, match="--mode takes modes"):
        bench.main(["--mixers", "lstm", "--mode", "sequential,fast"])


def test_repeats_run_in_rounds_over_all_functions():
    calls = []
    fns = [lambda name=name: calls.append(name) for name in "abc"]
    results = bench.time_interleaved(fns, repeats=2)
    assert calls == list("abc") * 3  # the first calls, then two rounds
    assert len(results) == 3 and all(first >= 0 and median >= 0 for first, median in results)
    with pytest.raises(ValueError, match="repeats must be at least 1, got 0"):
        bench.time_interleaved(fns, repeats=0)


def test_bench_times_only_the_baselines_asked_for(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--mixers", "gru", "--lengths", "4", "--width", "8", "--batch", "1", "--repeats", "1"]
    bench.main([*argv, "--baselines", "flax LSTMCell", "--json", str(out)])
    names = {r["name"] for r in json.loads(out.read_text())["rows"]}
    assert names == {"memjax gru", "flax LSTMCell"}
    with pytest.raises(ValueError, match=r"unknown names \['cudnn'\]"):
        bench.parse_baselines("flax LSTMCell,cudnn")


def test_bench_measures_each_remat_segment(tmp_path):
    out = tmp_path / "bench.json"
    argv = ["--mixers", "gru", "--lengths", "32", "--width", "8", "--batch", "2", "--repeats", "1"]
    bench.main([*argv, "--no-baselines", "--remat", "0,4", "--json", str(out)])
    rows = {(r["name"], r["pass_"]): r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {
        (f"memjax gru remat={k}", p) for k in (0, 4) for p in ("forward", "forward+backward")
    }
    assert (
        rows["memjax gru remat=4", "forward+backward"]["peak_bytes"]
        < rows["memjax gru remat=0", "forward+backward"]["peak_bytes"]
    )
    with pytest.raises(ValueError, match="--remat takes non-negative ints"):
        bench.parse_remats("4,x")


def test_compile_time_uses_the_memory_options():
    """``--compile`` builds the memory it is given, options and all (an unknown one is named)."""
    with pytest.raises(ValueError, match=r"'lstm' has no hyperparameter\(s\) \['nonsense'\]"):
        bench.model_compile_seconds("lstm:nonsense=1", depth=1, width=8, length=4)
    assert bench.model_compile_seconds("lstm:bptt=False", depth=1, width=8, length=4) > 0


def test_unroll_and_remat_are_measured_only_where_the_scan_uses_them():
    rows = bench.run(
        ["lru"], batch=2, lengths=[4], width=4, repeats=1,
        modes=["sequential", "parallel"], unrolls=[1, 2], remats=[0, 2],
    )  # fmt: skip
    labels = sorted({row.name for row in rows})
    sequential = [label for label in labels if "mode=sequential" in label]
    parallel = [label for label in labels if "mode=parallel" in label]
    assert len(sequential) == 4, labels
    assert parallel == ["memjax lru mode=parallel unroll=auto remat=0"], labels


def test_thread_limit_is_refused_outside_the_cpus_and_after_the_backend_started():
    available = len(os.sched_getaffinity(0))
    with pytest.raises(
        ValueError, match=rf"--threads must be between 1 and {available} here, got 0"
    ):
        bench.limit_threads(0)
    with pytest.raises(ValueError, match=r"--threads must be between 1 and \d+ here, got 999"):
        bench.limit_threads(999)
    jax.devices()
    with pytest.raises(ValueError, match="before JAX starts its backend"):
        bench.limit_threads(1)


def test_bench_on_one_thread_pins_the_process_and_records_it(tmp_path):
    """A fresh process: ``--threads 1`` leaves it on one CPU, with XLA's pool off."""
    out = tmp_path / "bench.json"
    script = (
        "import os, sys\n"
        "from memjax import bench\n"
        "bench.main(sys.argv[1:])\n"
        "print('cpus', len(os.sched_getaffinity(0)), os.environ['XLA_FLAGS'])\n"
    )
    args = ["--threads", "1", "--mixers", "rnn", "--lengths", "4", "--width", "8"]
    args += ["--batch", "1", "--repeats", "1", "--no-baselines", "--json", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=True
    )
    assert "cpus 1 --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" in done.stdout
    assert json.loads(out.read_text())["environment"]["threads"] == "1"


def test_memax_baselines_run_where_memax_is_installed_and_are_skipped_elsewhere(monkeypatch):
    assert {"memax GRU", "memax LSTM", "memax LRU", "torch attention"} <= set(BASELINES)
    monkeypatch.setitem(sys.modules, "memax.equinox.set_actions.gru", None)
    assert bench_baselines.memax_functions("GRU", 2, 5, 8) is None
    monkeypatch.undo()
    pytest.importorskip("memax")
    pytest.importorskip("equinox")
    for kind in ("GRU", "LSTM", "LRU"):
        forward, backward = bench_baselines.memax_functions(kind, 2, 5, 8)
        ys = forward.call()
        assert ys.shape == (2, 5, 8) and bool(jax.numpy.isfinite(ys).all())
        grads = jax.tree.leaves(backward.call())
        assert all(bool(jax.numpy.isfinite(g).all()) for g in grads)
