#include "model/random_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/dtype.h"
#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/sampling.h"
#include "model/safetensors.h"

namespace dsinfer::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

enum class Kind { kLinear, kTable, kNorm, kRouter, kBias };

struct Spec {
  Spec(std::string n, std::vector<int64_t> s, Kind k, std::string copy = {})
      : name(std::move(n)), shape(std::move(s)), kind(k), copy_of(std::move(copy)) {}
  std::string name;
  std::vector<int64_t> shape;
  Kind kind;
  std::string copy_of;  // a tensor this one repeats (V3's MTP layer stores the embedding and head again)
};

uint64_t hash_name(uint64_t seed, const std::string& s) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Fills out[0, n) with N(mean, std) values; chunks have their own streams so the result does not
// depend on how many threads generate it.
void fill_normal(float* out, int64_t n, uint64_t seed, float mean, float std) {
  constexpr int64_t kChunk = 1 << 16;
  parallel_for(size_t((n + kChunk - 1) / kChunk), 1, [&](size_t cb, size_t ce) {
    for (size_t c = cb; c < ce; ++c) {
      uint64_t state = seed ^ (0x9e3779b97f4a7c15ull * (c + 1));
      int64_t b = int64_t(c) * kChunk, e = std::min(n, b + kChunk);
      for (int64_t i = b; i < e; i += 2) {
        double u1 = (double(kernels::splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
        double u2 = kernels::uniform01(state);
        double r = std::sqrt(-2.0 * std::log(u1));
        out[i] = mean + std * float(r * std::cos(2 * M_PI * u2));
        if (i + 1 < e) out[i + 1] = mean + std * float(r * std::sin(2 * M_PI * u2));
      }
    }
  });
}

std::vector<uint8_t> to_bf16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 2);
  uint16_t* p = reinterpret_cast<uint16_t*>(b.data());
  for (size_t i = 0; i < v.size(); ++i) p[i] = f32_to_bf16(v[i]);
  return b;
}

// DeepSeek's weight quantisation: per 128x128 block, scale = amax / 448, q = e4m3(w / scale).
void quantize_fp8(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t bn, int64_t bk,
                  std::vector<uint8_t>& q, std::vector<float>& scales) {
  int64_t sr = (rows + bn - 1) / bn, sc = (cols + bk - 1) / bk;
  q.resize(size_t(rows * cols));
  scales.assign(size_t(sr * sc), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float& s = scales[size_t((r / bn) * sc + c / bk)];
      s = std::max(s, std::fabs(w[size_t(r * cols + c)]));
    }
  for (float& s : scales) s = s > 0 ? s / kE4M3Max : 1.0f;
  parallel_for(size_t(rows), 64, [&](size_t rb, size_t re) {
    for (size_t r = rb; r < re; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        float s = scales[size_t((int64_t(r) / bn) * sc + c / bk)];
        q[r * size_t(cols) + size_t(c)] = f32_to_e4m3(w[r * size_t(cols) + size_t(c)] / s);
      }
  });
}

