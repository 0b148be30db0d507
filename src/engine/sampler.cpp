#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/sampling.h"

namespace dsinfer::engine {

Sampler::Sampler(int64_t vocab_size)
    : vocab_(vocab_size), work_(size_t(vocab_size)), counts_(size_t(vocab_size)), stamp_(size_t(vocab_size), 0) {}

void Sampler::apply_penalties(const SamplingContext& ctx) {
  const SamplingParams& p = *ctx.params;
  const bool rep = p.repetition_penalty != 1.0;
  const bool freq = p.frequency_penalty != 0.0 || p.presence_penalty != 0.0;
  if (!rep && !freq) return;
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
    if (rep) l = l > 0 ? float(l / p.repetition_penalty) : float(l * p.repetition_penalty);
    int32_t c = counts_[size_t(t)];
    if (c > 0) l -= float(c * p.frequency_penalty + p.presence_penalty);
  }
}

int32_t Sampler::draw(const SamplingParams& p, uint64_t& rng) {
  const double inv_t = 1.0 / p.temperature;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab_; ++i) mx = std::max(mx, work_[size_t(i)]);
  // Unnormalised weights relative to the most likely token (which has weight 1).
  auto weight = [&](float l) { return std::exp(double(l - mx) * inv_t); };
  if (p.top_k == 0 && p.top_p >= 1.0) {  // no ranking needed: one pass over the vocabulary
    double kept = 0;
    for (int64_t i = 0; i < vocab_; ++i) {
      double w = weight(work_[size_t(i)]);
      kept += w >= p.min_p ? w : 0;
    }
    double target = kernels::uniform01(rng) * kept, run = 0;
    int32_t last = 0;
    for (int64_t i = 0; i < vocab_; ++i) {
      double w = weight(work_[size_t(i)]);
      if (w < p.min_p) continue;
      last = int32_t(i);
      run += w;
      if (run > target) return last;
    }
    return last;
  }
  double total = 0;
  for (int64_t i = 0; i < vocab_; ++i) total += weight(work_[size_t(i)]);
  // Candidates by probability (descending, ties by lower id), only as many as needed: top_k, or
  // a partial sort grown until it covers the top_p mass.
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  cand_.resize(size_t(vocab_));
  for (int64_t i = 0; i < vocab_; ++i) cand_[size_t(i)] = {work_[size_t(i)], int32_t(i)};
  const int64_t limit = p.top_k > 0 ? std::min(p.top_k, vocab_) : vocab_;
  int64_t sorted = p.top_p >= 1.0 ? limit : std::min<int64_t>(limit, 64);
  for (;;) {
    std::partial_sort(cand_.begin(), cand_.begin() + sorted, cand_.end(), better);
    if (sorted >= limit) break;
    double mass = 0;
    for (int64_t i = 0; i < sorted; ++i) mass += weight(cand_[size_t(i)].first);
    if (mass >= p.top_p * total) break;
    sorted = std::min(limit, sorted * 4);
  }
  double cum = 0;
  int64_t kept = 0;
  for (int64_t i = 0; i < sorted; ++i) {
    double w = weight(cand_[size_t(i)].first);
    if (i > 0 && (w < p.min_p || cum >= p.top_p * total)) break;
    cum += w;
    kept = i + 1;
  }
  double target = kernels::uniform01(rng) * cum, run = 0;
  for (int64_t i = 0; i < kept; ++i) {
    run += weight(cand_[size_t(i)].first);
    if (run > target) return cand_[size_t(i)].second;
  }
  return cand_[size_t(kept - 1)].second;
}

int32_t Sampler::sample(const float* logits, const SamplingContext& ctx, TokenLogprob* lp) {
  const SamplingParams& p = *ctx.params;
  const bool penalties = p.repetition_penalty != 1.0 || p.frequency_penalty != 0.0 || p.presence_penalty != 0.0;
  int32_t id;
  if (p.temperature <= 0 && !penalties) {
    id = kernels::argmax(logits, vocab_);  // plain greedy reads the row in place: no 0.5 MB copy per token
  } else {
    std::memcpy(work_.data(), logits, size_t(vocab_) * sizeof(float));
    apply_penalties(ctx);
    id = p.temperature <= 0 ? kernels::argmax(work_.data(), vocab_) : draw(p, *ctx.rng);
  }
  if (lp && p.logprobs >= 0) logprobs(logits, id, p.logprobs, *lp);
  return id;
}

void Sampler::logprobs(const float* logits, int32_t id, int64_t k, TokenLogprob& out) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab_; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < vocab_; ++i) sum += std::exp(double(logits[i] - mx));
  const double lse = double(mx) + std::log(sum);
  out.id = id;
  out.logprob = float(double(logits[id]) - lse);
  out.top.clear();
  if (k <= 0) return;
  cand_.resize(size_t(vocab_));
  for (int64_t i = 0; i < vocab_; ++i) cand_[size_t(i)] = {logits[i], int32_t(i)};
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  for (int64_t i = 0; i < k; ++i) out.top.push_back({cand_[size_t(i)].second, float(double(cand_[size_t(i)].first) - lse)});
}

}  // namespace dsinfer::engine
