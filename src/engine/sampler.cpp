#include "engine/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "kernels/sampling.h"

namespace dsinfer::engine {

namespace {

// The first index of a NaN or ±Inf in x[0, n), or -1. A logits row is read once per token
// anyway; this pass over its exponent bits vectorises and costs about as much as max_value.
int64_t first_non_finite(const float* x, int64_t n) {
  constexpr int64_t kBlock = 1024;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    uint32_t any = 0;
    for (int64_t i = b; i < e; ++i) {
      uint32_t bits;
      std::memcpy(&bits, x + i, sizeof bits);
      any |= uint32_t((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (any)
      for (int64_t i = b; i < e; ++i)
        if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

}  // namespace

Sampler::Sampler(int64_t vocab_size)
    : vocab_(vocab_size), work_(size_t(vocab_size)), w_(size_t(vocab_size)), counts_(size_t(vocab_size)), stamp_(size_t(vocab_size), 0) {}

void Sampler::apply_penalties(const SamplingContext& ctx) {
  const SamplingParams& p = *ctx.params;
  if (!p.has_penalties()) return;
  const bool rep = p.repetition_penalty != 1.0;
  // stamp_ marks tokens seen in this call without clearing a vocab-sized array each time.
  if (++epoch_ == 0) {
    std::fill(stamp_.begin(), stamp_.end(), 0);
    epoch_ = 1;
  }
  idx_.clear();
  for (int64_t i = 0; i < ctx.num_tokens; ++i) {
    int32_t t = ctx.tokens[i];
    if (t < 0 || t >= vocab_) continue;
    if (stamp_[size_t(t)] != epoch_) {
      stamp_[size_t(t)] = epoch_;
      counts_[size_t(t)] = 0;
      idx_.push_back(t);
    }
    if (i >= ctx.num_prompt) ++counts_[size_t(t)];  // frequency/presence count generated tokens only
  }
  for (int32_t t : idx_) {
    float& l = work_[size_t(t)];
    double v = l;
    if (rep) v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
    int32_t c = counts_[size_t(t)];
    if (c > 0) v -= c * p.frequency_penalty + p.presence_penalty;
    // A finite logit stays finite: a penalty past float's range would make the row's maximum
    // infinite and every weight NaN.
    constexpr double kMax = std::numeric_limits<float>::max();
    l = float(std::clamp(v, -kMax, kMax));
  }
}

int32_t Sampler::draw(const SamplingParams& p, uint64_t& rng) {
  // Unnormalised weights relative to the most likely token (weight 1), computed once.
  const float mx = kernels::max_value(work_.data(), vocab_);
  // greedy() is false, so temperature >= kGreedyTemperature and 1 / temperature <= 1e5; the row
  // is finite, so every weight is in [0, 1] and the best token's is 1: total >= 1.
  const double total = kernels::exp_weights(work_.data(), vocab_, mx, float(1.0 / p.temperature), w_.data());
  const float min_w = float(p.min_p);  // min_p is relative to the best token's weight, 1
  if (p.top_k == 0 && p.top_p >= 1.0) {  // no ranking needed: one pass over the vocabulary
    double kept = total;  // without min_p every token is kept
    if (min_w > 0) {
      kept = 0;
      for (int64_t i = 0; i < vocab_; ++i) kept += w_[size_t(i)] >= min_w ? w_[size_t(i)] : 0.0f;
    }
    double target = kernels::uniform01(rng) * kept, run = 0;
    int32_t last = 0;
    for (int64_t i = 0; i < vocab_; ++i) {
      if (w_[size_t(i)] < min_w) continue;
      last = int32_t(i);
      run += w_[size_t(i)];
      if (run > target) return last;
    }
    return last;
  }
  // Candidates without sorting the vocabulary: bucket the weights by float exponent. Every token
  // of a higher bucket ranks above every token of a lower one, so the kept prefix (top_k tokens,
  // or the top_p mass, whichever ends first) ends in the higher of the bucket where the count
  // reaches top_k and the bucket where the mass reaches top_p; one bucket more guards against
  // rounding in the order of summation.
  std::array<double, 256> mass{};
  std::array<int64_t, 256> count{};
  for (int64_t i = 0; i < vocab_; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w_[size_t(i)], sizeof bits);
    mass[(bits >> 23) & 0xff] += w_[size_t(i)];
    count[(bits >> 23) & 0xff]++;
  }
  const double need = p.top_p >= 1.0 ? INFINITY : p.top_p * total;
  const int64_t need_k = p.top_k > 0 ? p.top_k : vocab_;
  double acc = 0;
  int64_t seen = 0;
  int b = 255;
  for (; b > 0; --b) {
    acc += mass[size_t(b)];
    seen += count[size_t(b)];
    if (acc >= need || seen >= need_k) break;
  }
  b = std::max(b - 1, 0);
  const uint32_t low = uint32_t(b) << 23;  // the smallest weight of bucket b (0 for bucket 0)
  float cut;
  std::memcpy(&cut, &low, sizeof cut);
  cut = std::max(cut, min_w);
  cand_.clear();
  for (int64_t i = 0; i < vocab_; ++i)
    if (w_[size_t(i)] >= cut) cand_.push_back({work_[size_t(i)], int32_t(i)});
  // By probability, descending; ties by lower id.
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (p.top_k > 0 && int64_t(cand_.size()) > p.top_k) {
    std::nth_element(cand_.begin(), cand_.begin() + p.top_k, cand_.end(), better);
    cand_.resize(size_t(p.top_k));
  }
  std::sort(cand_.begin(), cand_.end(), better);
  double cum = 0;
  size_t kept = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    const double w = w_[size_t(cand_[i].second)];
    if (i > 0 && (w < min_w || cum >= p.top_p * total)) break;
    cum += w;
    kept = i + 1;
  }
  // The most likely token always has weight 1 and so is a candidate; should rounding ever leave
  // none, fall back to it rather than read before the list.
  if (kept == 0) return kernels::argmax(work_.data(), vocab_);
  double target = kernels::uniform01(rng) * cum, run = 0;
  for (size_t i = 0; i < kept; ++i) {
    run += w_[size_t(cand_[i].second)];
    if (run > target) return cand_[i].second;
  }
  return cand_[kept - 1].second;
}

int32_t Sampler::sample(const float* logits, const SamplingContext& ctx, TokenLogprob* lp) {
  const SamplingParams& p = *ctx.params;
  if (const int64_t bad = first_non_finite(logits, vocab_); bad >= 0)
    throw NonFiniteLogits(str("the model produced a non-finite logit (", logits[bad], " for token id ", bad,
                              "), so no token can be sampled; the model's weights or activations are broken"));
  int32_t id;
  if (p.greedy() && !p.has_penalties()) {
    id = kernels::argmax(logits, vocab_);  // plain greedy reads the row in place: no 0.5 MB copy per token
  } else {
    std::memcpy(work_.data(), logits, size_t(vocab_) * sizeof(float));
    apply_penalties(ctx);
    id = p.greedy() ? kernels::argmax(work_.data(), vocab_) : draw(p, *ctx.rng);
  }
  if (lp && p.logprobs >= 0) logprobs(logits, id, p.logprobs, *lp);
  return id;
}

void Sampler::logprobs(const float* logits, int32_t id, int64_t k, TokenLogprob& out) {
  const float mx = kernels::max_value(logits, vocab_);
  const double lse = double(mx) + std::log(kernels::exp_weights(logits, vocab_, mx, 1.0f, w_.data()));
  out.id = id;
  out.logprob = float(double(logits[id]) - lse);
  out.top.clear();
  if (k <= 0) return;
  cand_.resize(size_t(vocab_));
  for (int64_t i = 0; i < vocab_; ++i) cand_[size_t(i)] = {logits[i], int32_t(i)};
  auto better = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  k = std::min(k, vocab_);
  std::nth_element(cand_.begin(), cand_.begin() + (k - 1), cand_.end(), better);
  std::sort(cand_.begin(), cand_.begin() + k, better);
  for (int64_t i = 0; i < k; ++i) out.top.push_back({cand_[size_t(i)].second, float(double(cand_[size_t(i)].first) - lse)});
}

}  // namespace dsinfer::engine
