// Number formats of DeepSeek checkpoints and their conversions to fp32.
// bf16 is the upper half of an IEEE fp32; e4m3 is OCP FP8 E4M3FN (bias 7, no infinities,
// 0x7f/0xff are NaN, largest finite 448) as used by DeepSeek-V3's FP8 weights.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace dsinfer {

enum class DType { kF32, kBF16, kF16, kF8E4M3 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);           // safetensors spelling: "F32", "BF16", ...
bool parse_dtype(const std::string& s, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

float f16_to_f32(uint16_t h);

// 256-entry table: exact value of every e4m3 byte.
extern const float* const kE4M3ToF32;
inline float e4m3_to_f32(uint8_t b) { return kE4M3ToF32[b]; }

// Round to nearest even, saturating to +-448 (the convention of DeepSeek's quantisers, which
// clamp before casting). NaN maps to the e4m3 NaN.
uint8_t f32_to_e4m3(float f);

constexpr float kE4M3Max = 448.0f;

}  // namespace dsinfer
