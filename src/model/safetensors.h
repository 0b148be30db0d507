// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets: [begin, end)} relative to the byte buffer that
// follows the header, and that buffer. Parsing validates everything a hostile or truncated file
// could get wrong (lengths, offsets, overlaps, dtype sizes) so tensor views are always in bounds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/mapped_file.h"

namespace dsinfer::model {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // for error messages

  int64_t numel() const;
  std::string shape_str() const;  // "[576, 1024]"
};

// Parses a whole safetensors image (header + data) held in memory; `path` names it in errors.
// Throws Error on any inconsistency.
std::map<std::string, TensorInfo> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& path);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::string& path() const { return file_.path(); }
  bool contains(const void* p) const { return file_.contains(p); }
  // Gives back the resident pages of [p, p + bytes), a range of this file (MappedFile::release).
  void release(const void* p, size_t bytes);
  size_t released_bytes() const { return file_.released_bytes(); }

 private:
  MappedFile file_;
  std::map<std::string, TensorInfo> tensors_;
};

// Writes a safetensors file; tensors are laid out in the order added.
class SafetensorsWriter {
 public:
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  size_t data_bytes() const { return data_bytes_; }
  bool empty() const { return entries_.empty(); }
  std::vector<std::string> names() const;
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries_;
  size_t data_bytes_ = 0;
};

}  // namespace dsinfer::model
