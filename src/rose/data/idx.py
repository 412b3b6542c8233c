"""Full MNIST and Fashion-MNIST from their four IDX files, found offline first and verified.

Where the files come from (the first that applies is used; sources are never mixed):

1. ``data.idx_dir``: a folder named in the config holding the four ``*-idx?-ubyte`` files,
   gzip-compressed (``.gz``) or not. Set but incomplete is an error, not a fall-through.
2. The Debian package's folder: ``dataset-fashion-mnist`` installs
   /usr/share/datasets/fashion-mnist (``make install`` installs it where it can); for MNIST
   /usr/share/datasets/mnist is looked at too, in case a package provides it.
3. The official hosts, through :func:`rose.data.download.fetch` behind ``data.allow_download``
   into ``download_dir`` (files already there are used without the network, as before).

Every file is verified before anything is returned. Fashion-MNIST: the MD5 of the
*uncompressed* bytes (Debian re-compressed the upstream .gz files, so their .gz MD5 differs
while the data is the same; the values below were measured on the package's files and match
the raw MD5s upstream loaders list). MNIST: its uncompressed MD5s are not verified here, so a
.gz file is checked against the official .gz MD5 and an uncompressed one is refused. A missing,
truncated or altered file raises :class:`DatasetFileError` naming the file and the fix.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rose.data.download import (
    FASHION_URL,
    IDX_FILES,
    MNIST_URL,
    SWITCH,
    DatasetFileError,
    OfflineDatasetError,
    fetch,
    parse_idx,
)

IDX_DIR_KEY = "data.idx_dir"
NAMES = ("mnist", "fashion_mnist")

# The four files of LeCun's IDX release (http://yann.lecun.com/exdb/mnist/), which
# Fashion-MNIST copies name for name: part -> file stem (without .gz).
STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# MD5 of the uncompressed files (measured with `zcat FILE | md5sum` on Debian's
# dataset-fashion-mnist 0.0~git20200523.55506a9-1; the same as upstream's raw-file MD5s).
RAW_MD5: dict[str, dict[str, str]] = {
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
# MD5 of the official .gz files (rose.data.download.IDX_FILES), keyed by stem.
GZ_MD5: dict[str, dict[str, str]] = {
    name: {fname.removesuffix(".gz"): md5 for fname, md5 in files.items()}
    for name, files in IDX_FILES.items()
}
URLS = {"mnist": MNIST_URL, "fashion_mnist": FASHION_URL}
PACKAGE_DIRS: dict[str, Path] = {
    "fashion_mnist": Path("/usr/share/datasets/fashion-mnist"),
    "mnist": Path("/usr/share/datasets/mnist"),
}
PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}


@dataclass(frozen=True)
class IdxSource:
    """Where the files were read: ``kind`` is "idx_dir", "package" or "download"."""

    kind: str
    directory: Path
    label: str      # what the manifest records as the dataset's source


@dataclass(frozen=True)
class IdxData:
    """The official train and test parts as stored (uint8 images N x 28 x 28, uint8 labels)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: IdxSource
    files: dict[str, dict[str, str]]   # stem -> {"path", "md5", "md5_of"}


def _md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


def _package_label(name: str, directory: Path) -> str:
    pkg = PACKAGES.get(name)
    return f"Debian package {pkg} ({directory})" if pkg else f"package directory {directory}"


def resolve_source(name: str, idx_dir: str | Path | None, download_dir: Path,
                   allow_download: bool, package_dirs: Mapping[str, Path] | None = None
                   ) -> IdxSource:
    """The first source that applies: ``idx_dir``, the package folder, then the download cache.

    Offline with none of them present, fail here, naming every way to provide the files."""
    if idx_dir:
        return IdxSource("idx_dir", Path(idx_dir), f"{IDX_DIR_KEY} {Path(idx_dir)}")
    pkg_dir = (PACKAGE_DIRS if package_dirs is None else package_dirs).get(name)
    if pkg_dir is not None and Path(pkg_dir).is_dir():
        return IdxSource("package", Path(pkg_dir), _package_label(name, Path(pkg_dir)))
    cache = Path(download_dir) / name
    cached = all((cache / f"{stem}.gz").exists() for stem in STEMS.values())
    if not allow_download and not cached:
        pkg = PACKAGES.get(name)
        install = f", install the Debian package {pkg}" if pkg else ""
        raise OfflineDatasetError(
            f"{name}: no IDX files found. `{IDX_DIR_KEY}` is not set, "
            f"{pkg_dir or 'no package folder'} does not exist, and `{SWITCH}` is off with "
            f"nothing in {cache}. Set `{IDX_DIR_KEY}` to a folder holding the four "
            f"*-idx?-ubyte(.gz) files{install}, or set `{SWITCH}: true` (needs internet)."
        )
    return IdxSource("download", cache, URLS[name])


