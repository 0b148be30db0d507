#include "base/dtype.h"

#include <array>
#include <bit>
#include <cmath>

namespace dsinfer {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kF8E4M3: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kF8E4M3: return "F8_E4M3";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32") *out = DType::kF32;
  else if (s == "BF16") *out = DType::kBF16;
  else if (s == "F16") *out = DType::kF16;
  else if (s == "F8_E4M3") *out = DType::kF8E4M3;
  else return false;
  return true;
}

float f16_to_f32(uint16_t h) {
  int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(float(man), -24);
  else if (exp == 31) v = man ? NAN : INFINITY;
  else v = std::ldexp(float(man | 0x400), exp - 25);
  return sign ? -v : v;
}

// Builds the fp32 bit pattern of an e4m3 byte; constexpr so the table is fixed at compile time.
static constexpr float decode_e4m3(uint8_t b) {
  uint32_t sign = uint32_t(b >> 7) << 31;
  uint32_t exp = (b >> 3) & 0xf, man = b & 7;
  if (exp == 0xf && man == 7) return std::bit_cast<float>(0x7fc00000u);
  if (exp == 0) {
    if (man == 0) return std::bit_cast<float>(sign);
    // Subnormal man/8 * 2^-6: shift the mantissa up until its leading one is implicit.
    int e = -6;
    while (!(man & 8)) { man <<= 1; --e; }
    return std::bit_cast<float>(sign | (uint32_t(e + 127) << 23) | ((man & 7) << 20));
  }
  return std::bit_cast<float>(sign | ((exp - 7 + 127) << 23) | (man << 20));
}

static constexpr std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = decode_e4m3(uint8_t(i));
  return t;
}

static constexpr std::array<float, 256> kTable = make_e4m3_table();
const float* const kE4M3ToF32 = kTable.data();

uint8_t f32_to_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  if (a >= kE4M3Max) return sign | 0x7e;
  if (a < 0x1.0p-6f) {
    // Subnormal range: multiples of 2^-9, and code m is exactly m * 2^-9 (code 8 = 2^-6 too).
    return sign | uint8_t(std::nearbyint(a * 512.0f));  // default rounding: to nearest even
  }
  // Normal: round the fp32 mantissa to 3 bits, ties to even; a carry bumps the exponent.
  uint32_t u = std::bit_cast<uint32_t>(a);
  u += 0x7ffffu + ((u >> 20) & 1u);
  uint32_t exp = ((u >> 23) & 0xff) - 127 + 7, man = (u >> 20) & 7;
  uint32_t code = (exp << 3) | man;
  return sign | uint8_t(code > 0x7e ? 0x7e : code);
}

}  // namespace dsinfer
