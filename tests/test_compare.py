"""``memjax compare`` at a tiny setting trains every mixer at one budget and writes its table."""

from __future__ import annotations

import json
import re

from PIL import Image

from memjax.experiments import compare


def test_compare_writes_table_json_and_plot(tmp_path, capsys, monkeypatch):
    """Run as the README runs it, with a relative --out from the user's folder."""
    monkeypatch.chdir(tmp_path.parent)
    argv = [
        "--out",
        tmp_path.name,
        "--tasks",
        "mqar",
        "--variants",
        "lstm,transformer",
        "--steps",
        "3",
        "--budget",
        "20000",
        "--set",
        "task.options.vocab_size=16",
        "--set",
        "task.options.length=16",
        "--set",
        "task.options.num_kv_pairs=2",
        "--set",
        "task.options.num_train=64",
        "--set",
        "task.options.num_validation=16",
        "--set",
        "task.options.num_test=16",
        "--set",
        "train.batch_size=8",
    ]
    rows = compare.main(argv)
    assert [(r["task"], r["mixer"]) for r in rows] == [("mqar", "lstm"), ("mqar", "transformer")]
    for row in rows:
        assert abs(row["params"] - 20000) / 20000 <= 0.10
        assert 0.0 <= row["test"] <= 1.0 and row["tokens_per_s"] > 0
    lstm, transformer = rows
    assert lstm["state_bytes"] < transformer["state_bytes"]
    table = (tmp_path / "compare.md").read_text()
    assert re.match(r"\| task +\| variant +\|", table)
    assert re.search(r"\| mqar +\| transformer +\|", table)
    assert json.loads((tmp_path / "compare.json").read_text()) == rows
    with Image.open(tmp_path / "compare.png") as image:
        assert image.format == "PNG" and image.size[0] > 100
    assert re.search(r"\| mqar +\| lstm +\|", capsys.readouterr().out)

    before = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("summary.json")}
    compare.main(argv)
    after = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("summary.json")}
    assert before == after, "a second compare must reuse finished runs"

    other = compare.main([*argv, "--variants", "lstm", "--steps", "4"])
    assert len(list((tmp_path / "runs").glob("mqar-lstm-*"))) == 2, "new steps, new run"
    (new_summary,) = [p for p in (tmp_path / "runs").rglob("summary.json") if p not in before]
    assert other[0]["test"] == json.loads(new_summary.read_text())["test_at_best"]
