#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"

namespace dsinfer::model {

using nlohmann::json;

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorInfo::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::map<std::string, TensorInfo> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& path) {
  check(size >= 8, path, ": truncated (", size, " bytes; a safetensors file starts with an 8-byte header length)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes, 8);
  check(header_len <= size - 8, path, ": header length ", header_len, " exceeds the file size ", size,
        " (truncated or not a safetensors file)");
  check(header_len <= (uint64_t(100) << 20), path, ": header length ", header_len, " is implausibly large");
  json header = parse_json(std::string_view(reinterpret_cast<const char*>(bytes + 8), size_t(header_len)),
                           path + ": header");
  check(header.is_object(), path, ": header must be a JSON object");
  const uint8_t* base = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  std::map<std::string, TensorInfo> out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& item : header.items()) {
    // Named references rather than a structured binding: clang before 16 cannot capture a
    // binding in the lambda below.
    const std::string& name = item.key();
    const json& entry = item.value();
    if (name == "__metadata__") continue;
    auto where = [&] { return str(path, ": tensor ", name); };
    check(entry.is_object(), where(), ": entry must be an object");
    check(entry.contains("dtype") && entry["dtype"].is_string(), where(), ": missing dtype");
    TensorInfo t;
    t.name = name;
    t.file = path;
    std::string dt = entry["dtype"].get<std::string>();
    check(parse_dtype(dt, &t.dtype), where(), ": unsupported dtype ", dt, " (expected F32, BF16, F16 or F8_E4M3)");
    check(entry.contains("shape") && entry["shape"].is_array(), where(), ": missing shape");
    uint64_t numel = 1;
    for (auto& d : entry["shape"]) {
      check(d.is_number_integer() && d.get<int64_t>() >= 0, where(), ": shape must hold non-negative integers");
      uint64_t v = d.get<uint64_t>();
      check(v == 0 || numel <= (uint64_t(1) << 48) / v, where(), ": shape is too large");
      numel *= v;
      t.shape.push_back(int64_t(v));
    }
    const json& off = entry.contains("data_offsets") ? entry["data_offsets"] : json();
    check(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), where(),
          ": data_offsets must be two non-negative integers");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    check(b <= e && e <= data_size, where(), ": data_offsets [", b, ", ", e, ") run past the end of the data (",
          data_size, " bytes; the file is truncated?)");
    check(e - b == numel * dtype_size(t.dtype), where(), ": holds ", e - b, " bytes but shape ", t.shape_str(),
          " of ", dt, " needs ", numel * dtype_size(t.dtype));
    t.data = base + b;
    t.nbytes = size_t(e - b);
    if (e > b) ranges.emplace_back(b, e);
    out.emplace(name, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    check(ranges[i].first >= ranges[i - 1].second, path, ": tensors overlap at byte ", ranges[i].first,
          " of the data section");
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(path), tensors_(parse_safetensors(file_.data(), file_.size(), path)) {
  // The parsed tensors hold everything the header said: its pages are not needed again.
  uint64_t header_len = 0;
  std::memcpy(&header_len, file_.data(), 8);
  file_.release(0, size_t(8 + header_len));
}

void SafetensorsFile::release(const void* p, size_t bytes) {
  check(contains(p), file_.path(), ": release of a range outside the file");
  file_.release(size_t(static_cast<const uint8_t*>(p) - file_.data()), bytes);
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes) {
  data_bytes_ += bytes.size();
  entries_.push_back({name, dtype, std::move(shape), std::move(bytes)});
}

std::vector<std::string> SafetensorsWriter::names() const {
  std::vector<std::string> n;
  for (auto& e : entries_) n.push_back(e.name);
  return n;
}

void SafetensorsWriter::write(const std::string& path) const {
  json header = json::object();
  uint64_t offset = 0;
  for (auto& e : entries_) {
    header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  check(bool(out), "cannot write ", path);
  uint64_t len = h.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(h.data(), std::streamsize(h.size()));
  for (auto& e : entries_) out.write(reinterpret_cast<const char*>(e.bytes.data()), std::streamsize(e.bytes.size()));
  check(bool(out), "write to ", path, " failed (disk full?)");
}

}  // namespace dsinfer::model
