#include "serve/content_coding.h"

#include <zlib.h>

#include <vector>

#include "base/error.h"

namespace dsinfer::serve::http {

namespace {

constexpr int kMaxCodings = 2;  // "gzip, gzip" is legal; a longer chain is an attack, not a client

// Inflates `in` (gzip when gzip, else zlib-wrapped deflate, falling back to raw deflate, which
// some clients send for "deflate") into `out`, stopping at `cap` bytes.
DecodeResult inflate_capped(const std::string& in, bool gzip, size_t cap, std::string& out) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    z_stream z{};
    int window = gzip ? 16 + MAX_WBITS : attempt == 0 ? MAX_WBITS : -MAX_WBITS;
    if (inflateInit2(&z, window) != Z_OK) return {500, "cannot initialise zlib"};
    out.clear();
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = uInt(in.size());
    std::vector<char> buf(64 << 10);
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      z.next_out = reinterpret_cast<Bytef*>(buf.data());
      z.avail_out = uInt(buf.size());
      rc = inflate(&z, Z_NO_FLUSH);
      size_t got = buf.size() - z.avail_out;
      if (out.size() + got > cap) {
        inflateEnd(&z);
        return {413, str("the decoded request body is larger than the limit of ", cap, " bytes")};
      }
      out.append(buf.data(), got);
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK || (z.avail_in == 0 && got == 0)) break;
    }
    bool trailing = z.avail_in != 0;
    inflateEnd(&z);
    if (rc == Z_STREAM_END && !trailing) return {};
    if (rc == Z_DATA_ERROR && !gzip && attempt == 0) continue;  // maybe raw deflate
    return {400, str("the request body is not valid ", gzip ? "gzip" : "deflate", " data",
                     trailing ? " (bytes after the end of the stream)" : "")};
  }
  return {400, "the request body is not valid deflate data"};
}

}  // namespace

DecodeResult decode_content(Request& request, size_t max_decoded_bytes) {
  std::vector<std::string> codings;
  for (auto it = request.headers.begin(); it != request.headers.end();) {
    if (it->first != "content-encoding") {
      ++it;
      continue;
    }
    std::string_view v = it->second;
    while (true) {
      size_t comma = v.find(',');
      std::string c = ascii_lower(trim_ows(v.substr(0, comma)));
      if (!c.empty() && c != "identity") codings.push_back(c);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
    it = request.headers.erase(it);
  }
  if (codings.size() > size_t(kMaxCodings))
    return {415, str("more than ", kMaxCodings, " content codings on one body")};
  // Codings are listed in the order they were applied: undo them last first.
  for (auto c = codings.rbegin(); c != codings.rend(); ++c) {
    bool gzip = *c == "gzip" || *c == "x-gzip";
    if (!gzip && *c != "deflate")
      return {415, str("Content-Encoding '", *c, "' is not supported (gzip, deflate or identity)")};
    std::string out;
    DecodeResult r = inflate_capped(request.body, gzip, max_decoded_bytes, out);
    if (r.status != 0) return r;
    request.body = std::move(out);
  }
  return {};
}

}  // namespace dsinfer::serve::http
