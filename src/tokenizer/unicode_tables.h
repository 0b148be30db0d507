// Unicode normalization forms (NFC, NFD, NFKC, NFKD) and per-character lowercasing for the
// normalizers, from tables generated out of Python's unicodedata (gen_unicode_tables.py), so the
// layer needs no ICU. Lowercasing maps each character on its own, like Rust's char::to_lowercase
// (Hugging Face's Lowercase): 'Σ' always becomes 'σ', 'İ' becomes "i̇".
#pragma once

#include <string>
#include <string_view>

namespace dsinfer::tokenizer {

// s must be valid UTF-8. compat: K forms; compose: C forms.
std::string unicode_normalize(std::string_view s, bool compat, bool compose);

std::string unicode_lowercase(std::string_view s);

}  // namespace dsinfer::tokenizer
