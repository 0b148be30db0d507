// A Hugging Face checkpoint directory: config.json plus one model.safetensors or several shards
// named by model.safetensors.index.json. All shards are memory-mapped; tensors are zero-copy views.
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

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
};

}  // namespace dsinfer::model
