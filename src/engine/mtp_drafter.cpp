#include "engine/mtp_drafter.h"

#include "base/error.h"
#include "kernels/sampling.h"

namespace dsinfer::engine {

MtpDrafter::MtpDrafter(model::DeepSeekModel& model, const kernels::KvCacheView& cache, int draft_tokens, int64_t vocab,
                       int64_t max_batch_tokens, int64_t max_rows)
    : model_(model), cache_(cache), k_(draft_tokens), row_stride_(model.config().vocab_size), vocab_(vocab) {
  check(draft_tokens >= 1, "--draft-tokens must be at least 1, got ", draft_tokens);
  check(model.has_mtp(), "speculative decoding with MTP needs the model loaded with its MTP module");
  batch_.tokens.reserve(size_t(max_batch_tokens));
  batch_.seqs.reserve(size_t(max_batch_tokens));
  batch_.logits_rows.reserve(size_t(max_rows));
  source_rows_.reserve(size_t(max_batch_tokens));
  drafting_.reserve(size_t(max_rows));
  next_.reserve(size_t(max_rows));
  logits_.resize(size_t(max_rows) * size_t(row_stride_));
}

void MtpDrafter::add(Sequence& seq, int64_t from, int64_t n, int64_t main_row, bool decode, int64_t max_drafts) {
  check(int64_t(seq.tokens.size()) > from + n, "MTP rows need the token after each of them");
  seq.drafts.clear();  // fed this step (or never): new ones come from this pass
  const int32_t* next = seq.tokens.data() + from + 1;
  if (decode) {  // one row per token, as the main model attended them
    for (int64_t i = 0; i < n; ++i) {
      batch_.add(next + i, 1, from + i, seq.blocks.data(), model::Batch::Logits::kNone, true);
      source_rows_.push_back(main_row + i);
    }
  } else {
    batch_.add(next, n, from, seq.blocks.data(), model::Batch::Logits::kNone, false);
    for (int64_t i = 0; i < n; ++i) source_rows_.push_back(main_row + i);
  }
  if (max_drafts <= 0) return;
  const int64_t last = int64_t(batch_.tokens.size()) - 1;
  batch_.logits_rows.push_back(last);
  drafting_.push_back({&seq, last, from + n - 1, max_drafts});
}

void MtpDrafter::run(bool lockstep) {
  // Pass 1 over every row added; then pass j drafts token j from pass j - 1's state and draft.
  for (int pass = 1; lockstep || !batch_.tokens.empty(); ++pass) {
    const size_t rows = batch_.logits_rows.size();
    if (rows * size_t(row_stride_) > logits_.size()) logits_.resize(rows * size_t(row_stride_));
    model_.forward_mtp(batch_, source_rows_.data(), cache_, logits_.data());
    for (size_t i = 0; i < rows; ++i)
      drafting_[i].seq->drafts.push_back(kernels::argmax(logits_.data() + i * size_t(row_stride_), vocab_));
    batch_.clear();
    source_rows_.clear();
    next_.clear();
    if (pass == k_) break;
    for (const Drafting& d : drafting_) {
      const int64_t position = d.position + 1;  // the draft's own position
      // Fewer drafts where the sequence has no block for the row yet (1 in 64 steps at most).
      if (int64_t(d.seq->drafts.size()) >= d.max_drafts ||
          position >= int64_t(d.seq->blocks.size()) * cache_.spec.block_size)
        continue;
      const int64_t row = int64_t(batch_.tokens.size());
      batch_.add(&d.seq->drafts.back(), 1, position, d.seq->blocks.data(), model::Batch::Logits::kLast, true);
      source_rows_.push_back(d.row);
      next_.push_back({d.seq, row, position, d.max_drafts});
    }
    drafting_.swap(next_);
  }
  drafting_.clear();
}

}  // namespace dsinfer::engine
