// Fuzzes the safetensors parser (model/safetensors.h) on whole file images: the 8-byte header
// length, the JSON header and the data section. A rejected file must throw dsinfer::Error; an
// accepted one must give tensors that lie inside the image, do not overlap, and hold exactly
// numel * dtype_size bytes.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/error.h"
#include "fuzz_util.h"
#include "model/safetensors.h"

using namespace dsinfer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so ASan sees any read past the image.
  std::vector<uint8_t> image(data, data + size);
  std::map<std::string, model::TensorInfo> tensors;
  try {
    tensors = model::parse_safetensors(image.data(), image.size(), "fuzz.safetensors");
  } catch (const Error&) {
    return 0;
  }
  const uint8_t* begin = image.data();
  const uint8_t* end = begin + image.size();
  std::vector<std::pair<const uint8_t*, const uint8_t*>> ranges;
  for (const auto& [name, t] : tensors) {
    FUZZ_CHECK(name == t.name);
    FUZZ_CHECK(t.numel() >= 0);
    FUZZ_CHECK(t.nbytes == size_t(t.numel()) * dtype_size(t.dtype));
    FUZZ_CHECK(t.data >= begin + 8 && t.data <= end && t.nbytes <= size_t(end - t.data));
    (void)t.shape_str();
    if (t.nbytes > 0) {
      // Touch both ends: ASan stops on anything outside the image.
      volatile uint8_t first = t.data[0], last = t.data[t.nbytes - 1];
      (void)first;
      (void)last;
      ranges.emplace_back(t.data, t.data + t.nbytes);
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) FUZZ_CHECK(ranges[i].first >= ranges[i - 1].second);
  return 0;
}
