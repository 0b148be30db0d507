// Request bodies sent with Content-Encoding (gzip, deflate), decoded with a hard cap on the
// decoded size: a few KB of gzip can inflate to gigabytes, so the body limit must hold for what
// the handler will see, not for what came over the wire. Unknown codings are refused (415)
// rather than handed to the JSON parser as garbage.
#pragma once

#include <string>

#include "serve/http_message.h"

namespace dsinfer::serve::http {

// What decoding a request's body came to. status 0: `request.body` now holds the decoded bytes
// and Content-Encoding is gone; otherwise the status to answer (413, 415, 400) and why.
struct DecodeResult {
  int status = 0;
  std::string message;
};

DecodeResult decode_content(Request& request, size_t max_decoded_bytes);

}  // namespace dsinfer::serve::http
