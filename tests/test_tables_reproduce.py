"""The CPU reproductions' tables (h3, mqar, mnist1d): runs they expand into, end to end at smoke
scale, published rows beside ours."""

from __future__ import annotations

import json

from etils import epath

from memjax import experiments, variants
from memjax.experiments import cli, definitions, table_plot
from memjax.experiments.results import Block, Document, Entry, Line
from memjax.experiments.runs import Plan
from memjax.tasks import mqar

TINY = ["--set", "train.steps=2", "--set", "train.eval_every=2"]


def test_each_table_has_its_own_default_variants():
    args, _ = cli.parse(["scan"])
    assert args.variants == ("lstm", "gru_attention", "transformer")
    args, _ = cli.parse(["lra"])
    assert args.variants == variants.TABLE_DEFAULT
    args, _ = cli.parse(["h3", "--variants", "h3,s4d"])
    assert args.variants == ("h3", "s4d")


def test_mqar_table_is_zoologys_smallest_figure2_cells():
    (section,) = definitions.mqar_table(Plan("paper", 1, ("lstm",), ()))
    assert section.columns == ("L=64", "L=128")
    assert [row.label for row in section.rows] == ["LSTM, width 64", "LSTM, width 128"]
    figure2 = {length: (pairs, batch) for length, pairs, batch in mqar.FIGURE2}
    for row, width in zip(section.rows, (64, 128), strict=True):
        for cell, length in zip(row.cells, (64, 128), strict=True):
            config = cell.runs[0].load()
            pairs, batch = figure2[length]
            assert (config.task.options.length, config.task.options.num_kv_pairs) == (length, pairs)
            assert config.model.d_model == width and config.model.depth == 2
            assert config.task.options.random_non_queries is False
            assert config.train.batch_size == batch
            assert config.train.steps == mqar.figure2_steps(batch)  # 64 epochs


def test_h3_table_end_to_end_beside_h3s_table_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    experiments.main(["h3", "--variants", "h3", *TINY])
    md = (tmp_path / "out" / "tables" / "h3.md").read_text()
    assert "| model | Induction head | Associative recall |" in md
    assert "| Attention (published [1]) | 100 | 100 |" in md
    assert "pub. 100 [1]" in md and "pub. 99.8 [1]" in md  # H3's row beside ours
    assert "1. Fu et al. 2023" in md
    assert (tmp_path / "out" / "tables" / "h3.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "tables" / "h3_curves.png").read_bytes()[:4] == b"\x89PNG"
    (section,) = definitions.h3(Plan("paper", 1, ("s4d", "transformer", "lstm"), ()))
    beside = [[cell.published for cell in row.cells] for row in section.rows]
    assert beside == [["35.6", "86.0"], ["100", "100"], [None, None]]


def test_mnist1d_table_end_to_end_beside_the_readme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    experiments.main(["mnist1d", "--variants", "gru", *TINY])
    md = (tmp_path / "out" / "tables" / "mnist1d.md").read_text()
    assert "| model | MNIST-1D | shuffled |" in md
    assert "pub. 91 [1]" in md and "pub. 57 [1]" in md
    assert "| Human (published [1]) | 96 | – |" in md
    assert "1. Greydanus and Kobak 2024" in md


def test_table_figure_needs_a_finished_run(tmp_path):
    def document(mean):
        ours = Line("GRU", "ours", (Entry(mean=mean, std=1.0, seeds=3, published="91"),))
        paper = Line("CNN", "published", (Entry(published="94"),), "greydanus2024")
        return Document("t", "cmd", "d", [Block("accuracy", ("MNIST-1D",), (ours, paper), 2)])

    assert not table_plot.plot(document(None), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    assert table_plot.plot(document(88.5), tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert table_plot._number("99.8") == 99.8 and table_plot._number("–") is None


def test_validation_curves_are_read_from_metrics(tmp_path):
    lines = [
        {"step": 2, "loss": 1.0},
        {"step": 2, "val_metric": 0.25},
        {"step": 4, "val_metric": 0.5},
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    assert table_plot.validation_curve(epath.Path(tmp_path)) == {2: 25.0, 4: 50.0}
    assert table_plot.validation_curve(epath.Path(tmp_path / "absent")) == {}
