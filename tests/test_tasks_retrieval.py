"""Retrieval: LRA's AAN pair files, written here in their exact format."""

import numpy as np
import pytest

import memjax.tasks as tasks
from memjax import data

ROWS = [
    ("1", "W07-1001", "P05-1022", "We parse with a CKY chart.", "Charts for parsing."),
    ("0", "J93-2004", "W99-0613", "Treebank annotation \u2014 guidelines", "Unrelated text"),
    ("1.0", "P02-1040", "N03-1017", "BLEU scores " * 10, "phrase-based translation"),
    ("0.0", "D07-1031", "E06-1040", "short", ""),
]


def write_aan(root, rows=ROWS):
    folder = root / "lra_release" / "tsv_data"
    folder.mkdir(parents=True)
    for part in ["train", "eval", "test"]:
        lines = ["\t".join(row) for row in rows]
        (folder / f"new_aan_pairs.{part}.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return folder


def test_reads_pairs_as_bytes_plus_one(tmp_path):
    write_aan(tmp_path)
    task = tasks.get("retrieval", lra_dir=str(tmp_path / "lra_release"))
    spec = task.spec
    assert spec.paired and spec.vocab_size == 257 and spec.max_length == 4000
    for split in tasks.SPLITS:
        src = task.source(split)
        assert len(src) == len(ROWS)
        for i, (label, _, _, text1, text2) in enumerate(ROWS):
            ex = src[i]
            assert ex["label"] == int(float(label))
            np.testing.assert_array_equal(
                ex["inputs1"], np.frombuffer(text1.encode(), dtype=np.uint8) + 1
            )
            assert spec.decode(ex["inputs2"]) == text2
            assert ex["id"].endswith(f":{i + 1}")


def test_batches_stack_both_documents(tmp_path):
    write_aan(tmp_path)
    task = tasks.get("retrieval", max_length=30, lra_dir=str(tmp_path / "lra_release"))
    loader = data.make_loader(
        task,
        "test",
        global_batch_size=4,
        seed=0,
        shuffle=False,
        num_epochs=1,
        process_index=0,
        process_count=1,
        truncate=True,
    )
    batch = next(iter(loader))
    assert batch["inputs"].shape == (4, 2, 30) and batch["inputs"].dtype == np.int32
    assert batch["mask"].shape == (4, 2, 30)
    assert batch["mask"].sum(-1).tolist() == [[26, 19], [30, 14], [30, 24], [5, 0]]
    assert batch["label"].tolist() == [1, 0, 1, 0]
    assert np.all(batch["inputs"][~batch["mask"]] == 0)


def test_malformed_lines_and_labels_name_file_and_line(tmp_path):
    folder = write_aan(tmp_path)
    path = folder / "new_aan_pairs.eval.tsv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], "1\tA\tB\tonly four", *lines[2:]]) + "\n")
    task = tasks.get("retrieval", lra_dir=str(tmp_path / "lra_release"))
    with pytest.raises(ValueError, match=rf"{path}:3: malformed line: 4 tab-separated fields"):
        task.source("validation")
    path.write_text("\n".join([*lines[:2], "yes\tA\tB\tx\ty"]) + "\n")
    with pytest.raises(ValueError, match=rf"{path}:3: label b'yes'; expected 0 or 1"):
        task.source("validation")[2]


def test_missing_files_say_where_and_how(tmp_path):
    task = tasks.get("retrieval", lra_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        task.source("train")
    assert str(tmp_path / "tsv_data" / "new_aan_pairs.train.tsv") in str(info.value)
    assert "lra_release.gz" in str(info.value)


def test_empty_files_and_too_few_rows_name_the_file(tmp_path):
    folder = write_aan(tmp_path)
    path = folder / "new_aan_pairs.train.tsv"
    path.write_text("")
    task = tasks.get("retrieval", lra_dir=str(tmp_path / "lra_release"))
    with pytest.raises(ValueError, match=rf"{path}: no rows; expected 5 tab-separated fields"):
        task.source("train")
    path.write_text("\t".join(ROWS[0]) + "\n")
    task = tasks.get("retrieval", lra_dir=str(tmp_path / "lra_release"))
    with pytest.raises(ValueError, match=rf"has 1 examples \(AanPairs\({path}\)\), too few"):
        data.make_loader(task, "train", global_batch_size=2, seed=0, process_count=2)


def test_a_bad_row_in_any_split_fails_when_the_first_split_is_read(tmp_path):
    folder = write_aan(tmp_path)
    path = folder / "new_aan_pairs.test.tsv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], "2\tA\tB\tx\ty", *lines[3:]]) + "\n")
    task = tasks.get("retrieval", lra_dir=str(tmp_path / "lra_release"))  # reads no data
    with pytest.raises(ValueError, match=rf"{path}:4: label b'2'; expected 0 or 1"):
        data.make_loader(task, "train", global_batch_size=2, seed=0, process_count=1)
    path.unlink()
    task = tasks.get("retrieval", lra_dir=str(tmp_path / "lra_release"))
    with pytest.raises(FileNotFoundError, match=rf"{path}"):
        task.source("train")


def test_errors_raised_inside_grain_print_file_and_line_last(tmp_path):
    import traceback

    folder = write_aan(tmp_path)
    task = tasks.get("retrieval", max_length=20, lra_dir=str(tmp_path / "lra_release"))
    loader = data.make_loader(
        task, "train", global_batch_size=4, seed=0, shuffle=False, process_count=1
    )
    with pytest.raises(ValueError) as info:
        next(iter(loader))
    printed = "".join(traceback.format_exception(info.value)).strip().splitlines()
    where = folder / "new_aan_pairs.train.tsv"
    assert printed[-1].startswith(f"ValueError: example {where}:1 of task 'retrieval' has length")
