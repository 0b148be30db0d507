"""safetensors files from numpy arrays and back, BF16 and FP8 (E4M3) included.

The format: 8 bytes little-endian header length N, N bytes of JSON (name -> dtype, shape,
data_offsets relative to the data buffer), then the data. torch 1.13 (Debian's) has no float8 and
no safetensors package here, so both directions are done by hand: BF16 is the top half of a
float32, rounded to nearest even; E4M3 (OCP's FN variant: no infinities, max 448) is rounded to
the nearest of its 256 codes, ties to even.
"""

import json
import struct

import numpy as np


def f32_to_bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even (finite inputs)
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def _e4m3_values():
    """The float value of every E4M3FN code (NaN for 0x7F and 0xFF)."""
    vals = np.zeros(256, dtype=np.float64)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exp, man = (code >> 3) & 0xF, code & 0x7
        if exp == 0xF and man == 0x7:
            vals[code] = np.nan
        elif exp == 0:
            vals[code] = sign * man / 8.0 * 2.0 ** -6  # subnormal
        else:
            vals[code] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return vals


E4M3_VALUES = _e4m3_values()
E4M3_MAX = 448.0
# Non-negative finite codes in increasing value (codes 0x00..0x7E are already in order).
_POS_CODES = np.arange(0x7F, dtype=np.uint8)
_POS_VALUES = E4M3_VALUES[:0x7F]


def f32_to_e4m3(x):
    """Nearest E4M3 code of each value, ties to the even code; |x| is clamped to 448."""
    x = np.asarray(x, dtype=np.float64)
    a = np.minimum(np.abs(x), E4M3_MAX)
    hi = np.clip(np.searchsorted(_POS_VALUES, a, side="left"), 0, len(_POS_VALUES) - 1)
    lo = np.maximum(hi - 1, 0)
    d_lo, d_hi = a - _POS_VALUES[lo], _POS_VALUES[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (_POS_CODES[hi] % 2 == 0))
    code = np.where(pick_hi, _POS_CODES[hi], _POS_CODES[lo]).astype(np.uint8)
    return np.where((x < 0) & (code != 0), code | 0x80, code).astype(np.uint8)


def quantize_blocks(w, block=128):
    """DeepSeek's FP8 weights: per block x block tile, scale = amax / 448 and q = e4m3(w / scale).
    Returns (codes uint8 [O, I], weight_scale_inv float32 [ceil(O/b), ceil(I/b)])."""
    O, I = w.shape
    so, si = -(-O // block), -(-I // block)
    scales = np.ones((so, si), dtype=np.float32)
    for r in range(so):
        for c in range(si):
            amax = float(np.abs(w[r * block:(r + 1) * block, c * block:(c + 1) * block]).max())
            scales[r, c] = amax / E4M3_MAX if amax > 0 else 1.0
    full = np.repeat(np.repeat(scales, block, 0), block, 1)[:O, :I]
    return f32_to_e4m3(w / full), scales


def dequantize_blocks(codes, scales, block=128):
    O, I = codes.shape
    full = np.repeat(np.repeat(scales, block, 0), block, 1)[:O, :I]
    return (E4M3_VALUES[codes] * full).astype(np.float32)


_DTYPES = {"F32": (np.float32, 4), "BF16": (np.uint16, 2), "F8_E4M3": (np.uint8, 1)}


def write(path, tensors, metadata=None):
    """tensors: name -> (dtype name, numpy array of the raw storage: float32, uint16 bits, uint8 codes)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, arr = tensors[name]
        raw = np.ascontiguousarray(arr, dtype=_DTYPES[dtype][0]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data buffer starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def read(path):
    """name -> (dtype name, numpy array of the raw storage)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        np_dtype, _ = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], np.frombuffer(data[b:e], dtype=np_dtype).reshape(info["shape"]))
    return out


def as_f32(dtype, arr):
    if dtype == "F32":
        return arr.astype(np.float32)
    if dtype == "BF16":
        return bf16_bits_to_f32(arr)
    raise ValueError(f"{dtype} needs its scales: use dequantize_blocks")
