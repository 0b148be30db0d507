// dsinfer serve: the OpenAI/DeepSeek-compatible HTTP server over the continuous-batching engine.
// SIGTERM or SIGINT drains: new requests get 503, in-flight ones finish (or end cleanly after
// --drain-timeout), then the process exits 0. A second signal exits at once (status 128+signal).
// Under `mpirun -np N` (docs/parallel.md) rank 0 serves HTTP and every rank runs an engine over its
// share of the experts; SIGTERM to rank 0 drains and then stops every rank. If the group fails (a
// rank dies or hangs past --ep-timeout), every waiting client gets the error and rank 0 exits 1.
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "base/error.h"
#include "base/log.h"
#include "base/timer.h"
#include "command.h"
#include "engine/engine.h"
#include "kernels/cpu_features.h"
#include "model/deepseek.h"
#include "group_setup.h"
#include "model_flags.h"
#include "serve/server.h"
#include "serve_accounting.h"
#include "speculative_flags.h"
#include "stop_signals.h"
#include "tokenizer/tokenizer.h"
#include "transfer/ucx_agent.h"

namespace dsinfer::app {
namespace {

int run(Args& args) {
  std::string dir = args.require("model");
  serve::ServerOptions so;
  engine::EngineOptions eo;
  so.http.host = args.get_or("host", so.http.host);
  so.http.port = int(args.get_int("port", so.http.port, 0, 65535));
  std::string names = args.get_or("served-model-name", "");
  // Ranges wide enough for any real deployment, narrow enough that nothing computed from them
  // overflows (a pool of inf GB, a context of -5 tokens).
  // A size in GB (bounded by the memory left after loading and warm-up), or "auto": that memory's
  // kv_memory_fraction (engine/engine_options.h).
  if (args.get_or("kv-cache-gb", "") == "auto")
    eo.kv_cache_gb = 0;
  else
    eo.kv_cache_gb = args.get_double("kv-cache-gb", eo.kv_cache_gb, 0, 100000, true);
  eo.max_batch_tokens = args.get_int("max-batch-tokens", eo.max_batch_tokens, 1, 1 << 24);
  eo.max_running = args.get_int("max-running-requests", eo.max_running, 1, 1 << 16);
  eo.max_queued = args.get_int("max-queued-requests", eo.max_queued, 1, 1 << 24);
  eo.max_model_len = args.get_int("max-model-len", eo.max_model_len, 0, int64_t(1) << 31);  // 0: the model's
  eo.prefix_caching = !args.flag("no-prefix-cache");
  // The prefix cache's disk tier (docs/serving.md, "The disk tier").
  eo.kv_disk_dir = args.get_or("kv-disk-dir", "");
  eo.kv_disk_gb = args.get_double("kv-disk-gb", eo.kv_disk_gb, 0.001, 1e9);
  eo.kv_disk_ttl_s = args.get_double("kv-disk-ttl-hours", eo.kv_disk_ttl_s / 3600, 0, 1e6) * 3600;
  eo.kv_disk_direct_io = args.flag("kv-disk-direct-io");
  const double body_mb = args.get_double("max-body-mb", double(so.http.limits.max_body_bytes) / (1 << 20), 0.001, 4096);
  const int64_t http_threads = args.get_int("http-threads", so.http.worker_threads, 1, 256);
  const int64_t max_connections = args.get_int("max-connections", int64_t(so.http.max_connections), 1, 1000000);
  so.http.header_timeout_s = args.get_double("header-timeout", so.http.header_timeout_s, 0, 3600, true);
  so.http.body_timeout_s = args.get_double("body-timeout", so.http.body_timeout_s, 0, 3600, true);
  so.http.idle_timeout_s = args.get_double("keep-alive-timeout", so.http.idle_timeout_s, 0, 3600, true);
  so.drain_timeout_s = args.get_double("drain-timeout", so.drain_timeout_s, 0, 86400);
  const std::string role = args.get_or("role", "both");
  if (role == "prefill")
    so.role = serve::PdRole::kPrefill;
  else if (role == "decode")
    so.role = serve::PdRole::kDecode;
  else
    check(role == "both", "--role must be prefill, decode or both, got '", role, "'");
  so.kv_transfer_timeout_s = args.get_double("kv-transfer-timeout", so.kv_transfer_timeout_s, 0.1, 3600);
  model::ModelOptions mo = model_options(args);
  eo.draft_tokens = speculative_draft_tokens(args);
  mo.mtp = eo.draft_tokens > 0;
  const GroupFlags group_flags_ = group_flags(args, mo);
  AccountingConfig ac;
  ac.prices.input_cache_hit = args.get_double("price-input-cache-hit", ac.prices.input_cache_hit, 0, 1e9);
  ac.prices.input_cache_miss = args.get_double("price-input-cache-miss", ac.prices.input_cache_miss, 0, 1e9);
  ac.prices.output = args.get_double("price-output", ac.prices.output, 0, 1e9);
  ac.gpu_hour_usd = args.get_double("gpu-hour-usd", ac.gpu_hour_usd, 0, 1e9);
  ac.gpus = args.get_double("gpus", ac.gpus, 0, 1e9);
  args.finish();
  RankContext rank(args);
  so.http.limits.max_body_bytes = size_t(body_mb * (1 << 20));
  so.http.worker_threads = int(http_threads);
  so.http.max_connections = size_t(max_connections);
  so.model_names = split_commas(names);
  if (so.model_names.empty())
    so.model_names.push_back(std::filesystem::weakly_canonical(std::filesystem::path(dir)).filename().string());

  StopSignals signals;  // before any other thread exists

  auto tok = tokenizer::Tokenizer::from_dir(dir);
  // Checked once here, not blamed on each client: /v1/chat/completions then answers 501.
  if (!tok.chat_template_problem().empty())
    log_warn("this model has no usable chat template (", tok.chat_template_problem(),
             "): /v1/chat/completions will answer 501; /v1/completions works");
  auto m = rank.load(dir, mo, group_flags_);
  const DType kv_dtype = m->cache_dtype();
  const char* kv_name = kv_dtype == DType::kF8E4M3 ? "fp8" : kv_dtype == DType::kBF16 ? "bf16" : "fp32";
  engine::Engine eng(std::move(m), std::move(tok), eo, rank.group(), rank.boundary_task());
  if (!rank.is_root()) {  // HTTP is rank 0's; this rank steps with the group until rank 0 stops it
    signals.unblock();  // a signal here (mpirun ending the job) ends it
    return serve_rank(eng);
  }
  // Disaggregated roles move KV over UCX (docs/serving.md). In an expert-parallel group rank 0
  // holds the endpoint and runs the disaggregated requests (engine.h).
  std::unique_ptr<transfer::UcxAgent> agent;
  if (so.role != serve::PdRole::kBoth) {
    agent = std::make_unique<transfer::UcxAgent>(str("dsinfer-", role));
    so.kv_agent = agent.get();
  }
  LiveAccounting accounting(ac, now_seconds());
  serve::Server server(eng, so, accounting.hooks());
  int port = server.bind();
  std::printf("dsinfer serve: model '%s' (context %lld tokens, KV cache %lld tokens in %s) listening on http://%s:%d\n",
              so.model_names[0].c_str(), (long long)eng.max_model_len(), (long long)eng.kv_capacity_tokens(), kv_name,
              so.http.host.c_str(), port);
  std::printf("dsinfer serve: kernel path %s (DSINFER_ISA chooses; dsinfer --version lists this CPU's paths)\n",
              kernels::isa_name(kernels::active_isa()));
  if (so.role != serve::PdRole::kBoth)
    std::printf("dsinfer serve: role %s (for a router: docs/serving.md), KV transfer timeout %g s\n", role.c_str(),
                so.kv_transfer_timeout_s);
  if (eo.draft_tokens > 0)
    std::printf("dsinfer serve: speculative decoding with the model's MTP module, %d draft token%s a step\n",
                eo.draft_tokens, eo.draft_tokens == 1 ? "" : "s");
  if (!eo.kv_disk_dir.empty())
    std::printf("dsinfer serve: KV disk tier in %s (%g GB%s)\n", eo.kv_disk_dir.c_str(), eo.kv_disk_gb,
                eo.kv_disk_direct_io ? ", O_DIRECT reads" : "");
  if (rank.size() > 1)
    std::printf("dsinfer serve: expert-parallel group of %d ranks (DP attention: each request runs on one rank)\n",
                rank.size());
  std::fflush(stdout);

  // A failed group has already failed every request: let the errors go out, then stop.
  signals.serve_until_stopped("serve", [&] { server.serve(); }, [&] { server.drain(); },
                              [&] { return !eng.group_failure().empty(); });
  eng.shutdown();
  agent.reset();  // before the server: the agent's thread calls into the server's KV receiver
  check(eng.group_failure().empty(), eng.group_failure());
  std::printf("dsinfer serve: stopped\n");
  std::fflush(stdout);
  return 0;
}

const Registration reg({"serve", "OpenAI/DeepSeek-compatible HTTP server with continuous batching",
                        "--model DIR [--host 127.0.0.1] [--port 8000 (0: any free port)] [--served-model-name NAME[,NAME]]\n"
                        "       [--kv-cache-gb 2|auto] [--max-batch-tokens 2048] [--max-running-requests 64]\n"
                        "       [--max-queued-requests 256] [--max-model-len N] [--no-prefix-cache]\n"
                        "       [--max-body-mb 8] [--http-threads 2] [--max-connections 1024] [--header-timeout 10]\n"
                        "       [--body-timeout 30] [--keep-alive-timeout 5] [--drain-timeout 30] [--precision default|fp32]\n"
                        "       [--role both|prefill|decode] [--kv-transfer-timeout 30]   (disaggregated serving behind `dsinfer router`)\n"
                        "       [--kv-cache-dtype bf16|fp8]   (fp8: FlashMLA's FP8 latent rows, ~1.76x the tokens per GB) [--no-weight-check]\n"
                        "       [--kv-disk-dir DIR [--kv-disk-gb 10] [--kv-disk-ttl-hours 0] [--kv-disk-direct-io]]\n"
                        "       (the prefix cache's disk tier; instances sharing DIR share blocks)\n"
                        "       [--price-input-cache-hit 0.14] [--price-input-cache-miss 0.55] [--price-output 2.19]\n"
                        "       (USD per million tokens) [--gpu-hour-usd 2] [--gpus 1]   (GET /v1/accounting, /metrics)\n"
                        SPECULATIVE_FLAGS_USAGE GROUP_FLAGS_USAGE,
                        run});

}  // namespace
}  // namespace dsinfer::app
