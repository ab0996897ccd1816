"""Image files -> AlexNet inputs (Problem 4.2): float32[S, S, 3], ImageNet-normalised, NHWC.

    x = load_image("photo.jpg")                       # [227, 227, 3], centre crop
    x = load_image("photo.jpg", 224, fit="resize")    # short side -> 224, then centre crop
    rgb = denormalize(x)                              # back to [0, 1] RGB, for imshow

Fits (how a photo of any size becomes S x S):
  crop    centre-crop to S x S without scaling; an axis shorter than S is kept whole (the
          network takes any size >= 63 thanks to its adaptive pool), so the result may be
          smaller than S x S. Pixels keep their scale: conv1 sees the photo as it is.
  pad     centre-crop axes longer than S, zero-pad axes shorter than S: always S x S. The
          padding is zero *after* normalisation, i.e. the ImageNet mean colour: the same
          "no signal" value the convolutions' own padding uses.
  resize  scale the short side to S (bilinear, antialiased), then centre-crop: S x S, the
          whole photo's content (torchvision's Resize + CenterCrop recipe).

Every failure to produce an input (not an image, truncated, too small, decompression bomb, an
unsupported pixel format) raises `ImageError` naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hw5jax.errors import ImageError, ImageTooSmallError
from hw5jax.models.alexnet import MIN_INPUT_SIZE

Fit = Literal["crop", "pad", "resize"]
FITS: tuple[str, ...] = ("crop", "pad", "resize")
DEFAULT_SIZE = 227

# ImageNet's per-channel RGB statistics (torchvision's pretrained models expect these).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into float32[H, W, 3] RGB in [0, 1], upright (EXIF orientation
    applied). Grayscale becomes 3 equal channels; alpha is dropped; 16-bit is scaled by 65535.

    PIL's decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`) is honoured as an error,
    not the warning PIL gives below twice the limit.
    """
    path = Path(path)
    return _to_rgb_array(_decode(path), path)


def _decode(path: Path) -> Image.Image:
    """The decoded, upright image (ImageError for anything that is not one)."""
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Our own file object: the decoded image stays usable once it is closed.
            with open(path, "rb") as f:
                img = Image.open(f)
                img.load()  # decode now: a truncated file fails here, not later
            ImageOps.exif_transpose(img, in_place=True)  # not a copy of a large image
            return img
    except MemoryError as err:
        raise ImageError(f"{path}: too large to decode in memory") from err
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise ImageError(
            f"{path}: too many pixels, possible decompression bomb ({err}); raise "
            "PIL.Image.MAX_IMAGE_PIXELS if the file is trusted"
        ) from err
    except UnidentifiedImageError as err:
        raise ImageError(f"{path}: not an image file PIL can read") from err
    except (OSError, SyntaxError, ValueError) as err:  # PIL's decoders raise all three
        if isinstance(err, ImageError):
            raise
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImageError(f"{path}: cannot decode image ({detail}); is it truncated?") from err


def _to_rgb_array(img: Image.Image, path: Path) -> np.ndarray:
    if img.mode.startswith("I;16"):  # 16-bit grayscale: keep its precision
        gray = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(gray[..., None], 3, axis=-1)
    if img.mode in ("I", "F"):  # 32-bit data (scientific, depth maps): no agreed scale
        raise ImageError(
            f"{path}: {img.mode!r} (32-bit) images are not supported; save it as 8-bit RGB"
        )
    # L, LA, P, PA, RGBA, CMYK, YCbCr, ... -> RGB (alpha dropped: the colour underneath).
    rgb = img.convert("RGB")
    return np.asarray(rgb, dtype=np.float32) / 255.0


