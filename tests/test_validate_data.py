"""Dataset discovery and the training Dataset: both layouts, pairing, label checks, augmentation."""

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from atrous_advisor.errors import DataError  # noqa: E402
from atrous_advisor.train.data import SegmentationDataset, check_labels, discover, infer_num_classes  # noqa: E402


def write_pair(image_path, mask_path, size=(40, 60), label=1):
    image_path.parent.mkdir(parents=True, exist_ok=True)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(image_path)
    mask = np.zeros((h, w), np.uint8)
    mask[: h // 2] = label
    mask[-1] = 255
    Image.fromarray(mask, "L").save(mask_path)


def folder_dataset(root, stems=("a", "b"), label=1):
    for split in ("train", "val"):
        for stem in stems:
            write_pair(root / split / "images" / f"{stem}.jpg", root / split / "masks" / f"{stem}.png", label=label)
    return root


def test_folder_layout_pairs_by_stem(tmp_path):
    root = folder_dataset(tmp_path)
    files = discover(root, "train")
    assert files.layout == "folders"
    assert [(s.image.name, s.mask.name) for s in files.samples] == [("a.jpg", "a.png"), ("b.jpg", "b.png")]
    assert infer_num_classes([files], 255) == 2


def test_cityscapes_layout(tmp_path):
    for split in ("train", "val"):
        for city, frame in (("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313")):
            write_pair(
                tmp_path / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png",
                tmp_path / "gtFine" / split / city / f"{frame}_gtFine_labelTrainIds.png",
                label=18,
            )
    files = discover(tmp_path, "val")
    assert files.layout == "cityscapes"
    assert [s.mask.name for s in files.samples] == [
        "aachen_000000_000019_gtFine_labelTrainIds.png",
        "bochum_000000_000313_gtFine_labelTrainIds.png",
    ]
    assert infer_num_classes([files], 255) == 19
    check_labels(files.samples, 19, 255)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        discover(tmp_path / "nope", "train")
    (tmp_path / "train" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"missing folder .*train/masks"):
        discover(tmp_path, "train")


def test_unmatched_pairs_are_named(tmp_path):
    root = folder_dataset(tmp_path)
    (root / "train" / "masks" / "b.png").rename(root / "train" / "masks" / "c.png")
    with pytest.raises(DataError, match=r"1 images in .*train/images without a partner.*: b"):
        discover(root, "train")


def test_out_of_range_labels_are_named(tmp_path):
    root = folder_dataset(tmp_path, label=7)
    with pytest.raises(DataError, match=r"a\.png has label\(s\) \[7\] outside 0\.\.4"):
        check_labels(discover(root, "train").samples, num_classes=5, ignore_index=255)


def test_rgb_mask_is_refused(tmp_path):
    root = folder_dataset(tmp_path)
    Image.new("RGB", (60, 40)).save(root / "train" / "masks" / "a.png")
    with pytest.raises(DataError, match="mode RGB"):
        check_labels(discover(root, "train").samples, 5, 255)


def test_unreadable_files_are_named(tmp_path):
    from atrous_advisor.train.data import read_image

    root = folder_dataset(tmp_path)
    (root / "val" / "masks" / "b.png").write_text("not a png")
    with pytest.raises(DataError, match=r"mask .*val/masks/b\.png cannot be read \(UnidentifiedImageError"):
        infer_num_classes([discover(root, "train"), discover(root, "val")], 255)
    (root / "train" / "images" / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"image .*train/images/a\.jpg cannot be read"):
        infer_num_classes([discover(root, "train")], 255)
    with pytest.raises(DataError, match=r"image .*a\.jpg cannot be read"):
        read_image(root / "train" / "images" / "a.jpg")


def test_training_samples_are_cropped_and_reproducible(tmp_path):
    root = folder_dataset(tmp_path)
    samples = discover(root, "train").samples
    train = SegmentationDataset(samples, crop=(32, 48), train=True, seed=1)
    image, mask = train[0]
    assert image.shape == (3, 32, 48) and image.dtype == torch.float32
    assert mask.shape == (32, 48) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= {0, 1, 255}
    again = SegmentationDataset(samples, crop=(32, 48), train=True, seed=1)[0]
    assert torch.equal(again[0], image) and torch.equal(again[1], mask)
    train.set_epoch(1)
    assert not torch.equal(train[0][1], mask) or not torch.equal(train[0][0], image)
    whole_image, whole_mask = SegmentationDataset(samples, crop=(32, 48), train=False)[1]
    assert whole_image.shape == (3, 40, 60) and whole_mask.shape == (40, 60)
