"""Full-size datasets fetched from their official hosts, behind the ``data.allow_download`` switch.

Offline (the default, and the only mode on machines without internet) every loader fails at
once with :class:`OfflineDatasetError`, naming the switch. With the switch on, files are fetched
into ``cache_dir``, checked against their official MD5 and parsed without unpickling anything.
MNIST and Fashion-MNIST are read through :mod:`rose.data.idx`, which looks for the files
offline first (``data.idx_dir``, then Debian's package) and uses :func:`fetch` last.
"""

from __future__ import annotations

import hashlib
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

SWITCH = "data.allow_download"

# Official files and checksums (the same ones torchvision uses).
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
IDX_FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"


class OfflineDatasetError(RuntimeError):
    """A dataset needs the network but downloading is off or impossible."""


class DatasetFileError(ValueError):
    """A dataset file is missing, truncated or altered; the message names the file and the fix."""


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, md5: str, allow_download: bool,
          urlopen: Callable = urllib.request.urlopen) -> Path:
    """Return ``dest``, downloading ``url`` there first if it is missing; verify its MD5."""
    if not dest.exists():
        if not allow_download:
            raise OfflineDatasetError(
                f"{dest.name} is not in {dest.parent} and downloading is off. "
                f"Set `{SWITCH}: true` in the config (needs internet), or use a bundled "
                f"dataset (mnist5k, digits, synthetic)."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        try:
            with urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as err:
            tmp.unlink(missing_ok=True)
            raise OfflineDatasetError(
                f"could not download {url} ({err}). `{SWITCH}` is on but the network is "
                f"unreachable; turn it off and use a bundled dataset, or fetch the file by hand "
                f"into {dest.parent}."
            ) from err
        tmp.replace(dest)
    got = _md5(dest)
    if got != md5:
        raise DatasetFileError(
            f"{dest} has MD5 {got}, expected {md5}: delete it and download again")
    return dest


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format): magic 0x00 0x00 dtype ndim, big-endian dims."""
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"IDX payload has {data.size} bytes, header says {tuple(dims)}")
    return data.reshape(tuple(dims))


def load_cifar10(cache_dir: Path, allow_download: bool,
                 urlopen: Callable = urllib.request.urlopen) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from the official *binary* archive (records of 1 label byte + 3072 pixels)."""
    path = fetch(CIFAR10_URL, cache_dir / "cifar10" / "cifar-10-binary.tar.gz", CIFAR10_MD5,
                 allow_download, urlopen)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    records = []
    with tarfile.open(path, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        for n in names:
            buf = tar.extractfile(members[n]).read()
            records.append(np.frombuffer(buf, dtype=np.uint8).reshape(-1, 3073))
    rec = np.concatenate(records)
    X = (rec[:, 1:].reshape(-1, 3, 32, 32) / 255.0).astype(np.float32)
    return X, rec[:, 0].astype(np.int64)
