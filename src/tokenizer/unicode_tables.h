// Unicode data for the tokenizer without ICU: normalization forms (NFC, NFD, NFKC, NFKD) from
// Unicode 11.0 tables (gen_unicode_tables.py; Hugging Face's normalizer data is that old),
// per-character lowercasing, and property additions for the regexes. Lowercasing maps each
// character on its own, like Rust's char::to_lowercase (Hugging Face's Lowercase): 'Σ' always
// becomes 'σ', 'İ' becomes "i̇". Lowercase mappings and property additions are Unicode 16.0
// (gen_unicode_delta.mjs), like the Rust code they mirror.
#pragma once

#include <string>
#include <string_view>

namespace dsinfer::tokenizer {

// s must be valid UTF-8. compat: K forms; compose: C forms.
std::string unicode_normalize(std::string_view s, bool compat, bool compose);

std::string unicode_lowercase(std::string_view s);

// PCRE2 10.42 knows Unicode 14.0; Hugging Face's tokenizers 0.23 (Oniguruma 6.9.10, Rust's char
// tables) know 16.0. For a property name (a general category such as "L" or "Nd", "Alphabetic",
// "White_Space") this returns the characters that gained it since 14.0, as PCRE2 class ranges
// ("\x{31350}-\x{323AF}...") to put beside \p{NAME} inside a character class.
std::string unicode_property_additions(std::string_view property);

}  // namespace dsinfer::tokenizer
