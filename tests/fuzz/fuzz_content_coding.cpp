// Fuzzes request body decoding (serve/content_coding.h): the first byte picks the
// Content-Encoding header and the decoded-size cap, the rest is the body. Whatever the bytes, the
// decoder answers 0 (decoded, header gone, at most the cap), 400 (corrupt), 413 (over the cap)
// or 415 (a coding it does not take), and never holds more than the cap. The body is also
// compressed here and decoded back: a real gzip/deflate body within the cap must come back as
// it was.
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "serve/content_coding.h"

using namespace dsinfer;
using serve::http::decode_content;
using serve::http::DecodeResult;
using serve::http::Request;

namespace {

const char* const kCodings[] = {"gzip", "deflate", "x-gzip", "gzip, deflate", "identity", "br", "gzip, gzip, gzip", ""};

std::string compress(const std::string& in, int window_bits) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&z, uLong(in.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(rc == Z_STREAM_END ? z.total_out : 0);
  deflateEnd(&z);
  return out;
}

Request with(const std::string& body, const char* coding) {
  Request r;
  r.headers = {{"host", "h"}};
  if (*coding) r.headers.emplace_back("content-encoding", coding);
  r.body = body;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* coding = kCodings[data[0] & 7];
  const size_t cap = size_t(1) << (6 + (data[0] >> 3) % 12);  // 64 B .. 128 KiB
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);

  Request r = with(body, coding);
  DecodeResult d = decode_content(r, cap);
  FUZZ_CHECK(d.status == 0 || d.status == 400 || d.status == 413 || d.status == 415);
  FUZZ_CHECK(d.status == 0 || !d.message.empty());
  if (d.status == 0) {
    FUZZ_CHECK(r.header("content-encoding") == nullptr);
    // Identity leaves the body; a real coding leaves at most the cap.
    FUZZ_CHECK(r.body == body || r.body.size() <= cap);
  }

  // The same bytes as a real gzip and deflate body: they come back whole, or 413 past the cap.
  for (auto [name, bits] : {std::pair{"gzip", 31}, {"deflate", 15}}) {
    Request c = with(compress(body, bits), name);
    DecodeResult cd = decode_content(c, cap);
    if (body.size() <= cap) {
      FUZZ_CHECK(cd.status == 0);
      FUZZ_CHECK(c.body == body);
    } else {
      FUZZ_CHECK(cd.status == 413);
    }
  }
  return 0;
}
