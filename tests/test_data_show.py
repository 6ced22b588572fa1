"""``python -m memjax.data show``: decoded examples, split sizes, length distribution."""

import io
import subprocess
import sys

from memjax import data


def test_show_prints_spec_sizes_examples_and_lengths(tmp_path):
    out = io.StringIO()
    options = {
        "data_dir": str(tmp_path),
        "num_train": 40,
        "num_validation": 5,
        "num_test": 5,
        "min_length": 10,
        "max_length": 60,
        "max_depth": 5,
        "max_args": 4,
    }
    data.show("listops", "validation", n=2, options=options, out=out)
    text = out.getvalue()
    assert "task listops: tokens (vocab 16), max_length 60, 10 classes" in text
    assert "split sizes: train 40, validation 5, test 5" in text
    assert text.count("example listops/validation/") == 2
    assert "[M" in text and " ]" in text  # an expression with operators and brackets
    assert "lengths over 5 of 5 validation examples: min " in text
    assert "longer than max_length 60: 0" in text and "examples/s" in text


def test_show_per_position_prints_targets():
    out = io.StringIO()
    data.show("copy", n=1, options={"lag": 8, "copy_length": 3, "num_train": 10}, out=out)
    text = out.getvalue()
    assert "| _ _ _\n" in text and "targets at loss positions: s" in text


def test_main_parses_options_and_reports_errors(capsys, tmp_path):
    assert (
        data.main(
            [
                "show",
                "induction",
                "--n",
                "1",
                "--option",
                "length=6",
                "--option",
                "num_train=7",
                "--stats-limit",
                "7",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "max_length 7" in text and "split sizes: train 7," in text
    assert "lengths over 7 of 7 train examples: min 7" in text
    assert data.main(["show", "induction", "--option", "length"]) == 1
    assert "error: --option: got 'length'; expected key=value" in capsys.readouterr().err
    assert data.main(["show", "induction", "--option", "colour=red"]) == 1
    assert "error: unknown option(s) colour for task 'induction'" in capsys.readouterr().err
    assert data.main(["show", "text", "--option", f"tfds_data_dir='{tmp_path}'"]) == 1
    assert "tfds build imdb_reviews" in capsys.readouterr().err


def test_module_runs_as_a_script():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "memjax.data",
            "show",
            "adding",
            "--n",
            "1",
            "--option",
            "length=5",
            "--stats-limit",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"JAX_PLATFORMS": "cpu", "PATH": ""},
    )
    assert "task adding: continuous (2 ch), max_length 5, 1 outputs" in result.stdout
    assert "example adding/train/0 (length 5, label " in result.stdout


def test_show_draws_images_and_paired_documents(tmp_path):
    import tensorflow_datasets as tfds

    out = io.StringIO()
    with tfds.testing.mock_data(num_examples=4):
        data.show("permuted_mnist", "test", n=1, options={"pixels": "normalized"}, out=out)
    text = out.getvalue()
    assert "task permuted_mnist: continuous (1 ch), max_length 784" in text
    rows = text.split("(length 784, label ")[1].split("\n")[1:29]
    assert all(len(row) == 28 for row in rows)  # a 28x28 drawing
    folder = tmp_path / "tsv_data"
    folder.mkdir()
    for part in ["train", "eval", "test"]:
        (folder / f"new_aan_pairs.{part}.tsv").write_text("1\ta\tb\tfirst doc\tsecond doc\n")
    out = io.StringIO()
    data.show("retrieval", n=1, options={"lra_dir": str(tmp_path)}, out=out)
    assert "document 1: first doc\n  document 2: second doc" in out.getvalue()


def test_main_reports_an_empty_lra_file_by_name(capsys, tmp_path):
    folder = tmp_path / "tsv_data"
    folder.mkdir()
    for part in ["train", "eval", "test"]:
        (folder / f"new_aan_pairs.{part}.tsv").write_text("1\ta\tb\tfirst doc\tsecond doc\n")
    (folder / "new_aan_pairs.test.tsv").write_text("")
    assert data.main(["show", "retrieval", "--option", f"lra_dir='{tmp_path}'"]) == 1
    err = capsys.readouterr().err
    assert f"error: {folder / 'new_aan_pairs.test.tsv'}: no rows" in err


def test_show_sequence_task_prints_commands_actions_and_both_length_spreads():
    out = io.StringIO()
    data.show("scan", "test", n=2, options={"split": "length"}, stats_limit=4000, out=out)
    text = out.getvalue()
    assert "task scan: tokens (vocab 14), max_length 9, 9 classes, target sequence" in text
    assert "target vocab 9 (0 pad, 1 BOS, 2 EOS), max_target_length 49 (EOS included)" in text
    assert "split sizes: train 15291, validation 1699, test 3920" in text
    assert text.count("example scan/length/test/") == 2 and "\n  targets: I_" in text
    assert "lengths over 3920 of 3920 test examples: min " in text
    assert "longer than max_length 9: 0" in text
    assert "target lengths (EOS not counted): min 24, " in text and ", max 48, " in text
    assert "longer than max_target_length 49 less EOS: 0" in text
    assert "\n         9            | " in text  # one histogram bin per command length


def test_main_exports_and_reports_bad_task_options(capsys, tmp_path):
    assert data.main(["export", "scan", "--option", "split=jump", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error: split='jump'; expected one of 'simple', 'length', 'addprim_jump'" in err
    assert data.main(["export", "scan", "--out", str(tmp_path / "scan")]) == 0
    out = capsys.readouterr().out
    assert f"wrote 15055 train examples to {tmp_path / 'scan' / 'tasks_train_simple.txt'}" in out
    assert "wrote 4182 test examples" in out
