// The GPT-2 byte-level alphabet: every byte 0..255 is shown as one printable code point so that
// byte-level BPE vocabularies can be stored as text (a space is "Ġ", a newline "Ċ"). dsinfer
// converts vocabularies back to raw bytes once at load time, so encoding never maps text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsinfer::tokenizer {

// The raw bytes a byte-level token stands for, or nullopt when some character of it is not in
// the alphabet (such a token never comes out of byte-level pre-tokenization).
std::optional<std::string> byte_level_to_bytes(std::string_view token);

// The regex the ByteLevel pre-tokenizer applies when use_regex is true (Oniguruma syntax).
inline constexpr const char* kByteLevelPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace dsinfer::tokenizer
