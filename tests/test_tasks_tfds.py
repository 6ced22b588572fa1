"""Text, image, MNIST and permuted MNIST through ``tfds.testing.mock_data`` (no TensorFlow)."""

import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import memjax.tasks as tasks
from memjax import data


def records(name, n=6):
    """Known records of the shape tfds.data_source returns for ``name``."""
    rng = np.random.default_rng(len(name))
    if name == "imdb_reviews":
        texts = ["A fine film.", "Terrible. 0/10", "Ünïcödé — ok", "", "x" * 50, "Bof"]
        return [{"text": t, "label": np.int64(i % 2)} for i, t in enumerate(texts[:n])]
    if name == "mnist":  # two images that together number the pixels: 256 * b + a
        position = np.arange(784).reshape(28, 28, 1)
        images = [position % 256, position // 256]
        images += [rng.integers(0, 256, size=(28, 28, 1)) for _ in range(n - 2)]
        return [
            {"image": image.astype(np.uint8), "label": np.int64(i)}
            for i, image in enumerate(images)
        ]
    shape = (32, 32, 3)
    return [
        {"image": rng.integers(0, 256, size=shape, dtype=np.uint8), "label": np.int64(i % 10)}
        for i in range(n)
    ]


@pytest.fixture
def mocked():
    """Mocks tfds; records which (dataset, split) each data source was asked for."""
    asked = []

    def as_data_source(builder, split, **kwargs):
        asked.append((builder.name, split))
        return records(builder.name)

    with tfds.testing.mock_data(as_data_source_fn=as_data_source):
        yield asked


def test_no_tensorflow_is_imported(mocked):
    tasks.get("text").source("train")[0]
    assert "tensorflow" not in sys.modules


def test_text_is_utf8_bytes_plus_one(mocked):
    task = tasks.get("text")
    spec = task.spec
    assert (spec.vocab_size, spec.max_length, spec.num_classes) == (257, 4096, 2)
    src = task.source("train")
    assert len(src) == 6
    for i, record in enumerate(records("imdb_reviews")):
        ex = src[i]
        expected = np.frombuffer(record["text"].encode("utf-8"), dtype=np.uint8) + 1
        np.testing.assert_array_equal(ex["inputs"], expected)
        assert ex["label"] == i % 2
        assert spec.decode(ex["inputs"]) == record["text"]


def test_text_splits_follow_lra_or_hold_out_train(mocked):
    for split in tasks.SPLITS:
        tasks.get("text").source(split)
        tasks.get("text", val_percent=10).source(split)
    assert mocked == [
        ("imdb_reviews", "train"),
        ("imdb_reviews", "train[:90%]"),
        ("imdb_reviews", "test"),  # LRA validated on the test split
        ("imdb_reviews", "train[90%:]"),
        ("imdb_reviews", "test"),
        ("imdb_reviews", "test"),
    ]


def test_text_batches_truncate_only_when_asked(mocked):
    task = tasks.get("text", max_length=20)
    loader = data.make_loader(
        task,
        "train",
        global_batch_size=6,
        seed=0,
        shuffle=False,
        num_epochs=1,
        process_index=0,
        process_count=1,
    )
    with pytest.raises(
        ValueError, match=r"example imdb_reviews/train/4 .* length 50 > max_length 20"
    ):
        next(iter(loader))
    loader = data.make_loader(
        task,
        "train",
        global_batch_size=6,
        seed=0,
        shuffle=False,
        num_epochs=1,
        process_index=0,
        process_count=1,
        truncate=True,
    )
    batch = next(iter(loader))
    assert batch["inputs"].shape == (6, 20) and batch["mask"][4].all()
    lengths = [min(len(r["text"].encode("utf-8")), 20) for r in records("imdb_reviews")]
    assert batch["mask"].sum(1).tolist() == lengths == [12, 14, 18, 0, 20, 3]


def tf_grayscale(image):
    """``tf.image.rgb_to_grayscale`` on uint8 as TensorFlow computes it (float32, then the
    ``convert_image_dtype`` cast: multiply by 255.5 and truncate)."""
    x = image.astype(np.float32) / np.float32(255)
    gray = x[..., 0] * np.float32(0.2989) + x[..., 1] * np.float32(0.5870)
    gray = gray + x[..., 2] * np.float32(0.1140)
    return (gray * np.float32(255.5)).astype(np.uint8)


@pytest.mark.parametrize("pixels", ["tokens", "normalized"])
def test_image_is_grayscale_cifar_in_raster_order(mocked, pixels):
    task = tasks.get("image", pixels=pixels)
    assert task.spec.max_length == 1024 and task.spec.num_classes == 10
    src = task.source("validation")
    assert mocked == [("cifar10", "train[90%:]")]
    for i, record in enumerate(records("cifar10")):
        gray = tf_grayscale(record["image"]).reshape(-1)
        ex = src[i]
        if pixels == "tokens":
            assert np.abs(ex["inputs"] - (gray.astype(np.int32) + 1)).max() <= 1
            assert np.mean(ex["inputs"] == gray + 1) > 0.99
        else:
            assert ex["inputs"].shape == (1024, 1)
            np.testing.assert_allclose(ex["inputs"][:, 0], gray / 255.0, atol=1.01 / 255)
        assert ex["label"] == i % 10


def test_mnist_sequential_and_permuted(mocked):
    plain = tasks.get("mnist").source("test")
    perm_task = tasks.get("permuted_mnist", permutation_seed=7)
    permuted = perm_task.source("test")
    again = tasks.get("permuted_mnist", permutation_seed=7).source("test")
    other = tasks.get("permuted_mnist", permutation_seed=8).source("test")

    def order_of(src):  # the pixel each step reads, from the two numbering images
        return 256 * (src[1]["inputs"] - 1) + (src[0]["inputs"] - 1)

    order = order_of(permuted)
    assert sorted(order.tolist()) == list(range(784))  # a permutation
    assert np.mean(order == np.arange(784)) < 0.05  # far from raster order
    np.testing.assert_array_equal(order_of(plain), np.arange(784))
    np.testing.assert_array_equal(order_of(again), order)  # fixed by the seed
    assert np.mean(order_of(other) == order) < 0.05
    for i, record in enumerate(records("mnist")):
        flat = record["image"].reshape(-1).astype(np.int32) + 1
        np.testing.assert_array_equal(plain[i]["inputs"], flat)
        np.testing.assert_array_equal(permuted[i]["inputs"], flat[order])  # same order for all
        assert permuted[i]["label"] == i
    drawn = perm_task.spec.decode(permuted[2]["inputs"])
    assert drawn == tasks.get("mnist").spec.decode(plain[2]["inputs"])  # drawn unpermuted


def test_missing_tfds_data_says_where_and_how(tmp_path):
    task = tasks.get("image", tfds_data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        task.source("train")
    message = str(info.value)
    assert str(tmp_path / "cifar10") in message
    assert f"tfds build cifar10 --data_dir={tmp_path} --file_format=array_record" in message
    assert "pip install tensorflow tensorflow-datasets" in message


def test_bad_options():
    with pytest.raises(ValueError, match="val_percent=100; expected an int >= 0 and <= 99"):
        tasks.get("text", val_percent=100)
    with pytest.raises(ValueError, match="val_percent=0; expected an int >= 1 and <= 99"):
        tasks.get("image", val_percent=0)
    with pytest.raises(ValueError, match="permutation_seed=-1"):
        tasks.get("permuted_mnist", permutation_seed=-1)


def test_missing_tfds_data_in_the_default_folder_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "nothing-here"))
    task = tasks.get("text")
    with pytest.raises(FileNotFoundError, match=r"(?s)'imdb_reviews' is not prepared.*tfds build"):
        task.source("train")
