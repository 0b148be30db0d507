// The two-micro-batch overlap's split (DeepSeek's inference system: one micro-batch computes while
// the other's dispatch or combine is in flight). A step's sequences are dealt into two
// micro-batches of whole sequences, balanced by attention work, and the step is laid out again
// with micro-batch 0's tokens first: the model runs that permuted step, micro-batch m on rows
// [first_token[m], first_token[m] + num_tokens[m]). Every row is computed as it would be in the
// whole step (attention is per sequence, GEMM rows and the experts' sums are independent of their
// neighbours), so outputs are bit-identical with the split and without.
#pragma once

#include <cstdint>
#include <vector>

#include "model/batch.h"

namespace dsinfer::model {

// What a sequence's chunk costs in core attention: each new token attends to every token before
// it, so the sum over its new tokens of the context length (DeepSeek's prefill balancer uses the
// same measure).
double attention_work(const SequenceChunk& s);

struct MicroBatchSplit {
  Batch permuted;              // the step, micro-batch 0's sequences first; logits in the caller's order
  Batch part[2];               // each micro-batch alone (first_token relative to its first row)
  int64_t first_token[2] = {0, 0}, num_tokens[2] = {0, 0};
  double work[2] = {0, 0};
  // Scratch, kept so that a steady-state step allocates nothing.
  std::vector<size_t> order;
  std::vector<uint8_t> micro_batch_of;
  std::vector<int64_t> new_row;
};

// Deals the sequences, heaviest first, each to the lighter micro-batch (ties to micro-batch 0);
// each micro-batch keeps the step's order of its sequences. `out`'s buffers are reused.
void split_micro_batches(const Batch& batch, MicroBatchSplit& out);

}  // namespace dsinfer::model
