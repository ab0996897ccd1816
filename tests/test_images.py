"""Image files -> AlexNet inputs: fits, colour modes, EXIF orientation, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hw5jax.alexnet import images
from hw5jax.alexnet.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageError,
    ImageTooSmallError,
    load_image,
)


def _save(tmp_path, name: str, img: Image.Image, **kwargs):
    path = tmp_path / name
    img.save(path, **kwargs)
    return path


def _gradient(width: int, height: int) -> Image.Image:
    """An RGB image whose red channel is the column index (so crops can be located)."""
    x = np.zeros((height, width, 3), np.uint8)
    x[..., 0] = np.arange(width)[None, :] % 256
    x[..., 1] = np.arange(height)[:, None] % 256
    return Image.fromarray(x)


def _unnormalize(x):
    return x * IMAGENET_STD + IMAGENET_MEAN


def test_normalisation_of_a_white_image(tmp_path):
    path = _save(tmp_path, "white.png", Image.new("RGB", (300, 300), (255, 255, 255)))
    x = load_image(path)
    assert x.shape == (227, 227, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], (1 - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-6)


@pytest.mark.parametrize("fit", images.FITS)
def test_every_fit_gives_size_by_size_for_a_large_photo(tmp_path, fit):
    path = _save(tmp_path, "big.png", _gradient(400, 300))
    assert load_image(path, 227, fit).shape == (227, 227, 3)


def test_crop_is_centred_and_unscaled(tmp_path):
    path = _save(tmp_path, "big.png", _gradient(250, 240))
    x = _unnormalize(load_image(path, 227, "crop"))
    # torchvision's offsets: round((250 - 227) / 2) = 12 columns, round(13 / 2) = 6 rows.
    assert round(x[0, 0, 0] * 255) == 12 and round(x[0, 0, 1] * 255) == 6
    assert round(x[0, 1, 0] * 255) == 13  # neighbours differ by one: no resampling


def test_crop_keeps_a_smaller_image_whole(tmp_path):
    path = _save(tmp_path, "small.png", _gradient(100, 80))
    assert load_image(path, 227, "crop").shape == (80, 100, 3)


def test_pad_centres_and_pads_with_zeros(tmp_path):
    path = _save(tmp_path, "small.png", Image.new("RGB", (100, 81), (255, 0, 0)))
    x = load_image(path, 227, "pad")
    assert x.shape == (227, 227, 3)
    # (227 - 100) = 127 columns: 63 left, 64 right; (227 - 81) = 146 rows: 73 top, 73 bottom.
    assert np.all(x[:, :63] == 0) and np.all(x[:, 163:] == 0)
    assert np.all(x[:73] == 0) and np.all(x[154:] == 0)
    assert np.all(x[73:154, 63:163, 0] > 2)  # the red image itself


def test_resize_scales_the_short_side(tmp_path):
    path = _save(tmp_path, "small.png", Image.new("RGB", (90, 60), (0, 0, 255)))
    x = load_image(path, 227, "resize")
    assert x.shape == (227, 227, 3)
    np.testing.assert_allclose(_unnormalize(x)[100, 100], [0, 0, 1], atol=1e-5)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "1", "CMYK", "I;16"])
def test_colour_modes_become_rgb(tmp_path, mode):
    img = Image.new("RGB", (80, 70), (200, 200, 200)).convert(mode)
    ext = "tiff" if mode in ("CMYK", "I;16") else "png"
    x = load_image(_save(tmp_path, f"img.{ext}", img), 64)
    assert x.shape == (64, 64, 3)
    rgb = _unnormalize(x)
    assert np.ptp(rgb[..., :], axis=-1).max() < 0.02  # grey stays grey in all 3 channels


def test_rgba_drops_alpha(tmp_path):
    img = Image.new("RGBA", (70, 70), (255, 0, 0, 0))  # fully transparent red
    rgb = _unnormalize(load_image(_save(tmp_path, "a.png", img), 64))
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0], atol=1e-5)


def test_exif_orientation_is_honoured(tmp_path):
    img = _gradient(120, 80)  # landscape as stored
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the photo is portrait
    path = _save(tmp_path, "rotated.jpg", img, exif=exif, quality=95)
    assert images.read_rgb(path).shape == (120, 80, 3)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", b"\x89PNG\r\n\x1a\n garbage"])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="fake.jpg"):
        load_image(path)


def test_truncated_file(tmp_path):
    full = _save(tmp_path, "full.jpg", _gradient(300, 300), quality=90).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[: len(full) // 3])
    with pytest.raises(ImageError, match="truncated"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such image"):
        load_image(tmp_path / "nope.png")


def test_too_small_for_crop_but_fine_padded(tmp_path):
    path = _save(tmp_path, "tiny.png", Image.new("RGB", (200, 62)))
    with pytest.raises(ImageTooSmallError, match="--fit pad"):
        load_image(path, 227, "crop")
    assert load_image(path, 227, "pad").shape == (227, 227, 3)
    ok = _save(tmp_path, "edge.png", Image.new("RGB", (63, 63)))
    assert load_image(ok, 227, "crop").shape == (63, 63, 3)


def test_decompression_bomb_limit_is_honoured(tmp_path, monkeypatch):
    path = _save(tmp_path, "bomb.png", Image.new("RGB", (100, 100)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 10,000 px: over the limit, < 2x
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # > 2x: PIL's own error
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(path)


def test_bad_fit_and_size(tmp_path):
    path = _save(tmp_path, "img.png", Image.new("RGB", (100, 100)))
    with pytest.raises(ImageError, match="unknown fit"):
        load_image(path, 227, "stretch")
    with pytest.raises(ImageTooSmallError):
        load_image(path, 62, "resize")
