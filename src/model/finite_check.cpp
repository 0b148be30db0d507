#include "model/finite_check.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace dsinfer::model {

namespace {

// Whether any element of x[0, n) has all of `mask`'s bits set (an all-ones exponent, or e4m3's
// NaN pattern). Branch-free over a block so the compiler vectorises it; the caller looks for
// the exact index only in a block that has one. Elements are loaded with memcpy: a safetensors
// offset need not be aligned to the element size.
template <typename Bits>
bool any_masked(const uint8_t* x, int64_t n, Bits mask) {
  Bits hit = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits v;
    std::memcpy(&v, x + i * int64_t(sizeof(Bits)), sizeof v);
    hit |= Bits((v & mask) == mask);
  }
  return hit != 0;
}

template <typename Bits>
int64_t first_masked(const void* data, int64_t n, Bits mask) {
  constexpr int64_t kBlock = 4096;
  const auto* x = static_cast<const uint8_t*>(data);
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    if (!any_masked(x + b * int64_t(sizeof(Bits)), e - b, mask)) continue;
    for (int64_t i = b; i < e; ++i) {
      Bits v;
      std::memcpy(&v, x + i * int64_t(sizeof(Bits)), sizeof v);
      if ((v & mask) == mask) return i;
    }
  }
  return -1;
}

// The tensor of the checkpoint that holds p: only looked up to name a bad tensor.
const TensorInfo* tensor_at(const Checkpoint& ckpt, const void* p) {
  auto* b = static_cast<const uint8_t*>(p);
  for (const auto& [name, t] : ckpt.tensors())
    if (b >= t->data && b < t->data + t->nbytes) return t;
  return nullptr;
}

[[noreturn]] void refuse(const Checkpoint& ckpt, const void* base, int64_t index, size_t elem_bytes) {
  const uint8_t* at = static_cast<const uint8_t*>(base) + size_t(index) * elem_bytes;
  const TensorInfo* t = tensor_at(ckpt, at);
  if (!t) fail("a weight holds NaN or Inf (element ", index, "); the checkpoint is corrupt");
  fail(t->file, ": tensor ", t->name, " holds NaN or Inf (element ", int64_t(at - t->data) / int64_t(elem_bytes),
       "); the checkpoint is corrupt and every output would be NaN");
}

}  // namespace

int64_t first_non_finite(DType dtype, const void* data, int64_t n) {
  switch (dtype) {
    case DType::kF32: return first_masked(data, n, uint32_t(0x7f800000));
    case DType::kBF16: return first_masked(data, n, uint16_t(0x7f80));
    case DType::kF16: return first_masked(data, n, uint16_t(0x7c00));
    case DType::kF8E4M3: return first_masked(data, n, uint8_t(0x7f));
  }
  return -1;
}

void check_finite(const Checkpoint& ckpt, const kernels::WeightView& w) {
  const int64_t n = w.rows * w.cols;
  if (int64_t i = first_non_finite(w.dtype, w.data, n); i >= 0) refuse(ckpt, w.data, i, dtype_size(w.dtype));
  if (w.scale_inv) {
    const int64_t s = w.scale_bytes() / int64_t(sizeof(float));
    if (int64_t i = first_non_finite(DType::kF32, w.scale_inv, s); i >= 0) refuse(ckpt, w.scale_inv, i, sizeof(float));
  }
}

void check_finite(const float* data, int64_t n, const std::string& what) {
  if (int64_t i = first_non_finite(DType::kF32, data, n); i >= 0)
    fail(what, " holds NaN or Inf (element ", i, "); the checkpoint is corrupt and every output would be NaN");
}

}  // namespace dsinfer::model
