#include "model/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/read_file.h"

namespace dsinfer::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

uint64_t fingerprint_files(const std::string& dir, std::vector<std::string> names) {
  names.push_back("config.json");
  std::sort(names.begin(), names.end());
  uint64_t h = mix64(0x636b7074);  // "ckpt"
  std::vector<char> head(1 << 16);
  for (const std::string& name : names) {
    fs::path p = fs::path(dir) / name;
    std::error_code ec;
    uint64_t size = fs::file_size(p, ec);
    h = fingerprint_bytes(h, name.data(), name.size());
    h = fingerprint_bytes(h, &size, sizeof size);
    std::ifstream in(p, std::ios::binary);
    in.read(head.data(), std::streamsize(head.size()));
    h = fingerprint_bytes(h, head.data(), size_t(in.gcount()));
  }
  return h;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& dir) {
  Checkpoint c;
  c.dir_ = dir;
  check(fs::is_directory(dir), "model directory ", dir, " does not exist");
  fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> weight_map;
  if (fs::exists(index_path)) {
    json idx = parse_json(read_regular_file(index_path.string(), "checkpoint index"), index_path.string());
    check(idx.is_object() && idx.contains("weight_map") && idx["weight_map"].is_object(), index_path.string(),
          ": missing weight_map");
    for (auto& [name, file] : idx["weight_map"].items()) {
      check(file.is_string(), index_path.string(), ": weight_map entry ", name, " must name a file");
      std::string f = file.get<std::string>();
      check(f.find('/') == std::string::npos && f.find("..") == std::string::npos, index_path.string(),
            ": shard name ", f, " must be a plain file name");
      weight_map[name] = f;
      if (std::find(shard_names.begin(), shard_names.end(), f) == shard_names.end()) shard_names.push_back(f);
    }
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    shard_names.push_back("model.safetensors");
  } else {
    for (auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") shard_names.push_back(e.path().filename().string());
    std::sort(shard_names.begin(), shard_names.end());
    check(!shard_names.empty(), "no safetensors files in ", dir);
  }
  for (auto& name : shard_names) {
    fs::path p = fs::path(dir) / name;
    check(fs::exists(p), index_path.string(), " names shard ", name, " which does not exist");
    c.files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
    for (auto& [tname, info] : c.files_.back()->tensors()) {
      auto [it, fresh] = c.index_.emplace(tname, &info);
      if (!fresh) fail("tensor ", tname, " appears in two shards (", it->second->file, " and ", p.string(), ")");
    }
  }
  c.fingerprint_ = fingerprint_files(dir, shard_names);
  for (auto& [tname, file] : weight_map) {
    auto it = c.index_.find(tname);
    check(it != c.index_.end(), index_path.string(), " maps tensor ", tname, " to ", file, " but it is not there");
    check(fs::path(it->second->file).filename() == file, index_path.string(), " maps tensor ", tname, " to ", file,
          " but it is in ", it->second->file);
  }
  return c;
}

void Checkpoint::release(const void* data, size_t bytes) {
  if (bytes == 0) return;
  for (auto& f : files_)
    if (f->contains(data)) return f->release(data, bytes);
}

size_t Checkpoint::released_bytes() const {
  size_t n = 0;
  for (auto& f : files_) n += f->released_bytes();
  return n;
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorInfo& Checkpoint::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail("checkpoint ", dir_, " is missing tensor ", name);
  return *t;
}

}  // namespace dsinfer::model
