// Content-Encoding: gzip and deflate bodies decode; the body limit holds for the decoded size
// (a decompression bomb is a 413, not gigabytes); unknown codings are 415, corrupt data 400.
#include "serve/content_coding.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace dsinfer::serve::http {
namespace {

// windowBits: 31 gzip, 15 zlib, -15 raw deflate.
std::string compress(const std::string& in, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, uLong(in.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Request with_body(std::string body, const std::string& coding) {
  Request r;
  r.headers = {{"host", "a"}, {"content-encoding", coding}};
  r.body = std::move(body);
  return r;
}

TEST(ContentCoding, DecodesGzipDeflateAndRawDeflate) {
  const std::string text = R"({"prompt":"hello hello hello hello"})";
  for (auto [coding, bits] : {std::pair{"gzip", 31}, {"x-gzip", 31}, {"deflate", 15}, {"Deflate", -15}}) {
    Request r = with_body(compress(text, bits), coding);
    DecodeResult d = decode_content(r, 1 << 20);
    EXPECT_EQ(d.status, 0) << coding << ": " << d.message;
    EXPECT_EQ(r.body, text) << coding;
    EXPECT_EQ(r.header("content-encoding"), nullptr);
  }
}

TEST(ContentCoding, StackedCodingsAreUndoneLastFirst) {
  Request r = with_body(compress(compress("abc", 31), 15), "gzip, deflate");
  ASSERT_EQ(decode_content(r, 1 << 20).status, 0);
  EXPECT_EQ(r.body, "abc");
}

TEST(ContentCoding, TheLimitHoldsForTheDecodedSize) {
  // 64 MiB of zeros compress to ~64 KB: the decoder must stop at the cap, not inflate it all.
  Request r = with_body(compress(std::string(64 << 20, '\0'), 31), "gzip");
  EXPECT_LT(r.body.size(), 100u << 10);
  DecodeResult d = decode_content(r, 1 << 20);
  EXPECT_EQ(d.status, 413);
  EXPECT_NE(d.message.find("1048576"), std::string::npos) << d.message;
}

TEST(ContentCoding, RefusesUnknownCorruptAndTooManyCodings) {
  Request br = with_body("x", "br");
  DecodeResult d = decode_content(br, 1 << 20);
  EXPECT_EQ(d.status, 415);
  EXPECT_NE(d.message.find("br"), std::string::npos);
  Request bad = with_body("not gzip at all", "gzip");
  EXPECT_EQ(decode_content(bad, 1 << 20).status, 400);
  Request truncated = with_body(compress("hello world", 31).substr(0, 10), "gzip");
  EXPECT_EQ(decode_content(truncated, 1 << 20).status, 400);
  Request trailing = with_body(compress("hello", 31) + "junk", "gzip");
  EXPECT_EQ(decode_content(trailing, 1 << 20).status, 400);
  Request chain = with_body("x", "gzip, gzip, gzip");
  EXPECT_EQ(decode_content(chain, 1 << 20).status, 415);
}

TEST(ContentCoding, IdentityAndNoCodingLeaveTheBody) {
  Request r = with_body("plain", "identity");
  EXPECT_EQ(decode_content(r, 1 << 20).status, 0);
  EXPECT_EQ(r.body, "plain");
}

}  // namespace
}  // namespace dsinfer::serve::http