std::vector<Spec> tensor_specs(const ModelConfig& c) {
  std::vector<Spec> s;
  const int64_t h = c.hidden_size, heads = c.num_attention_heads;
  s.push_back({"model.embed_tokens.weight", {c.vocab_size, h}, Kind::kTable});
  auto mlp = [&](const std::string& p, int64_t inter) {
    s.push_back({p + ".gate_proj.weight", {inter, h}, Kind::kLinear});
    s.push_back({p + ".up_proj.weight", {inter, h}, Kind::kLinear});
    s.push_back({p + ".down_proj.weight", {h, inter}, Kind::kLinear});
  };
  auto layer = [&](int64_t i, bool moe) {
    std::string p = "model.layers." + std::to_string(i);
    s.push_back({p + ".input_layernorm.weight", {h}, Kind::kNorm});
    if (c.q_lora_rank) {
      s.push_back({p + ".self_attn.q_a_proj.weight", {*c.q_lora_rank, h}, Kind::kLinear});
      s.push_back({p + ".self_attn.q_a_layernorm.weight", {*c.q_lora_rank}, Kind::kNorm});
      s.push_back({p + ".self_attn.q_b_proj.weight", {heads * c.qk_head_dim(), *c.q_lora_rank}, Kind::kLinear});
    } else {
      s.push_back({p + ".self_attn.q_proj.weight", {heads * c.qk_head_dim(), h}, Kind::kLinear});
    }
    s.push_back({p + ".self_attn.kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, h}, Kind::kLinear});
    s.push_back({p + ".self_attn.kv_a_layernorm.weight", {c.kv_lora_rank}, Kind::kNorm});
    s.push_back({p + ".self_attn.kv_b_proj.weight", {heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank},
                 Kind::kLinear});
    s.push_back({p + ".self_attn.o_proj.weight", {h, heads * c.v_head_dim}, Kind::kLinear});
    s.push_back({p + ".post_attention_layernorm.weight", {h}, Kind::kNorm});
    if (moe) {
      s.push_back({p + ".mlp.gate.weight", {c.n_routed_experts, h}, Kind::kRouter});
      if (c.topk_method == TopkMethod::kNoauxTc)
        s.push_back({p + ".mlp.gate.e_score_correction_bias", {c.n_routed_experts}, Kind::kBias});
      for (int64_t e = 0; e < c.n_routed_experts; ++e) mlp(p + ".mlp.experts." + std::to_string(e), c.moe_intermediate_size);
      if (c.n_shared_experts > 0) mlp(p + ".mlp.shared_experts", c.moe_intermediate_size * c.n_shared_experts);
    } else {
      mlp(p + ".mlp", c.intermediate_size);
    }
  };
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer(i, c.is_moe_layer(i));
  s.push_back({"model.norm.weight", {h}, Kind::kNorm});
  s.push_back({"lm_head.weight", {c.vocab_size, h}, Kind::kTable});
  // MTP modules as DeepSeek-V3 stores them (model.layers.{num_hidden_layers + k}): the projection
  // of [enorm(embed(next token)); hnorm(h)], one full decoder block (an MoE block when the layer
  // index says so, as V3's layer 61 is), shared_head.norm, and V3's own copies of the embedding
  // and the LM head (which dsinfer checks and shares with the main model).
  for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k) {
    const int64_t i = c.num_hidden_layers + k;
    std::string p = "model.layers." + std::to_string(i);
    s.push_back({p + ".enorm.weight", {h}, Kind::kNorm});
    s.push_back({p + ".hnorm.weight", {h}, Kind::kNorm});
    s.push_back({p + ".eh_proj.weight", {h, 2 * h}, Kind::kLinear});
    layer(i, c.is_moe_layer(i));
    s.push_back({p + ".shared_head.norm.weight", {h}, Kind::kNorm});
    s.push_back({p + ".embed_tokens.weight", {c.vocab_size, h}, Kind::kTable, "model.embed_tokens.weight"});
    s.push_back({p + ".shared_head.head.weight", {c.vocab_size, h}, Kind::kTable, "lm_head.weight"});
  }
  return s;
}

}  // namespace

