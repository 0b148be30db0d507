"""Minimal safetensors reader in numpy, for the independent reference.

File format (one file):
    bytes [0, 8)        header length N, unsigned 64-bit little-endian
    bytes [8, 8+N)      JSON object: name -> {"dtype", "shape", "data_offsets": [begin, end]},
                        plus an optional "__metadata__" entry (ignored here)
    bytes [8+N, ...)    the data buffer; data_offsets are relative to its start

A sharded checkpoint has model.safetensors.index.json whose "weight_map" maps each tensor
name to the shard file that holds it.

Supported dtypes: F32, F16, BF16, F8_E4M3 (plus F64 and the integer types). Every floating
dtype but F64 is returned decoded to float32 (F64 stays float64). F8_E4M3 is decoded by arithmetic, not through
torch (torch 1.13 has no float8).
"""

import json
import os
import struct

import numpy as np

# dtype name -> (bytes per element, numpy dtype of the raw storage)
_RAW = {
    "F64": (8, np.dtype("<f8")),
    "F32": (4, np.dtype("<f4")),
    "F16": (2, np.dtype("<f2")),
    "BF16": (2, np.dtype("<u2")),
    "F8_E4M3": (1, np.dtype("u1")),
    "I64": (8, np.dtype("<i8")),
    "I32": (4, np.dtype("<i4")),
    "I16": (2, np.dtype("<i2")),
    "I8": (1, np.dtype("i1")),
    "U8": (1, np.dtype("u1")),
    "BOOL": (1, np.dtype("u1")),
}


class SafetensorsError(ValueError):
    pass


# ----------------------------------------------------------------------------- dtype decoding

def bf16_to_f32(raw_u16):
    """BF16 is the top half of an IEEE float32: widen by shifting the bits left by 16."""
    raw_u16 = np.asarray(raw_u16, dtype=np.uint16)
    return (raw_u16.astype(np.uint32) << np.uint32(16)).view(np.float32)


def _e4m3fn_table():
    """float32 value of each of the 256 E4M3FN bytes.

    Layout: s eeee mmm, exponent bias 7. e == 0 is subnormal: (m/8) * 2^(1-7).
    Otherwise (1 + m/8) * 2^(e-7). The 'FN' variant has no infinities; only
    s 1111 111 (0x7f, 0xff) is NaN, so 0x7e = 1.75 * 2^8 = 448 is the largest finite value.
    """
    b = np.arange(256, dtype=np.int64)
    sign = np.where(b >> 7 == 1, -1.0, 1.0)
    e = (b >> 3) & 0xF
    m = (b & 0x7).astype(np.float64)
    magnitude = np.where(e == 0,
                         (m / 8.0) * 2.0 ** -6,
                         (1.0 + m / 8.0) * np.power(2.0, (e - 7).astype(np.float64)))
    value = sign * magnitude
    value[(b & 0x7F) == 0x7F] = np.nan
    return value.astype(np.float32)


E4M3FN_TABLE = _e4m3fn_table()


def e4m3_to_f32(raw_u8):
    return E4M3FN_TABLE[np.asarray(raw_u8, dtype=np.uint8)]


def decode(dtype, raw):
    """Raw storage array -> float32 (float64 for F64), integer arrays as they are."""
    if dtype == "BF16":
        return bf16_to_f32(raw)
    if dtype == "F8_E4M3":
        return e4m3_to_f32(raw)
    if dtype in ("F16", "F32"):
        return raw.astype(np.float32)
    if dtype == "F64":
        return raw.astype(np.float64)
    return raw


# ----------------------------------------------------------------------------- files

class SafetensorsFile:
    """One .safetensors file. Header parsed and checked on open; data read on demand."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise SafetensorsError(f"{path}: file shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise SafetensorsError(f"{path}: header length {n} runs past the end of the file ({size} bytes)")
            try:
                header = json.loads(f.read(n).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise SafetensorsError(f"{path}: header is not valid JSON: {err}") from None
        if not isinstance(header, dict):
            raise SafetensorsError(f"{path}: header is not a JSON object")
        self.data_start = 8 + n
        data_size = size - self.data_start
        self.tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            self.tensors[name] = self._check_entry(name, info, data_size)

    def _check_entry(self, name, info, data_size):
        where = f"{self.path}: tensor '{name}'"
        try:
            dtype = info["dtype"]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{where}: entry lacks dtype/shape/data_offsets") from None
        if dtype not in _RAW:
            raise SafetensorsError(f"{where}: unsupported dtype {dtype}")
        if any(d < 0 for d in shape):
            raise SafetensorsError(f"{where}: negative dimension in shape {shape}")
        itemsize = _RAW[dtype][0]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= begin <= end <= data_size:
            raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] outside the data buffer of {data_size} bytes")
        if end - begin != count * itemsize:
            raise SafetensorsError(f"{where}: {end - begin} bytes for shape {shape} of {dtype} ({count * itemsize} expected)")
        return {"dtype": dtype, "shape": shape, "begin": begin, "end": end}

    def names(self):
        return list(self.tensors)

    def info(self, name):
        return self.tensors[name]

    def raw(self, name):
        """The stored elements, undecoded, as a numpy array of the storage dtype."""
        t = self.tensors[name]
        with open(self.path, "rb") as f:
            f.seek(self.data_start + t["begin"])
            buf = f.read(t["end"] - t["begin"])
        return np.frombuffer(buf, dtype=_RAW[t["dtype"]][1]).reshape(t["shape"])

    def get(self, name):
        """The tensor decoded to float32 (floating dtypes)."""
        return decode(self.tensors[name]["dtype"], self.raw(name))


class Checkpoint:
    """A model directory: model.safetensors.index.json (sharded) or the .safetensors files in it."""

    def __init__(self, model_dir):
        self.dir = model_dir
        self.files = {}
        self.where = {}  # tensor name -> SafetensorsFile
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
            for name, shard in weight_map.items():
                sf = self._open(shard)
                if name not in sf.tensors:
                    raise SafetensorsError(f"{sf.path}: index names tensor '{name}' but the shard lacks it")
                self.where[name] = sf
        else:
            shards = sorted(p for p in os.listdir(model_dir) if p.endswith(".safetensors"))
            if not shards:
                raise SafetensorsError(f"{model_dir}: no .safetensors file and no model.safetensors.index.json")
            for shard in shards:
                sf = self._open(shard)
                for name in sf.tensors:
                    if name in self.where:
                        raise SafetensorsError(f"{sf.path}: tensor '{name}' also in {self.where[name].path}")
                    self.where[name] = sf

    def _open(self, shard):
        if shard not in self.files:
            self.files[shard] = SafetensorsFile(os.path.join(self.dir, shard))
        return self.files[shard]

    def __contains__(self, name):
        return name in self.where

    def names(self):
        return list(self.where)

    def dtype(self, name):
        return self.where[name].info(name)["dtype"]

    def shape(self, name):
        return tuple(self.where[name].info(name)["shape"])

    def raw(self, name):
        return self.where[name].raw(name)

    def get(self, name):
        if name not in self.where:
            raise SafetensorsError(f"{self.dir}: missing tensor '{name}'")
        return self.where[name].get(name)
