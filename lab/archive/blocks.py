"""Low-level HDF5: datasets with units, growing datasets, buffered block writes, h5clear.

The writer buffers rows in memory and writes them in blocks at each commit: a block write
is far cheaper than a per-row write, and nothing is durable before a flush anyway.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from typing import Any, Mapping

import h5py
import numpy as np

# --------------------------------------------------------------------------- creating datasets


def dataset(group: h5py.Group, name: str, *, units: str, long_name: str, **kw: Any) -> h5py.Dataset:
    ds = group.create_dataset(name, **kw)
    ds.attrs["units"] = units
    ds.attrs["long_name"] = long_name
    return ds


def text(group: h5py.Group, name: str, value: str, long_name: str) -> h5py.Dataset:
    return dataset(group, name, units="", long_name=long_name, data=value)


def nx_group(parent: h5py.Group, name: str, nx_class: str, **attrs: Any) -> h5py.Group:
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    for k, v in attrs.items():
        g.attrs[k] = v
    return g


def chunk_rows(row_bytes: int, target: int = 65536) -> int:
    return max(1, min(4096, target // max(1, row_bytes)))


def growing(group: h5py.Group, name: str, row_shape: tuple[int, ...], dtype: Any, *,
            units: str, long_name: str, rows_per_chunk: int | None = None) -> h5py.Dataset:
    """An empty dataset of rows of ``row_shape`` that grows along its first axis."""
    dtype = np.dtype(dtype)
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
    # Big rows (a 35x35 matrix) get one chunk each, so a few rows per commit can go in
    # with write_direct_chunk; small rows share chunks so the chunk index stays small.
    rows = rows_per_chunk or (1 if row_bytes >= 4096 else chunk_rows(row_bytes))
    return dataset(
        group, name, units=units, long_name=long_name, shape=(0, *row_shape),
        maxshape=(None, *row_shape), chunks=(rows, *row_shape), dtype=dtype,
    )


def fixed_string(value: str, nbytes: int) -> np.bytes_:
    """``value`` as UTF-8 cut to ``nbytes`` (ending in ``...`` when cut)."""
    raw = value.encode("utf-8")
    if len(raw) > nbytes:
        raw = raw[: nbytes - 3].decode("utf-8", "ignore").encode("utf-8") + b"..."
    return np.bytes_(raw)


# --------------------------------------------------------------------------- block writes


def write_block(dsid: h5py.h5d.DatasetID, start: int, block: np.ndarray) -> None:
    """Grow the dataset and write ``block`` (rows x row shape) at row ``start``.

    The low-level API: h5py's ``ds.resize`` + ``ds[a:b] = x`` spend ~0.7 ms per call on
    selections and dtype checks, which made a commit of a dozen datasets cost milliseconds.
    """
    k = block.shape[0]
    dsid.set_extent((start + k, *block.shape[1:]))
    fspace = dsid.get_space()
    fspace.select_hyperslab((start,) + (0,) * (block.ndim - 1), block.shape)
    dsid.write(h5py.h5s.create_simple(block.shape), fspace, block)


class BufferedColumn:
    """One growing dataset whose rows are buffered until the next commit."""

    def __init__(self, ds: h5py.Dataset, rows: int, direct: bool):
        self.id = ds.id
        self.dtype = ds.dtype
        self.row_shape = ds.shape[1:]
        self.rows = rows  # rows on disk (written, maybe not yet committed)
        self.pending: list[Any] = []
        # write_direct_chunk skips even the low-level selection (fastest for a few big
        # rows) but needs one row per chunk, no filter and the exact on-disk dtype.
        self.direct = direct and ds.chunks is not None and ds.chunks[0] == 1 and ds.compression is None

    def write(self) -> None:
        k = len(self.pending)
        if not k:
            return
        # Measured: per-row direct chunks beat one block write up to a few tens of rows.
        if self.direct and k <= 32:
            self.id.set_extent((self.rows + k, *self.row_shape))
            zeros = (0,) * len(self.row_shape)
            for i, row in enumerate(self.pending):
                data = np.ascontiguousarray(row, dtype=self.dtype)
                self.id.write_direct_chunk((self.rows + i, *zeros), data.tobytes())
        else:
            block = np.array(self.pending, dtype=self.dtype)
            write_block(self.id, self.rows, np.ascontiguousarray(block))
        self.rows += k
        self.pending.clear()


class BufferedTable:
    """Datasets appended together; their common row count is one commit counter."""

    def __init__(self, columns: Mapping[str, h5py.Dataset], committed: int, direct: bool):
        self.columns = {name: BufferedColumn(ds, committed, direct) for name, ds in columns.items()}
        self.committed = committed
        self.count = committed  # rows appended so far, committed or not

    def append(self, **row: Any) -> int:
        for name, col in self.columns.items():
            col.pending.append(row[name])
        self.count += 1
        return self.count - 1

    def write(self) -> None:
        for col in self.columns.values():
            col.write()


class ByteStream:
    """``/entry/log/json``: concatenated UTF-8 texts addressed by (offset, length)."""

    def __init__(self, ds: h5py.Dataset, committed: int):
        self.id = ds.id
        self.rows = committed
        self.committed = committed
        self.count = committed
        self.pending = bytearray()

    def append(self, text: str) -> tuple[int, int]:
        raw = text.encode("utf-8")
        offset = self.count
        self.pending += raw
        self.count += len(raw)
        return offset, len(raw)

    def write(self) -> None:
        if not self.pending:
            return
        block = np.frombuffer(self.pending, dtype=np.uint8).copy()
        write_block(self.id, self.rows, block)
        self.rows += block.size
        self.pending.clear()


# --------------------------------------------------------------------------- h5clear -s


def _hdf5_library() -> ctypes.CDLL:
    base = os.path.dirname(h5py.__file__)
    candidates = glob.glob(base + ".libs/libhdf5-*.so*") + glob.glob(os.path.join(base, ".dylibs", "libhdf5*.dylib"))
    candidates = [c for c in candidates if "hdf5_hl" not in c]
    if not candidates:
        found = ctypes.util.find_library("hdf5")
        if not found:
            raise OSError("cannot locate the HDF5 library h5py uses (needed to clear a crashed file's flags)")
        candidates = [found]
    return ctypes.CDLL(candidates[0])


def clear_status_flags(path: str | os.PathLike[str]) -> None:
    """What ``h5clear -s`` does: forget that a crashed writer had the file open.

    HDF5 still refuses it if a live process holds the file's lock, so this cannot
    steal a file from a running writer.
    """
    lib = _hdf5_library()
    lib.H5Pset.argtypes = [ctypes.c_int64, ctypes.c_char_p, ctypes.c_void_p]
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    on = ctypes.c_bool(True)
    if lib.H5Pset(fapl.id, b"clear_status_flags", ctypes.byref(on)) < 0:
        raise OSError("this HDF5 library does not support clearing status flags")
    h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR, fapl=fapl).close()
