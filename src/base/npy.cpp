#include "base/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/error.h"

namespace dsinfer {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ",";
    count *= d;
  }
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  check(bool(out), "cannot write ", path);
  out.write("\x93NUMPY\x01\x00", 8);
  uint16_t len = uint16_t(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(reinterpret_cast<const char*>(data), std::streamsize(count * sizeof(float)));
  check(bool(out), "write to ", path, " failed");
}

NpyArray read_npy_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), "cannot open ", path);
  char magic[8];
  uint16_t len = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&len), 2);
  check(in && std::memcmp(magic, "\x93NUMPY\x01", 7) == 0, path, " is not a .npy v1 file");
  std::string header(len, ' ');
  in.read(header.data(), len);
  check(header.find("'<f4'") != std::string::npos, path, ": only little-endian float32 is supported");
  check(header.find("'fortran_order': False") != std::string::npos, path, ": Fortran order unsupported");
  NpyArray a;
  size_t open = header.find('('), close = header.find(')');
  check(open != std::string::npos && close != std::string::npos, path, ": no shape in header");
  std::string dims = header.substr(open + 1, close - open - 1);
  int64_t count = 1;
  size_t pos = 0;
  while (pos < dims.size()) {
    size_t comma = dims.find(',', pos);
    std::string tok = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (tok.find_first_not_of(' ') != std::string::npos) {
      a.shape.push_back(std::stoll(tok));
      count *= a.shape.back();
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  a.data.resize(size_t(count));
  in.read(reinterpret_cast<char*>(a.data.data()), std::streamsize(count * sizeof(float)));
  check(bool(in), path, " is truncated");
  return a;
}

}  // namespace dsinfer
