// dsinfer logits: every position's logits for a token list, as a float32 .npy [n, vocab] — the
// interface the PyTorch reference checks the model through.
#include <cstdio>
#include <cmath>
#include <fstream>

#include "base/error.h"
#include "base/npy.h"
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

int run(Args& args) {
  std::string dir = args.require("model");
  std::vector<int32_t> ids = parse_id_list(args.require("tokens"), "tokens");
  std::string out = args.require("out");
  model::ModelOptions opt = model_options(args);
  opt.attention = parse_attention_mode(args.get_or("attention", "auto"));
  int64_t step_from = args.get_int("step-from", -1, -1);
  const GroupFlags group_flags_ = group_flags(args, opt);
  args.finish();
  RankContext rank(args);
  check(step_from == -1 || (step_from >= 1 && step_from <= int64_t(ids.size())),
        "--step-from must be between 1 and the number of tokens (", ids.size(), ")");
  // Fail on an unwritable output before spending time on the model.
  if (rank.is_root()) check(bool(std::ofstream(out, std::ios::binary | std::ios::app)), "cannot write --out ", out);

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
                        "       [--attention auto|absorbed|non-absorbed] [--no-weight-check]\n" GROUP_FLAGS_USAGE,
                        run});

}  // namespace
}  // namespace dsinfer::app
