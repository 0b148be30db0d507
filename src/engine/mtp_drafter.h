// Multi-token prediction as speculative decoding (docs/serving.md, "Speculative decoding").
//
// DeepSeek-V3 ships one MTP module: at position i it reads the main model's final state h_i and
// the embedding of token i+1 and predicts token i+2. After each step the engine runs it over the
// rows the step made valid, which writes the module's own KV layer, and the last row of a
// sequence still decoding drafts the token after its newest one; with k > 1 drafts the module
// runs again on its own output and draft, once per further draft. The next step feeds the newest
// token and its drafts together; the main model's logits at each row are sampled as they would be
// without drafts, in order, and a draft stands while it equals the token sampled before it
// (engine.cpp, process_drafts). So every token is drawn from the main model's distribution given
// the tokens before it, by the same sampler and RNG draw: the output is the one without MTP, for
// greedy and for seeded sampling alike. The drafts are the module's argmax; for such a point-mass
// draft, speculative sampling's acceptance test (accept d with probability min(1, p(d)/q(d)), else
// draw from the residual max(0, p - q)) is exactly "draw from p; accept if the draw is d".
//
// One MTP row's KV depends on the token after its position, so a prefix-cache hit that ends at a
// block boundary recomputes the hit's last token (cache::BlockManager's lookahead).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/sequence.h"
#include "model/deepseek.h"

namespace dsinfer::engine {

struct MtpCounters {
  uint64_t drafted = 0;    // draft tokens fed to the main model
  uint64_t accepted = 0;   // of them, equal to the token sampled at their row
  uint64_t verify_steps = 0;  // sequence-steps that fed drafts (each emits 1 + its accepted drafts)
};

class MtpDrafter {
 public:
  // draft_tokens: k >= 1; drafts are chosen among the first `vocab` ids (those the sampler
  // draws from). The capacities size the passes' buffers once.
  MtpDrafter(model::DeepSeekModel& model, const kernels::KvCacheView& cache, int draft_tokens, int64_t vocab,
             int64_t max_batch_tokens, int64_t max_rows);

  int draft_tokens() const { return k_; }
  // One sequence's rows of this step: positions [from, from + n), whose main-model states are
  // rows [main_row, main_row + n) of the step's forward and whose next tokens are
  // seq.tokens[from + 1, from + n] (all present). `decode`: the rows are generated tokens,
  // attended one by one as the main model did. `draft`: the last row drafts up to `max_drafts`
  // tokens after seq.tokens.back() into seq.drafts.
  void add(Sequence& seq, int64_t from, int64_t n, int64_t main_row, bool decode, int64_t max_drafts);
  // Runs the module over every row added (its KV layer written) and sets the drafts; then clears.
  // lockstep (a rank of an expert-parallel group): all k passes run, empty ones included, so
  // every rank's pass meets the others' in the module's MoE layer.
  void run(bool lockstep = false);
  bool empty() const { return batch_.tokens.empty(); }

 private:
  struct Drafting {
    Sequence* seq;
    int64_t row;         // its last row in the current pass
    int64_t position;    // that row's position
    int64_t max_drafts;
  };
  model::DeepSeekModel& model_;
  kernels::KvCacheView cache_;
  int k_;
  int64_t row_stride_, vocab_;  // a logits row's length (the model's vocabulary), ids drafted from
  model::Batch batch_;
  std::vector<int64_t> source_rows_;
  std::vector<Drafting> drafting_, next_;
  std::vector<float> logits_;
};

}  // namespace dsinfer::engine
