// Named intermediates of the forward pass, written on request for comparison with the PyTorch
// reference (tests/reference/deepseek_ref.py --dump writes the same names). llama.cpp's
// cb(cur, "name", il) in spirit: the forward calls dump("attn_out", layer, data, rows, cols) at
// each named point, which costs one branch unless asked for.
//
//   DSINFER_DUMP=attn_out:3,ffn_out,logits   (name[:layers], layers "3", "1-4" or "*"; "*" alone:
//                                             every name). Default: nothing.
//   DSINFER_DUMP_DIR=DIR                      (default ./dsinfer-dump)
//
// Files: DIR/<name>.L<layer>.s<step>.npy (per-layer names) or DIR/<name>.s<step>.npy, float32
// [rows, cols], step counting forward calls from 0. Names, in order, with their shapes (T tokens
// of the step, R rows asked for logits, D hidden, V vocab):
//   embed [T, D]; per layer: attn_norm, attn_out, ffn_norm, ffn_out, layer_out [T, D];
//   final_norm [R, D]; logits [R, V].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsinfer::model {

class Dump {
 public:
  // Parses a DSINFER_DUMP value; throws Error naming what is malformed.
  static Dump parse(const std::string& spec, std::string dir);
  static Dump from_environment();

  bool enabled() const { return active_ && !rules_.empty(); }
  void set_active(bool on) { active_ = on; }
  // Writes data [rows, cols] when `name` at `layer` (-1: not a per-layer name) was asked for.
  void operator()(const char* name, int64_t layer, const float* data, int64_t rows, int64_t cols) const {
    if (enabled()) write(name, layer, data, rows, cols);
  }
  void next_step() {
    if (enabled()) ++step_;
  }

 private:
  struct Rule {
    std::string name;  // "*": any
    int64_t first = 0, last = -1;  // layer range; last < 0: every layer
  };
  std::vector<Rule> rules_;
  std::string dir_;
  int64_t step_ = 0;
  bool active_ = true;

  void write(const char* name, int64_t layer, const float* data, int64_t rows, int64_t cols) const;
};

}  // namespace dsinfer::model
