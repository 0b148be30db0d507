// One way to parse JSON that came from outside (request bodies, config.json, tokenizer files,
// safetensors headers, plan inputs): nlohmann's parser is iterative, but dump(), comparisons and
// every recursive walk of the result are not, so a document nested 70,000 deep parses fine and
// then overflows the stack the first time anything walks it. parse_json refuses such documents
// while parsing, and turns every parse failure into dsinfer's Error naming what was parsed.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dsinfer {

// Deeper than any real config, tokenizer or API request (OpenAI tool schemas stay far below),
// shallow enough that a recursive walk of the result uses a few tens of KiB of stack.
inline constexpr int kMaxJsonDepth = 128;

// Parses `text`; throws Error "<what> is not valid JSON: <reason>" on a syntax error and
// "<what> nests JSON deeper than <max_depth> levels" when objects/arrays nest beyond max_depth.
nlohmann::json parse_json(std::string_view text, const std::string& what, int max_depth = kMaxJsonDepth);

}  // namespace dsinfer
