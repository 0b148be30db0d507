#include "model/micro_batches.h"

#include <algorithm>
#include <numeric>

namespace dsinfer::model {

double attention_work(const SequenceChunk& s) {
  const double n = double(s.num_tokens), c = double(s.cached_tokens);
  return n * c + n * (n + 1) / 2;  // token i attends to c + i + 1 tokens
}

void split_micro_batches(const Batch& batch, MicroBatchSplit& out) {
  const size_t S = batch.seqs.size();
  std::vector<size_t>& order = out.order;
  order.resize(S);
  std::iota(order.begin(), order.end(), size_t(0));
  // Heaviest first; among equals the one with more tokens (the projections and experts), then
  // the step's order, so the split is deterministic.
  // (std::sort with the index as the last key: deterministic, and no buffer as stable_sort takes.)
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double wa = attention_work(batch.seqs[a]), wb = attention_work(batch.seqs[b]);
    if (wa != wb) return wa > wb;
    if (batch.seqs[a].num_tokens != batch.seqs[b].num_tokens) return batch.seqs[a].num_tokens > batch.seqs[b].num_tokens;
    return a < b;
  });
  std::vector<uint8_t>& mb_of = out.micro_batch_of;
  mb_of.assign(S, 0);
  out.work[0] = out.work[1] = 0;
  out.num_tokens[0] = out.num_tokens[1] = 0;
  for (size_t i : order) {
    const int m = out.work[1] < out.work[0] ? 1 : 0;
    mb_of[i] = uint8_t(m);
    out.work[m] += attention_work(batch.seqs[i]);
    out.num_tokens[m] += batch.seqs[i].num_tokens;
  }
  out.first_token[0] = 0;
  out.first_token[1] = out.num_tokens[0];

  // Lay the step out again: micro-batch 0's sequences, then 1's, each in the step's order.
  Batch& p = out.permuted;
  p.clear();
  std::vector<int64_t>& new_row = out.new_row;
  new_row.resize(batch.tokens.size());
  for (int m = 0; m < 2; ++m) {
    Batch& part = out.part[m];
    part.clear();
    for (size_t i = 0; i < S; ++i) {
      if (mb_of[i] != m) continue;
      const SequenceChunk& s = batch.seqs[i];
      const int32_t* ids = batch.tokens.data() + s.first_token;
      for (int64_t t = 0; t < s.num_tokens; ++t) new_row[size_t(s.first_token + t)] = int64_t(p.tokens.size()) + t;
      p.add(ids, s.num_tokens, s.cached_tokens, s.block_table, Batch::Logits::kNone, s.decode);
      part.add(ids, s.num_tokens, s.cached_tokens, s.block_table, Batch::Logits::kNone, s.decode);
    }
  }
  for (int64_t row : batch.logits_rows) p.logits_rows.push_back(new_row[size_t(row)]);
}

}  // namespace dsinfer::model
