"""Pathfinder: balanced labels, the original's dashed drawing and continuity rule, its image
statistics, determinism, LRA reader."""

import math
import struct
import zlib

import numpy as np
import pytest
from scipy import ndimage

import memjax.tasks as tasks
from memjax.tasks import pathfinder, pathfinder_draw, pathfinder_geometry

# drewlinsley/pathfinder snakes2.from_wrapper at LRA's 32 px arguments (scipy-era 8-bit
# resizing), 200 images: ink pieces (8-connected, pixels > 0.5 of the 0..1 image) per image
# 20.87 (sd 4.49), share of pixels > 0.5 0.0863 (sd 0.0097), share of pixels > 0 0.345.
ORIGINAL_32 = {"pieces": 20.87, "pieces_sd": 4.49, "share": 0.0863, "inked": 0.345}


def image_of(example, resolution):
    return (example["inputs"] - 1).reshape(resolution, resolution)


def pieces(image: np.ndarray) -> int:
    """Ink pieces: 8-connected components of pixels above half the 0..255 range."""
    return ndimage.label(image > 127, structure=np.ones((3, 3)))[1]


@pytest.fixture(scope="module")
def pathfinder32():
    task = tasks.get("pathfinder", num_train=20, num_validation=4, num_test=4, seed=5)
    src = task.source("train")
    return task, [src[i] for i in range(len(src))]


@pytest.fixture(scope="module")
def drawings32():
    return [pathfinder_draw.draw(np.random.default_rng([3, i]), i % 2, 32, 14) for i in range(120)]


def test_labels_are_balanced(pathfinder32):
    _, examples = pathfinder32
    labels = np.array([ex["label"] for ex in examples])
    assert labels.sum() == len(labels) // 2
    for split in ["validation", "test"]:
        task = pathfinder32[0]
        src = task.source(split)
        assert sum(src[i]["label"] for i in range(len(src))) == len(src) // 2


def test_markers_sit_on_one_contour_exactly_in_positives(pathfinder32, drawings32):
    task, examples = pathfinder32
    assert task.spec.max_length == 1024 and task.spec.vocab_size == 257
    for ex in examples[:10]:
        rng = pathfinder.example_rng(5, "train", int(ex["id"].split("/")[-1]))
        drawing = pathfinder_draw.draw(rng, ex["label"], 32, 14)
        np.testing.assert_array_equal(ex["markers"], drawing.markers)
        np.testing.assert_array_equal(image_of(ex, 32), drawing.image)
    for d in drawings32:
        first, second = d.contours[:2]
        assert first.kind == second.kind == "target" and len(first.dashes) == 14
        assert tuple(d.markers[0]) == first.start
        assert tuple(d.markers[1]) == (first.end if d.label else second.end)
        assert first.end != second.end and first.start != second.start


def test_consecutive_dashes_are_continuous_in_the_originals_sense(drawings32):
    g = pathfinder_geometry.GEOMETRY[32]
    for d in drawings32:
        reach, stride = g.paddle_length + d.margin, g.paddle_length + 2 * d.margin
        for contour in d.contours:
            for a, b in zip(contour.dashes, contour.dashes[1:], strict=False):
                turn = abs(b.direction - a.direction)
                assert min(turn, 2 * math.pi - turn) < g.max_turn  # 90 degrees at 32 px
                assert b.pivot == pathfinder_draw.step(a.pivot, a.direction, stride)
                distance = math.dist(b.last, b.pivot)
                assert reach - 1.5 <= distance <= reach + 1.5  # floor of each coordinate
                gap = math.dist(a.last, b.first)
                assert gap <= 2 * d.margin + 3  # a gap of 2m, give or take pixel rounding


def test_images_match_the_originals_statistics_at_32(drawings32):
    images = np.stack([d.image for d in drawings32])
    counts = np.array([pieces(image) for image in images])
    share = (images > 127).mean()
    inked = (images > 0).mean()
    # 3 standard errors of a 120-image mean (sd 4.5: 1.2) plus the ~1.6 pieces that stricter
    # separation of contours adds (the original lets some starts touch other dashes)
    assert abs(counts.mean() - ORIGINAL_32["pieces"]) < 3.0
    assert abs(counts.std() - ORIGINAL_32["pieces_sd"]) < 1.5
    assert abs(share - ORIGINAL_32["share"]) < 0.004  # sd 0.0097: se of 120 images 0.0009
    assert abs(inked - ORIGINAL_32["inked"]) < 0.02
    assert counts.mean() > 16  # dashes: the solid strokes of VERSION 1 gave 11.2 pieces


