#include "serve/http_message.h"

#include <algorithm>

namespace dsinfer::serve::http {

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c + 32);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
         });
}

bool header_has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (iequals(trim_ows(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool Request::keep_alive() const {
  const std::string* c = header("connection");
  if (c && header_has_token(*c, "close")) return false;
  if (version_minor >= 1) return true;
  return c && header_has_token(*c, "keep-alive");
}

bool Request::expects_continue() const {
  const std::string* e = header("expect");
  return e && iequals(trim_ows(*e), "100-continue");
}

}  // namespace dsinfer::serve::http
