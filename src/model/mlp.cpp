#include "model/mlp.h"

#include <cstring>

#include "kernels/activation.h"
#include "kernels/gemm.h"

namespace dsinfer::model {

PackedMlp PackedMlp::pack(const MlpWeights& w) {
  PackedMlp p;
  p.inter = w.gate.rows;
  p.dtype = w.gate.dtype;
  if (p.inter % kernels::kPanelCols == 0 && w.gate.dtype == w.up.dtype) {
    p.gate_up = kernels::pack_matrix_stacked({w.gate, w.up});
  } else {
    p.gate = kernels::pack_matrix(w.gate);
    p.up = kernels::pack_matrix(w.up);
  }
  p.down = kernels::pack_matrix(w.down);
  return p;
}

namespace {

// Both constnesses of PackedMlp::buffers.
template <typename Mlp, typename Byte>
std::vector<std::span<Byte>> buffers_of(Mlp& e) {
  std::vector<std::span<Byte>> out;
  for (auto* m : {&e.gate_up, &e.gate, &e.up, &e.down}) {
    if (m->data.size()) out.emplace_back(reinterpret_cast<Byte*>(m->data.data()), m->data.size());
    if (!m->scales.empty()) out.emplace_back(reinterpret_cast<Byte*>(m->scales.data()), m->scales.size() * sizeof(float));
  }
  return out;
}

}  // namespace

std::vector<std::span<uint8_t>> PackedMlp::buffers() { return buffers_of<PackedMlp, uint8_t>(*this); }
std::vector<std::span<const uint8_t>> PackedMlp::buffers() const { return buffers_of<const PackedMlp, const uint8_t>(*this); }

int64_t PackedMlp::bytes() const {
  int64_t n = 0;
  for (std::span<const uint8_t> b : buffers()) n += int64_t(b.size());
  return n;
}

PackedMlp PackedMlp::zeros_like() const {
  PackedMlp e;
  e.inter = inter;
  e.dtype = dtype;
  auto shape = [](const kernels::PackedMatrix& from, kernels::PackedMatrix& to) {
    to.dtype = from.dtype;
    to.n = from.n;
    to.k = from.k;
    to.panels = from.panels;
    to.k_blocks = from.k_blocks;
    to.data.resize(from.data.size());
    to.scales.resize(from.scales.size());
  };
  shape(gate_up, e.gate_up);
  shape(gate, e.gate);
  shape(up, e.up);
  shape(down, e.down);
  return e;
}

PackedMlp PackedMlp::copy() const {
  PackedMlp e = zeros_like();
  const auto from = buffers();
  const auto to = e.buffers();
  for (size_t i = 0; i < from.size(); ++i) std::memcpy(to[i].data(), from[i].data(), from[i].size());
  return e;
}

void mlp_forward(const PackedMlp& w, const float* x, int64_t m, int64_t ldx, float* out, int64_t ldo,
                 std::vector<float>& scratch, kernels::ActQuant act, FunctionRef<void()> between) {
  const int64_t inter = w.inter;
  if (scratch.size() < size_t(3 * m * inter)) scratch.resize(size_t(3 * m * inter));
  float* gate_up = scratch.data();              // {m, 2*inter}
  float* h = scratch.data() + 2 * m * inter;    // {m, inter}
  if (w.fused()) {
    kernels::linear(x, m, ldx, w.gate_up, gate_up, 2 * inter, act);
  } else {
    kernels::linear(x, m, ldx, w.gate, gate_up, 2 * inter, act);
    kernels::linear(x, m, ldx, w.up, gate_up + inter, 2 * inter, act);
  }
  between();
  kernels::silu_and_mul(gate_up, m, inter, h);
  kernels::linear(h, m, inter, w.down, out, ldo, act);
}

}  // namespace dsinfer::model
