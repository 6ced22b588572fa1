"""SCAN through the trainer: configs against Lake & Baroni, a training run whose metric is exact
match by greedy decoding, and its report."""

from __future__ import annotations

import json

import pytest
from tiny_run import ROOT

from memjax import budget, tasks, train
from memjax import config as config_lib
from memjax.run_model import build_model

CONFIG = ROOT / "configs" / "scan.py"

# Lake & Baroni 2018 (ICML), section 3: Adam, lr 0.001, clip 5, 100,000 presentations of one
# example, teacher forcing half the time; overall-best 2 x 200 LSTM, dropout 0.5, no attention;
# length split's best 1 x 50 GRU with attention, dropout 0.5; add-jump's best 1 x 100 LSTM with
# attention, dropout 0.1. Columns: layers, units, dropout, decoder attention.
LAKE_BARONI = {
    "lstm": (2, 200, 0.5, ""),
    "gru_attention": (1, 50, 0.5, "bahdanau"),
    "lstm_attention": (1, 100, 0.1, "bahdanau"),
}


@pytest.mark.parametrize("variant", sorted(LAKE_BARONI))
def test_configs_are_lake_and_baroni_models(variant):
    config = config_lib.load(f"{CONFIG}:{variant}")
    model = config.model
    assert (model.depth, model.d_model, model.dropout, model.seq2seq.attention) == LAKE_BARONI[
        variant
    ]
    assert (config.train.batch_size, config.train.steps) == (1, 100_000)
    assert (config.optim.lr, config.optim.schedule, config.optim.clip_norm) == (1e-3, "constant", 5)
    assert (config.optim.weight_decay, config.optim.b2) == (0.0, 0.999)
    assert model.seq2seq.teacher_forcing == 0.5
    assert "Lake & Baroni" in config.provenance.source


def test_other_memories_are_sized_to_the_overall_best_models_parameter_count():
    module = config_lib.load_module(CONFIG)
    lstm = config_lib.load(f"{CONFIG}:lstm")
    task = tasks.get("scan")
    assert budget.param_count(build_model(lstm.model, task.spec, 0)) == module.PARAMETER_BUDGET
    for variant in ("transformer", "lru"):
        config = config_lib.load(f"{CONFIG}:{variant}")
        assert config.model.param_budget == module.PARAMETER_BUDGET
        assert "no paper ran" in config.provenance.differences[0]


def test_decoder_attention_is_refused_on_a_task_without_sequence_targets():
    config = config_lib.load(f"{ROOT}/configs/mqar.py:gru_attention,smoke")
    spec = tasks.get("mqar", vocab_size=16, length=16, num_kv_pairs=2).spec
    with pytest.raises(ValueError, match="not a sequence-to-sequence task"):
        build_model(config.model, spec, 0)


def test_a_scan_run_scores_exact_match_by_greedy_decoding_and_reports_it(tmp_path):
    config = config_lib.load(
        f"{CONFIG}:lstm_attention,smoke",
        [("train.steps", 40), ("optim.lr", 1e-2), ("task.options.max_examples", 64)],
    )
    summary = train.train_and_evaluate(config, tmp_path, progress=False)
    report = summary["sequence_test"]
    assert report["sequences"] == 64
    # The eval step's greedy exact match and the report's are the same decoding.
    assert summary["test_at_best"] == pytest.approx(report["exact_match"])
    # A sequence greedy gets right is also right when its length is forced to the target's.
    assert report["exact_match"] <= report["oracle_length_exact_match"]
    assert 0.0 < report["token_accuracy"] <= 1.0
    assert sum(count for _, count in report["by_target_length"].values()) == 64
    assert sum(count for _, count in report["by_command_length"].values()) == 64
    assert report["decode_tokens_per_s"] > 0 and report["state_bytes_per_sequence"] > 0
    assert train.evaluate_workdir(tmp_path, "test")["accuracy"] == summary["test_at_best"]


def test_scan_table_end_to_end_beside_lake_and_baroni(tmp_path, monkeypatch):
    from memjax import experiments

    monkeypatch.chdir(tmp_path)
    tiny = ["--set", "train.steps=2", "--set", "task.options.max_examples=16"]
    experiments.main(["scan", "--variants", "gru_attention", "--columns", "length,simple", *tiny])
    md = (tmp_path / "out" / "tables" / "scan.md").read_text()
    assert "| model | simple | length |" in md  # the table's order, only the columns asked for
    assert "| Top per split (published [1]) | 99.8 | 20.8 |" in md
    assert "pub. 20.8 [1]" in md and "pub. 90.3" not in md
    assert "| GRU + attention (-style) |" in md and "1. Lake and Baroni 2018" in md
    assert "GRU + attention (-style) (length): " in md  # notes name only the columns printed
    sections = md.split("\n## ")
    oracle = next(s for s in sections if s.startswith("SCAN: exact match (%) when decoding"))
    assert "| GRU + attention (length's top) (published [1]) | – | 60.2 |" in oracle
    speed = next(s for s in sections if s.startswith("SCAN: greedy decoding speed"))
    state = next(s for s in sections if s.startswith("SCAN: bytes one sequence holds"))
    reports = [
        json.loads(path.read_text())["sequence_test"]
        for path in (tmp_path / "runs").glob("**/summary.json")
    ]
    assert len(reports) == 2  # one run per split asked for
    wall = next(s for s in sections if s.startswith("SCAN: wall time per run"))
    for section, key in ((speed, "decode_tokens_per_s"), (state, "state_bytes_per_sequence")):
        assert "| GRU + attention (-style) |" in section
        for report in reports:  # one seed: the cell is that run's number
            assert f" {report[key]:.0f} " in section
    walls = [
        json.loads(p.read_text())["wall_s"] for p in (tmp_path / "runs").glob("**/summary.json")
    ]
    assert all(f" {seconds:.0f} " in wall for seconds in walls)
    assert "carries `--set` overrides that its config's setup does not: train.steps=2" in md
    assert (tmp_path / "out" / "tables" / "scan_by_length.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="--columns: \\['jump'\\] not in this table"):
        experiments.main(["scan", "--columns", "jump"])


def test_length_curves_pool_the_seeds_counts():
    from memjax.experiments import scan_plot

    pooled = scan_plot.pooled([{"24": [1, 4], "30": [0, 2]}, {"24": [3, 4]}])
    assert pooled == {24: 50.0, 30: 0.0}