def normalize(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1]: float32[..., 3] -> (rgb - mean) / std, ImageNet's statistics."""
    return ((rgb - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def denormalize(x: np.ndarray) -> np.ndarray:
    """Inverse of `normalize`, clipped to [0, 1]: for showing a network input."""
    return np.clip(np.asarray(x) * IMAGENET_STD + IMAGENET_MEAN, 0.0, 1.0)


def _centre_crop(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop the centre height x width (each at most the image's own size); offsets rounded
    as torchvision's CenterCrop does."""
    h, w = x.shape[:2]
    height, width = min(height, h), min(width, w)
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return x[top : top + height, left : left + width]


def _resize_short_side(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    # Long side truncated, as torchvision's Resize(int) does.
    new_h, new_w = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    # One float32 ("F" mode) image per channel: no rounding to 8 bits.
    channels = [
        Image.fromarray(np.ascontiguousarray(rgb[..., c])).resize(
            (new_w, new_h), Image.Resampling.BILINEAR
        )
        for c in range(3)
    ]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=-1), 0.0, 1.0)


def fit_image(
    rgb: np.ndarray, size: int = DEFAULT_SIZE, fit: Fit = "crop", name: str = "image"
) -> np.ndarray:
    """RGB float32[H, W, 3] in [0, 1] -> normalised network input float32[h, w, 3] (see the
    module docstring for `fit`; h = w = size except for `crop` of a smaller image)."""
    _check_fit(size, fit, name)
    h, w = rgb.shape[:2]
    if fit == "resize":
        if min(h, w) < 1:
            raise ImageTooSmallError(f"{name}: empty image ({h}x{w})")
        return normalize(_centre_crop(_resize_short_side(rgb, size), size, size))
    x = normalize(_centre_crop(rgb, size, size))
    if fit == "pad":
        ph, pw = size - x.shape[0], size - x.shape[1]
        # Extra pixel on the bottom/right for odd padding, as torchvision's CenterCrop pads.
        return np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    if min(x.shape[:2]) < MIN_INPUT_SIZE:
        raise _too_small_for_crop(name, h, w)
    return x


def _check_fit(size: int, fit: str, name: str) -> None:
    if fit not in FITS:
        raise ImageError(f"{name}: unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    if size < MIN_INPUT_SIZE:
        raise ImageTooSmallError(f"size {size} is below AlexNet's minimum input {MIN_INPUT_SIZE}")


def _too_small_for_crop(name: str, h: int, w: int) -> ImageTooSmallError:
    return ImageTooSmallError(
        f"{name}: {h}x{w} pixels is smaller than AlexNet's minimum {MIN_INPUT_SIZE}x"
        f"{MIN_INPUT_SIZE} for --fit crop; use --fit pad or --fit resize"
    )


# Above this many pixels, `resize` first shrinks the photo by an integer factor (a box
# filter, in its own bit depth) to a short side of at least 4 x size: the float32 copy of an
# 80-megapixel image alone would take a gigabyte. Ordinary photos are resized exactly.
RESIZE_PREREDUCE_PIXELS = 16_000_000


# Photos that ship with the libraries, named `sample:NAME` on the command line: matplotlib's
# (installed with hw5jax) and scikit-image's (the test extra).
SAMPLES = {
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "chelsea": ("skimage", "chelsea.png"),
    "coffee": ("skimage", "coffee.png"),
    "astronaut": ("skimage", "astronaut.png"),
}
SAMPLE_PREFIX = "sample:"


def resolve(path: str | os.PathLike) -> Path:
    """`path`, or for `sample:NAME` (one of SAMPLES) the bundled photo's file. ImageError for
    an unknown name, or one whose library is not installed."""
    text = str(path)
    if not text.startswith(SAMPLE_PREFIX):
        return Path(path)
    name = text[len(SAMPLE_PREFIX) :]
    if name not in SAMPLES:
        raise ImageError(f"{text}: no such sample photo (samples: {', '.join(SAMPLES)})")
    library, file = SAMPLES[name]
    try:
        if library == "matplotlib":
            from matplotlib import cbook

            return Path(cbook.get_sample_data(file, asfileobj=False))
        import skimage.data

        return Path(skimage.data.__file__).parent / file
    except ImportError:
        raise ImageError(
            f"{text}: needs {library} (pip install scikit-image, or make setup)"
        ) from None


def load_image(path: str | os.PathLike, size: int = DEFAULT_SIZE, fit: Fit = "crop") -> np.ndarray:
    """Image file (or `sample:NAME`, see `resolve`) -> float32[size, size, 3] network input
    (ImageNet-normalised RGB, NHWC without the batch axis); smaller than size x size only for
    `crop` of a smaller image. Raises ImageError (ImageTooSmallError below 63 px with `crop`).

    Only the pixels the fit uses are converted to float: `crop` and `pad` cut the decoded
    image first (the same centre box), so a large photo costs its decoded size, not 4x it.
    """
    path = resolve(path)
    _check_fit(size, fit, str(path))
    img = _decode(path)
    w, h = img.size
    if fit in ("crop", "pad"):
        if fit == "crop" and min(h, w) < MIN_INPUT_SIZE:
            raise _too_small_for_crop(str(path), h, w)
        height, width = min(size, h), min(size, w)  # the box _centre_crop would cut
        top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
        if (height, width) != (h, w):
            img = img.crop((left, top, left + width, top + height))
        return fit_image(_to_rgb_array(img, path), size, fit, name=str(path))
    factor = min(w, h) // (4 * size)
    if w * h > RESIZE_PREREDUCE_PIXELS and factor > 1:
        img = img.reduce(factor)
    return fit_image(_to_rgb_array(img, path), size, fit, name=str(path))
