// dsinfer generate: greedy (or temperature) generation for one prompt, with the throughput and
// the weight bytes each decoded token reads.
#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/timer.h"
#include "command.h"
#include "engine/engine.h"
#include "engine/run_request.h"
#include "model/deepseek.h"
#include "model_flags.h"
#include "parallel/expert_load_recorder.h"
#include "group_setup.h"
#include "one_request.h"
#include "speculative_flags.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace dsinfer::app {
namespace {

int run(Args& args) {
  std::string dir = args.require("model");
  auto prompt = args.get("prompt");
  auto tokens = args.get("tokens");
  int64_t max_new = args.get_int("max-new-tokens", 16, 1, int64_t(1) << 31);
  double temperature = args.get_double("temperature", 0.0);  // the engine validates it; below 1e-5: greedy
  uint64_t seed = uint64_t(args.get_int("seed", 0));
  bool json_out = args.flag("json");
  bool chat = args.flag("chat");
  std::string dump_load = args.get_or("dump-expert-load", "");
  model::ModelOptions opt = model_options(args);
  const int draft_tokens = speculative_draft_tokens(args);
  opt.mtp = draft_tokens > 0;
  const GroupFlags group_flags_ = group_flags(args, opt);
  args.finish();
  RankContext rank(args);
  check(prompt.has_value() != tokens.has_value(), "give exactly one of --prompt TEXT or --tokens IDS");
  check(!chat || prompt, "--chat needs --prompt");

  auto m = rank.load(dir, opt, group_flags_);
  const auto& cfg = m->config();
  auto tok = tokenizer::Tokenizer::from_dir(dir);
  std::vector<int32_t> ids;
  if (prompt) {
    // As Hugging Face prepares a DeepSeek prompt, and as /v1/completions does: BOS (per
    // add_bos_token) then the text; or the chat template, which writes its own BOS, around a
    // single user turn, as /v1/chat/completions does.
    if (chat) {
      tokenizer::ChatMessage user;
      user.role = "user";
      user.content = *prompt;
      ids = tok.encode(tok.render_chat({user}, true));
    } else {
      ids = tok.encode_prompt(*prompt);
    }
  } else {
    ids = parse_id_list(*tokens, "tokens");
  }
  std::unique_ptr<parallel::ExpertLoadRecorder> recorder;
  check(dump_load.empty() || !group_flags_.online_eplb(),
        "--dump-expert-load records the whole run; online EPLB (--eplb-interval) records its own window: give one");
  if (!dump_load.empty()) {
    check(cfg.n_routed_experts > 0 && cfg.first_k_dense_replace < cfg.num_hidden_layers,
          "--dump-expert-load: this model has no MoE layers");
    recorder = std::make_unique<parallel::ExpertLoadRecorder>(parallel::ExpertLoadRecorderOptions::for_model(cfg));
    m->set_observer(recorder.get());
  }

  // The server's engine with one request's room: the prompt as one prefill chunk, then one
  // token per step, sampled as a seeded request is. Limits are the engine's to check.
  const double bytes_per_token = m->weights().bytes_per_token(cfg);
  engine::Engine eng(std::move(m), tok, one_request_options(int64_t(ids.size()), max_new, draft_tokens), rank.group(),
                     rank.boundary_task());
  if (!rank.is_root()) return serve_rank(eng);  // rank 0 submits and prints
  engine::SamplingParams params;
  params.temperature = temperature;
  params.seed = seed;
  params.max_tokens = max_new;
  const int64_t prompt_tokens = int64_t(ids.size());
  engine::RequestResult res = engine::run_request(eng, ids, params);
  check(res.error.empty(), res.error);
  const std::vector<int32_t>& out = res.tokens[0];
  // Timed on the engine's step thread (its TTFT and end-to-end clocks, this engine's only
  // request): a reader woken late (two cores, the step thread's workers busy) would take several
  // tokens at once and see a decode shorter than it was.
  const engine::EngineMetrics em = eng.metrics();
  const double ttft_s = em.ttft.count() ? em.ttft.sum() : res.first_token_s;
  const double prefill_tps = double(prompt_tokens) / ttft_s;
  const double decode_s = em.e2e.count() ? em.e2e.sum() - ttft_s : res.done_s - res.first_token_s;
  const int64_t decoded = int64_t(out.size()) - 1;  // tokens produced by decode steps
  const double decode_tps = decoded > 0 && decode_s > 0 ? double(decoded) / decode_s : 0.0;
  if (recorder) recorder->write_json(dump_load);
  const std::string text = tok.decode(out, true);
  // Speculative decoding: how often a draft equalled the token sampled at its row, and the
  // tokens each decode step emitted (1 without drafts).
  const double acceptance = em.mtp_acceptance_rate(), per_step = em.mtp_tokens_per_step();
  if (json_out) {
    nlohmann::json j = {{"token_ids", out},
                        {"text", text},
                        {"prompt_token_ids", ids},
                        {"prompt_tokens", prompt_tokens},
                        {"generated_tokens", out.size()},
                        {"prefill_tokens_per_s", prefill_tps},
                        {"decode_tokens_per_s", decode_tps},
                        {"weight_bytes_per_token", bytes_per_token},
                        {"decode_weight_gbps", decode_tps * bytes_per_token / 1e9},
                        {"draft_tokens", draft_tokens},
                        {"tokens_per_step", per_step},
                        // per step: the main model's forward, and the MTP module's passes
                        {"forward_ms_per_step", em.steps ? 1e3 * em.forward_seconds / double(em.steps) : 0.0},
                        {"mtp_ms_per_step", em.steps ? 1e3 * em.mtp_seconds / double(em.steps) : 0.0}};
    if (draft_tokens > 0) {
      j["mtp_acceptance_rate"] = acceptance;
      j["mtp_drafted_tokens"] = em.mtp_drafted;
      j["mtp_accepted_tokens"] = em.mtp_accepted;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s\n", text.c_str());
    std::fprintf(stderr, "prefill %.1f tok/s, decode %.2f tok/s (%.1f MB weights/token, %.2f GB/s)\n", prefill_tps,
                 decode_tps, bytes_per_token / 1e6, decode_tps * bytes_per_token / 1e9);
    if (draft_tokens > 0)
      std::fprintf(stderr, "MTP: %.1f%% of %llu drafts accepted, %.2f tokens per decode step\n", 100 * acceptance,
                   static_cast<unsigned long long>(em.mtp_drafted), per_step);
  }
  return 0;
}

const Registration reg({"generate", "generate tokens for one prompt",
                        "--model DIR (--prompt TEXT | --tokens IDS) [--max-new-tokens N] [--temperature T] [--seed S]\n"
                        "       [--chat] [--json] [--precision fp32|default] [--kv-cache-dtype bf16|fp8] [--dump-expert-load FILE.json]\n"
                        "       [--no-weight-check]   (skip the NaN/Inf scan of the weights at load)\n"
                        SPECULATIVE_FLAGS_USAGE GROUP_FLAGS_USAGE,
                        run});

}  // namespace
}  // namespace dsinfer::app
