// Start-up: the KV cache sized from the memory left, and warm-up steps at the largest shapes the
// engine allows, so every scratch buffer has its final size before the first request (no
// allocation in the step loop; docs/architecture.md).
#include "engine/engine.h"

#include <algorithm>

#include "base/log.h"
#include "base/memory_info.h"

namespace dsinfer::engine {

int64_t Engine::kv_blocks_from_memory() {
  const kernels::KvCacheSpec spec = model_->cache_spec();
  const int64_t available = available_memory_bytes();
  const double budget = available > 0 ? options_.kv_memory_fraction * double(available) : 0;
  if (options_.kv_cache_gb <= 0) {
    check(budget > 0, "--kv-cache-gb 0 sizes the KV cache from the free memory, which this system does not report");
    log_info("KV cache: ", budget / 1e9, " GB (", options_.kv_memory_fraction, " of the ", double(available) / 1e9,
             " GB left after the weights and the warm-up)");
    return cache::KvPool::blocks_in_bytes(budget, spec);
  }
  const double want = options_.kv_cache_gb * 1e9;
  if (budget > 0 && want > budget) {
    log_warn("--kv-cache-gb ", options_.kv_cache_gb, " is more than the memory left after the weights and the warm-up (",
             double(available) / 1e9, " GB; ", options_.kv_memory_fraction, " of it is ", budget / 1e9,
             " GB): using ", budget / 1e9, " GB");
    return cache::KvPool::blocks_in_bytes(budget, spec);
  }
  return cache::KvPool::blocks_in_bytes(want, spec);
}

// One sequence of T new tokens after `context` cached ones (garbage rows: the output is not
// used), its table cycling over the pool's blocks.
void Engine::warm_up_prefill(const kernels::KvCacheView& cache, int64_t num_blocks, int64_t context, int64_t T) {
  const int64_t bs = cache.spec.block_size;
  std::vector<int32_t> table(size_t((context + T + bs - 1) / bs));
  for (size_t i = 0; i < table.size(); ++i) table[i] = int32_t(int64_t(i) % num_blocks);
  std::vector<int32_t> tokens(size_t(T), 0);
  model::Batch batch;
  batch.add(tokens.data(), T, context, table.data(), model::Batch::Logits::kLast);
  std::vector<float> logits(size_t(model_->config().vocab_size));
  model_->forward(batch, cache, logits.data());
  warm_up_mtp(batch, cache, logits);
}

// max_running sequences of one token each (with drafts, 1 + K rows each), whose contexts add up
// to the pool's capacity: the first as long as the context allows, the others sharing the rest.
// With drafts the step runs twice: every row alone (the most query groups a step can have, as
// when no sequence drafts), then the rows after the first in groups of 1 + K at consecutive
// positions of one sequence (a token and its drafts: one query group, model/attention.h) beside
// the first alone, so the attention's gathering path for mixed group sizes grows its buffers too.
void Engine::warm_up_decode(const kernels::KvCacheView& cache, int64_t num_blocks) {
  const int64_t bs = cache.spec.block_size,
                n = std::min(options_.max_running * (1 + options_.draft_tokens), options_.max_batch_tokens);
  const int64_t capacity = num_blocks * bs;
  std::vector<int64_t> base(size_t(n), 0);
  base[0] = std::max<int64_t>(0, std::min(max_model_len_, capacity) - 1);
  const int64_t rest = std::max<int64_t>(0, capacity - base[0] - n);
  for (int64_t i = 1; i < n; ++i) base[size_t(i)] = std::min(max_model_len_ - 1, rest / std::max<int64_t>(1, n - 1));
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(n));
  std::vector<int32_t> tokens(size_t(n), 0);
  std::vector<float> logits(size_t(n) * size_t(model_->config().vocab_size));
  for (int64_t group : {int64_t(1), int64_t(1 + options_.draft_tokens)}) {
    std::vector<int64_t> context = base;
    int64_t cursor = 0;
    model::Batch batch;
    const int32_t* group_table = nullptr;
    for (int64_t i = 0; i < n; ++i) {
      if (group > 1 && i >= 2 && (i - 1) % group != 0) {
        context[size_t(i)] = context[size_t(i - 1)] + 1;
        batch.add(tokens.data() + i, 1, context[size_t(i)], group_table, model::Batch::Logits::kLast);
        continue;
      }
      auto& t = tables[size_t(i)];
      t.resize(size_t((context[size_t(i)] + group + bs - 1) / bs));
      for (auto& b : t) b = int32_t(cursor++ % num_blocks);
      group_table = t.data();
      batch.add(tokens.data() + i, 1, context[size_t(i)], t.data(), model::Batch::Logits::kLast);
    }
    model_->forward(batch, cache, logits.data());
    warm_up_mtp(batch, cache, logits);
    if (options_.draft_tokens == 0) break;  // one layout only
  }
}

// The MTP module over a warm-up step's rows (garbage in, unused out), so its buffers are grown.
void Engine::warm_up_mtp(const model::Batch& batch, const kernels::KvCacheView& cache, std::vector<float>& logits) {
  if (!model_->has_mtp()) return;
  std::vector<int64_t> rows(batch.tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  logits.resize(batch.logits_rows.size() * size_t(model_->config().vocab_size));
  model_->forward_mtp(batch, rows.data(), cache, logits.data());
}

}  // namespace dsinfer::engine
