// A Hugging Face checkpoint directory: config.json plus one model.safetensors or several shards
// named by model.safetensors.index.json. All shards are memory-mapped; tensors are zero-copy views.
// Opening reads only the headers: no tensor page is touched until a tensor is read.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace dsinfer::model {

class Checkpoint {
 public:
  static Checkpoint open(const std::string& dir);

  // nullptr when absent.
  const TensorInfo* find(const std::string& name) const;
  // Throws Error naming the tensor and the directory when absent.
  const TensorInfo& get(const std::string& name) const;
  const std::map<std::string, const TensorInfo*>& tensors() const { return index_; }
  const std::string& dir() const { return dir_; }

  // Gives back this process's pages of [data, data + bytes) once the caller has copied what it
  // needs from them (a weight repacked at load), so the checkpoint is not resident twice: see
  // MappedFile::release. Reading the range again stays valid (its pages fault back in from the
  // file), only slower, so call it only for bytes that will not be read again — never for tensors
  // used in place (embeddings, a lm_head tied to them). A range outside every shard (a view of a
  // converted copy) is ignored.
  void release(const void* data, size_t bytes);
  // Bytes of pages given back so far, over all shards.
  size_t released_bytes() const;

  // Identifies this checkpoint for prefix-cache keys: config.json and every shard's name, size and
  // first 64 KiB (the safetensors header and the first weights), so two checkpoints that differ
  // anywhere practical differ here. Computed at open.
  uint64_t fingerprint() const { return fingerprint_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
  uint64_t fingerprint_ = 0;
};

}  // namespace dsinfer::model