def test_same_seed_same_images_and_other_seed_differs():
    def first(seed):
        return tasks.get("pathfinder", seed=seed, num_train=4).source("train")[1]["inputs"]

    np.testing.assert_array_equal(first(0), first(0))
    assert not np.array_equal(first(0), first(1))


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_every_resolution_draws_dashes(resolution):
    task = tasks.get("pathfinder", resolution=resolution, contour_length=6, num_train=2)
    assert task.spec.max_length == resolution * resolution
    assert task.spec.name == ("pathx" if resolution == 128 else "pathfinder")
    ex = task.source("train")[1]
    image = image_of(ex, resolution)
    assert image.shape == (resolution, resolution) and image.max() == 255
    drawing = pathfinder_draw.draw(pathfinder.example_rng(0, "train", 1), 1, resolution, 6)
    np.testing.assert_array_equal(drawing.image, image)
    g = pathfinder_geometry.GEOMETRY[resolution]
    assert drawing.margin in g.margins
    labels, count = ndimage.label(image > 127, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    assert count >= 6  # the target alone is 6 separate dashes
    dash_area = (g.paddle_length + 2) * (g.paddle_thickness + 2)
    assert np.median(sizes) <= dash_area  # most pieces are single dashes


def test_pathx_is_pathfinder_128_and_normalized_pixels():
    task = tasks.get("pathx", pixels="normalized", num_train=2)
    assert task.spec.input_kind == "continuous" and task.spec.channels == 1
    ex = task.source("train")[0]
    assert ex["inputs"].shape == (128 * 128, 1) and ex["inputs"].dtype == np.float32
    assert 0.0 <= ex["inputs"].min() and ex["inputs"].max() == 1.0


def test_decode_draws_the_image(pathfinder32):
    task, examples = pathfinder32
    rows = task.spec.decode(examples[0]["inputs"]).split("\n")
    assert len(rows) == 32 and all(len(r) == 32 for r in rows)
    assert "@" in "".join(rows)


# --- LRA's released folders -------------------------------------------------------------


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG, written here without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    h, w = image.shape
    rows = b"".join(b"\x00" + image[r].astype(np.uint8).tobytes() for r in range(h))
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def write_lra_pathfinder(root, resolution=32, folder="curv_contour_length_14", n=20):
    """LRA's layout: metadata/<batch>.npy text rows and imgs/<batch>/sample_<i>.png."""
    base = root / f"pathfinder{resolution}" / folder
    (base / "metadata").mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected = []
    for batch in range(2):
        (base / "imgs" / str(batch)).mkdir(parents=True)
        lines = []
        for i in range(n // 2):
            image = rng.integers(0, 256, size=(resolution, resolution), dtype=np.uint8)
            label = int(rng.integers(0, 2))
            (base / "imgs" / str(batch) / f"sample_{i}.png").write_bytes(png_bytes(image))
            lines.append(f"imgs/{batch} sample_{i}.png {i} {label} 1.0 14 4 2 0.5 1 1")
            expected.append((image, label))
        (base / "metadata" / f"{batch}.npy").write_text("\n".join(lines) + "\n")
    return base, expected


def test_lra_reader_splits_80_10_10_in_metadata_order(tmp_path):
    _, expected = write_lra_pathfinder(tmp_path)
    task = tasks.get("pathfinder", source="lra", lra_dir=str(tmp_path))
    sizes = {split: len(task.source(split)) for split in tasks.SPLITS}
    assert sizes == {"train": 16, "validation": 2, "test": 2}
    order = [*range(16), 16, 17, 18, 19]
    read = [task.source(s)[i] for s in tasks.SPLITS for i in range(sizes[s])]
    for ex, k in zip(read, order, strict=True):
        image, label = expected[k]
        np.testing.assert_array_equal(ex["inputs"], image.reshape(-1).astype(np.int32) + 1)
        assert ex["label"] == label


def test_lra_reader_skips_empty_images_and_names_bad_ones(tmp_path):
    base, _ = write_lra_pathfinder(tmp_path)
    (base / "imgs" / "0" / "sample_3.png").write_bytes(b"")

    def train():
        return tasks.get("pathfinder", source="lra", lra_dir=str(tmp_path)).source("train")

    assert len(train()) == 15  # LRA's pipeline dropped empty images too
    bad = base / "imgs" / "0" / "sample_5.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    with pytest.raises(ValueError, match=rf"{bad} \(listed at .*0.npy:6\): unreadable image"):
        train()[4]
    small = base / "imgs" / "1" / "sample_0.png"
    small.write_bytes(png_bytes(np.zeros((16, 16), dtype=np.uint8)))
    with pytest.raises(ValueError, match=rf"{small} .*image is 16x16; expected 32x32"):
        train()[9]
    (base / "imgs" / "1" / "sample_1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1.npy:2: image .*sample_1.png listed"):
        train()


def test_lra_reader_metadata_errors_and_missing_folder(tmp_path):
    base, _ = write_lra_pathfinder(tmp_path)
    meta = base / "metadata" / "1.npy"
    meta.write_text(meta.read_text() + "imgs/1 sample_x.png 3\n")
    task = tasks.get("pathfinder", source="lra", lra_dir=str(tmp_path))
    with pytest.raises(ValueError, match=rf"{meta}:11: malformed metadata line"):
        task.source("test")
    with pytest.raises(FileNotFoundError) as info:
        tasks.get("pathfinder", source="lra", resolution=64, lra_dir=str(tmp_path))
    assert str(tmp_path / "pathfinder64" / "curv_contour_length_14") in str(info.value)
    assert "lra_release.gz" in str(info.value)


def test_bad_options():
    with pytest.raises(ValueError, match="resolution=48; expected one of 32, 64, 128, 256"):
        tasks.get("pathfinder", resolution=48)
    with pytest.raises(ValueError, match="contour_length=10; expected one of 6, 9, 14"):
        tasks.get("pathfinder", contour_length=10)
    with pytest.raises(ValueError, match="pixels='rgb'; expected one of 'tokens', 'normalized'"):
        tasks.get("pathfinder", pixels="rgb")


def test_cache_renders_each_split_once_with_the_same_images(tmp_path):
    options = {"num_train": 6, "num_validation": 3, "num_test": 3, "seed": 2}
    lazy = tasks.get("pathfinder", **options).source("validation")
    cached_task = tasks.get("pathfinder", cache=True, data_dir=str(tmp_path), **options)
    cached = cached_task.source("validation")
    folders = list((tmp_path / "pathfinder").iterdir())
    assert len(folders) == 1 and (folders[0] / "images.npy").exists()
    for i in range(3):
        np.testing.assert_array_equal(cached[i]["inputs"], lazy[i]["inputs"])
        np.testing.assert_array_equal(cached[i]["markers"], lazy[i]["markers"])
        assert cached[i]["label"] == lazy[i]["label"] == i % 2
    assert cached_task.source("validation") is cached  # built once per task
    again = tasks.get("pathfinder", cache=True, data_dir=str(tmp_path), **options).source(
        "validation"
    )  # reads the cache, no new folder
    assert len(list((tmp_path / "pathfinder").iterdir())) == 1
    np.testing.assert_array_equal(again[2]["inputs"], lazy[2]["inputs"])
    with pytest.raises(ValueError, match="cache='yes'; expected True or False"):
        tasks.get("pathfinder", cache="yes")


def test_lra_problems_in_any_split_fail_when_the_first_split_is_read(tmp_path):
    base, _ = write_lra_pathfinder(tmp_path)
    (base / "imgs" / "1" / "sample_9.png").unlink()  # the last test example
    task = tasks.get("pathfinder", source="lra", lra_dir=str(tmp_path))  # reads no data
    with pytest.raises(FileNotFoundError, match=r"1.npy:10: image .*sample_9.png listed"):
        task.source("train")
    meta = base / "metadata" / "1.npy"
    meta.write_bytes(meta.read_bytes() + b"imgs/1 sample_\xff.png 3 1\n")
    task = tasks.get("pathfinder", source="lra", lra_dir=str(tmp_path))
    with pytest.raises(ValueError, match=rf"{meta}:11: metadata line is not UTF-8 text"):
        task.source("train")
