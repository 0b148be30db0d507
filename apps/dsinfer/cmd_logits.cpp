// dsinfer logits: every position's logits for a token list, as a float32 .npy [n, vocab] — the
// interface the PyTorch reference checks the model through.
#include <cstdio>
#include <cmath>
#include <fstream>

#include "base/error.h"
#include "base/npy.h"
#include "cache/kv_pool.h"
#include "command.h"
#include "model/deepseek.h"
#include "model_flags.h"
#include "engine/engine.h"
#include "engine/run_request.h"
#include "group_setup.h"
#include "one_request.h"
#include "tokenizer/tokenizer.h"

namespace dsinfer::app {
namespace {

// --mtp-out: the MTP module's logits at positions 0..n-2 (row i predicts token i + 2 from the
// main model's state at i and token i + 1), straight from the model: a check of the module
// against a reference, not of decoding (which drafts with it: engine/mtp_drafter.h). It is the one
// deliberate path around the engine (docs/architecture.md, "Each limit is validated once").
void write_mtp_logits(const std::string& dir, model::ModelOptions opt, const std::vector<int32_t>& ids,
                      const std::string& out) {
  const int64_t n = int64_t(ids.size());
  check(n >= 2, "--mtp-out needs at least two tokens");
  opt.mtp = true;
  auto m = model::DeepSeekModel::load(dir, opt);
  const model::KvCacheSpec spec = m->cache_spec();
  const int64_t blocks = (n + spec.block_size - 1) / spec.block_size;
  cache::KvPool pool(spec, blocks);
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  for (size_t b = 0; b < table.size(); ++b) table[b] = int32_t(b);
  const int64_t vocab = m->config().vocab_size;
  std::vector<float> main_logits(static_cast<size_t>(vocab)), logits(static_cast<size_t>((n - 1) * vocab));
  model::Batch batch;
  batch.add(ids.data(), n, 0, table.data(), model::Batch::Logits::kLast, false);
  m->forward(batch, pool.view(), main_logits.data());
  model::Batch mtp;
  mtp.add(ids.data() + 1, n - 1, 0, table.data(), model::Batch::Logits::kAll, false);
  std::vector<int64_t> rows(size_t(n - 1));
  for (int64_t i = 0; i < n - 1; ++i) rows[size_t(i)] = i;
  m->forward_mtp(mtp, rows.data(), pool.view(), logits.data());
  write_npy_f32(out, logits.data(), {n - 1, vocab});
}

int run(Args& args) {
  std::string dir = args.require("model");
  std::vector<int32_t> ids = parse_id_list(args.require("tokens"), "tokens");
  std::string out = args.require("out");
  model::ModelOptions opt = model_options(args);
  opt.attention = parse_attention_mode(args.get_or("attention", "auto"));
  int64_t step_from = args.get_int("step-from", -1, -1);
  const std::string mtp_out = args.get_or("mtp-out", "");
  const GroupFlags group_flags_ = group_flags(args, opt);
  args.finish();
  RankContext rank(args);
  check(step_from == -1 || (step_from >= 1 && step_from <= int64_t(ids.size())),
        "--step-from must be between 1 and the number of tokens (", ids.size(), ")");
  // Fail on an unwritable output before spending time on the model.
  if (rank.is_root()) check(bool(std::ofstream(out, std::ios::binary | std::ios::app)), "cannot write --out ", out);

  if (!mtp_out.empty()) {
    check(rank.size() == 1, "--mtp-out runs in one process");
    write_mtp_logits(dir, opt, ids, mtp_out);
  }
  auto m = rank.load(dir, opt, group_flags_);
  const int64_t vocab = m->config().vocab_size;
  auto tok = tokenizer::Tokenizer::from_dir(dir);
  // Through the engine as any request: the first `prefill` tokens as one prefill chunk, then
  // the rest fed one per step (teacher-forced, so the decode path sees exactly these tokens),
  // every position's logits returned. The last forced token (any id) only ends the request: no
  // row is ever sampled, so a broken model's logits still come back to be written and named.
  const int64_t n = int64_t(ids.size());
  const int64_t prefill = step_from < 0 ? n : step_from;
  engine::SamplingParams params;
  params.temperature = 0;
  params.ignore_eos = true;
  params.return_logits = true;
  params.forced_tokens.assign(ids.begin() + prefill, ids.end());
  params.forced_tokens.push_back(0);
  params.max_tokens = int64_t(params.forced_tokens.size());
  engine::Engine eng(std::move(m), std::move(tok), one_request_options(prefill, params.max_tokens), rank.group(),
                     rank.boundary_task());
  if (!rank.is_root()) return serve_rank(eng);  // rank 0 writes the file
  engine::RequestResult res =
      engine::run_request(eng, std::vector<int32_t>(ids.begin(), ids.begin() + prefill), params);
  check(res.error.empty(), res.error);
  check(res.logits_rows == n, "the engine returned ", res.logits_rows, " logits rows for ", n, " tokens");
  const std::vector<float>& all = res.logits;
  write_npy_f32(out, all.data(), {int64_t(ids.size()), vocab});
  // Written anyway (to look at), but a broken model must not look like a successful run.
  for (size_t i = 0; i < all.size(); ++i)
    check(std::isfinite(all[i]), "the model produced a non-finite logit (", all[i], " at position ",
          int64_t(i) / vocab, ", token id ", int64_t(i) % vocab, "); its weights or activations are broken (", out,
          " was written anyway)");
  return 0;
}

const Registration reg({"logits", "write every position's logits for a token list to a .npy file",
                        "--model DIR --tokens 5,17,301 --out FILE.npy [--precision fp32|default] [--kv-cache-dtype bf16|fp8] [--step-from K]\n"
                        "       [--attention auto|absorbed|non-absorbed] [--no-weight-check] [--mtp-out FILE.npy]\n"
                        "       (--mtp-out: also the MTP module's logits [n - 1, vocab]: row i predicts token i + 2)\n" GROUP_FLAGS_USAGE,
                        run});

}  // namespace
}  // namespace dsinfer::app