def _hint(name: str, source: IdxSource) -> str:
    """What to do about a bad file from ``source``."""
    if source.kind == "package" and name in PACKAGES:
        return (f"reinstall with `apt-get install --reinstall {PACKAGES[name]}`, set "
                f"`{IDX_DIR_KEY}` to a folder with the official files, or enable `{SWITCH}`")
    if source.kind == "download":
        return (f"delete it so it is downloaded again (`{SWITCH}: true`), or set "
                f"`{IDX_DIR_KEY}` to a folder with the official files")
    return (f"replace it with the official file, point `{IDX_DIR_KEY}` at a folder with the "
            f"official files, or enable `{SWITCH}`")


def _find(directory: Path, stem: str) -> Path | None:
    """``stem.gz`` or the uncompressed ``stem`` in ``directory`` (the .gz first)."""
    for path in (directory / f"{stem}.gz", directory / stem):
        if path.is_file():
            return path
    return None


def locate(name: str, source: IdxSource, allow_download: bool,
           gz_md5: Mapping[str, Mapping[str, str]] = GZ_MD5,
           urlopen: Callable = urllib.request.urlopen) -> dict[str, Path]:
    """The path of every file (stem -> path); downloads them for a "download" source."""
    paths = {}
    for stem in STEMS.values():
        if source.kind == "download":
            paths[stem] = fetch(URLS[name] + f"{stem}.gz", source.directory / f"{stem}.gz",
                                gz_md5[name][stem], allow_download, urlopen)
            continue
        path = _find(source.directory, stem)
        if path is None:
            raise DatasetFileError(
                f"{source.directory / stem}.gz (or uncompressed {stem}) is missing from "
                f"{source.label}: {_hint(name, source)}"
            )
        paths[stem] = path
    return paths


def _decompress(path: Path, blob: bytes, hint: str) -> bytes:
    if path.suffix != ".gz":
        return blob
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as err:   # BadGzipFile is an OSError
        raise DatasetFileError(f"{path} is truncated or corrupt (gzip: {err}): {hint}") from err


def read_verified(path: Path, name: str, stem: str, hint: str,
                  raw_md5: Mapping[str, Mapping[str, str]] = RAW_MD5,
                  gz_md5: Mapping[str, Mapping[str, str]] = GZ_MD5
                  ) -> tuple[np.ndarray, dict[str, str]]:
    """Parse one IDX file after checking it; return the array and what was verified."""
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise DatasetFileError(f"{path} cannot be read ({err}): {hint}") from err
    raw = _decompress(path, blob, hint)
    try:
        array = parse_idx(raw)
    except (ValueError, IndexError) as err:
        raise DatasetFileError(f"{path} is not a complete IDX file ({err}): {hint}") from err
    if stem in raw_md5.get(name, {}):
        expected, got, of = raw_md5[name][stem], _md5(raw), "uncompressed"
    elif path.suffix == ".gz" and stem in gz_md5.get(name, {}):
        expected, got, of = gz_md5[name][stem], _md5(blob), "gz"
    else:
        raise DatasetFileError(
            f"{path}: no verified MD5 of the uncompressed {name} file is known, so it cannot be "
            f"checked; use the official {stem}.gz instead ({hint})"
        )
    if got != expected:
        raise DatasetFileError(
            f"{path} has MD5 {got} ({of} bytes), expected {expected}: the file is altered or "
            f"incomplete; {hint}"
        )
    return array, {"path": str(path), "md5": got, "md5_of": of}


def _check_pair(images: np.ndarray, labels: np.ndarray, paths: tuple[Path, Path], hint: str
                ) -> None:
    """Images (N x H x W) and labels (N) of one part belong together."""
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetFileError(
            f"{paths[0]} ({images.shape}) and {paths[1]} ({labels.shape}) do not match as "
            f"images and labels: {hint}"
        )


def load_idx(name: str, idx_dir: str | Path | None = None, download_dir: str | Path = "data/raw",
             allow_download: bool = False, *,
             raw_md5: Mapping[str, Mapping[str, str]] = RAW_MD5,
             gz_md5: Mapping[str, Mapping[str, str]] = GZ_MD5,
             package_dirs: Mapping[str, Path] | None = None,
             urlopen: Callable = urllib.request.urlopen) -> IdxData:
    """MNIST or Fashion-MNIST (``name``): the official 60,000 training and 10,000 test images,
    every file verified before anything is returned (so a bad file writes nothing)."""
    if name not in NAMES:
        raise ValueError(f"{name!r} is not an IDX dataset; known: {NAMES}")
    source = resolve_source(name, idx_dir, Path(download_dir), allow_download, package_dirs)
    paths = locate(name, source, allow_download, gz_md5, urlopen)
    hint = _hint(name, source)
    arrays, files = {}, {}
    for part, stem in STEMS.items():
        arrays[part], files[stem] = read_verified(paths[stem], name, stem, hint, raw_md5, gz_md5)
    for part in ("train", "test"):
        _check_pair(arrays[f"{part}_images"], arrays[f"{part}_labels"],
                    (paths[STEMS[f"{part}_images"]], paths[STEMS[f"{part}_labels"]]), hint)
    return IdxData(arrays["train_images"], arrays["train_labels"], arrays["test_images"],
                   arrays["test_labels"], source, files)