int64_t write_random_checkpoint(const ModelConfig& cfg, const std::string& dir, const RandomCheckpointOptions& opt) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "cannot create ", dir, ": ", ec.message());
  ModelConfig out_cfg = cfg;
  if (opt.fp8) out_cfg.quant = QuantConfig{"e4m3", 128, 128};
  else out_cfg.quant.reset();
  {
    std::ofstream f(fs::path(dir) / "config.json");
    check(bool(f), "cannot write ", (fs::path(dir) / "config.json").string());
    f << to_json(out_cfg).dump(2) << "\n";
  }

  // Shards are written as they fill (bench checkpoints are GBs); their final names need the
  // shard count, so they are renamed at the end.
  SafetensorsWriter shard;
  std::vector<std::vector<std::string>> shard_tensors;
  int64_t total = 0;
  auto part_path = [&](size_t i) { return (fs::path(dir) / ("model-part-" + std::to_string(i) + ".tmp")).string(); };
  auto flush = [&] {
    shard.write(part_path(shard_tensors.size()));
    shard_tensors.push_back(shard.names());
    shard = SafetensorsWriter();
  };
  auto add = [&](const std::string& name, DType dt, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    if (!shard.empty() && int64_t(shard.data_bytes() + bytes.size()) > opt.max_shard_bytes) flush();
    total += int64_t(bytes.size());
    shard.add(name, dt, std::move(shape), std::move(bytes));
  };
  for (const Spec& s : tensor_specs(out_cfg)) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    const std::string& source = s.copy_of.empty() ? s.name : s.copy_of;  // a copy: the same values
    uint64_t seed = hash_name(opt.seed, source);
    switch (s.kind) {
      case Kind::kTable: {
        // Embeddings O(1); the output head scaled like a linear so logits are O(1).
        bool head = source == "lm_head.weight";
        fill_normal(v.data(), n, seed, 0.0f, head ? 1.0f / std::sqrt(float(s.shape[1])) : 1.0f);
        add(s.name, DType::kBF16, s.shape, to_bf16_bytes(v));
        break;
      }
      case Kind::kNorm:
        fill_normal(v.data(), n, seed, 1.0f, 0.1f);
        add(s.name, DType::kBF16, s.shape, to_bf16_bytes(v));
        break;
      case Kind::kRouter:
        fill_normal(v.data(), n, seed, 0.0f, 1.0f / std::sqrt(float(s.shape[1])));
        add(s.name, DType::kBF16, s.shape, to_bf16_bytes(v));
        break;
      case Kind::kBias: {
        // Small enough to keep unbiased scores meaningful, large enough to change choices.
        fill_normal(v.data(), n, seed, 0.0f, 0.1f);
        for (int64_t e = std::max<int64_t>(0, n - opt.hot_experts); e < n; ++e) v[size_t(e)] += 1.0f;
        std::vector<uint8_t> b(size_t(n) * 4);
        std::memcpy(b.data(), v.data(), b.size());
        add(s.name, DType::kF32, s.shape, std::move(b));
        break;
      }
      case Kind::kLinear: {
        fill_normal(v.data(), n, seed, 0.0f, 1.0f / std::sqrt(float(s.shape[1])));
        if (opt.fp8) {
          std::vector<uint8_t> q;
          std::vector<float> scales;
          quantize_fp8(v, s.shape[0], s.shape[1], 128, 128, q, scales);
          std::vector<uint8_t> sb(scales.size() * 4);
          std::memcpy(sb.data(), scales.data(), sb.size());
          std::string base = s.name.substr(0, s.name.size() - std::string(".weight").size());
          int64_t sr = (s.shape[0] + 127) / 128, sc = (s.shape[1] + 127) / 128;
          add(s.name, DType::kF8E4M3, s.shape, std::move(q));
          add(base + ".weight_scale_inv", DType::kF32, {sr, sc}, std::move(sb));
        } else {
          add(s.name, DType::kBF16, s.shape, to_bf16_bytes(v));
        }
        break;
      }
    }
  }

  flush();
  // Remove what an earlier make-model into the same directory may have left.
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors" || e.path().filename() == "model.safetensors.index.json")
      fs::remove(e.path(), ec);
  if (shard_tensors.size() == 1) {
    fs::rename(part_path(0), fs::path(dir) / "model.safetensors");
    return total;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", json::object()}};
  char name[64];
  for (size_t i = 0; i < shard_tensors.size(); ++i) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shard_tensors.size());
    fs::rename(part_path(i), fs::path(dir) / name);
    for (auto& t : shard_tensors[i]) index["weight_map"][t] = name;
  }
  std::ofstream f(fs::path(dir) / "model.safetensors.index.json");
  f << index.dump(2) << "\n";
  check(bool(f), "cannot write the shard index in ", dir);
  return total;
}

}  // namespace dsinfer::model
