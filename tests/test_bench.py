"""``memjax bench`` runs end to end at a tiny shape (it measures; nothing here asserts speed)."""

from __future__ import annotations

import json

import pytest

from memjax import bench


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
    assert payload["environment"]["backend"] == "cpu"
    table = capsys.readouterr().out
    assert "| memjax lstm | 8 | forward+backward |" in table


def test_parse_memory_options():
    assert bench.parse_memory("lstm:bptt=False,forget_bias=0.5") == (
        "lstm",
        {"bptt": False, "forget_bias": 0.5},
    )
    assert bench.parse_memory("attention:positional=rope") == ("attention", {"positional": "rope"})
    with pytest.raises(ValueError, match="must look like key=value"):
        bench.parse_memory("lstm:bptt")
