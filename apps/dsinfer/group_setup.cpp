#include "group_setup.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <sstream>

#include "base/byte_stream.h"
#include "base/log.h"
#include "expert_balance_task.h"
#include "model/config.h"
#include "parallel/eplb.h"
#include "parallel/expert_placement.h"
#include "parallel/mpi_runtime.h"

namespace dsinfer::app {

namespace {

// The start-up exchanges wait for the slowest rank's load, not for a step.
constexpr double kStartupTimeoutS = 1800;

parallel::DispatchMode parse_dispatch(const std::string& s) {
  if (s == "auto") return parallel::DispatchMode::kAuto;
  if (s == "normal") return parallel::DispatchMode::kNormal;
  if (s == "low-latency") return parallel::DispatchMode::kLowLatency;
  fail("--ep-dispatch must be auto, normal or low-latency, got '", s, "'");
}

std::string encode_flags(const std::string& command, const std::map<std::string, std::string>& flags) {
  std::vector<uint8_t> bytes;
  ByteWriter w(bytes);
  w.put_string(command);
  w.put(uint64_t(flags.size()));
  for (auto& [k, v] : flags) {
    w.put_string(k);
    w.put_string(v);
  }
  return std::string(bytes.begin(), bytes.end());
}

std::pair<std::string, std::map<std::string, std::string>> decode_flags(const std::string& s) {
  ByteReader r(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  std::pair<std::string, std::map<std::string, std::string>> out;
  out.first = r.get_string();
  const uint64_t n = r.get<uint64_t>();
  for (uint64_t i = 0; i < n; ++i) {
    std::string k = r.get_string();
    out.second[k] = r.get_string();
  }
  return out;
}

// The first difference between rank `r`'s command line and rank 0's, or "".
std::string difference(int r, const std::string& mine, const std::string& root) {
  auto [cmd, flags] = decode_flags(mine);
  auto [cmd0, flags0] = decode_flags(root);
  if (cmd != cmd0) return str("rank ", r, " runs `dsinfer ", cmd, "` but rank 0 runs `dsinfer ", cmd0, "`");
  for (auto& [k, v] : flags0) {
    auto it = flags.find(k);
    if (it == flags.end()) return str("rank 0 was given --", k, " ", v, " but rank ", r, " was not");
    if (it->second != v) return str("rank ", r, " was given --", k, " ", it->second, " but rank 0 --", k, " ", v);
  }
  for (auto& [k, v] : flags)
    if (!flags0.count(k)) return str("rank ", r, " was given --", k, " ", v, " but rank 0 was not");
  return "";
}

// Where this group's experts live: contiguous blocks, a plan file, or an EPLB plan made here from
// a recorded load with redundant slots. Every rank computes the same plan from the same file.
parallel::ExpertPlacement place_experts(const model::ModelConfig& cfg, const GroupFlags& flags, int ranks) {
  if (!flags.placement.empty()) return parallel::ExpertPlacement::from_eplb_json(flags.placement, cfg, ranks);
  if (flags.redundant_experts == 0) return parallel::ExpertPlacement::contiguous(cfg, ranks);
  check(flags.redundant_experts % ranks == 0, "--redundant-experts ", flags.redundant_experts,
        " must be a multiple of the ", ranks, " ranks (each rank holds the same number of slots)");
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) moe_layers += cfg.is_moe_layer(l);
  // Without a recorded load (online EPLB will re-place them from the live one) the replicas start
  // from an even load.
  const parallel::ExpertLoad load = [&] {
    if (!flags.expert_load.empty()) return parallel::read_expert_load_file(flags.expert_load);
    parallel::ExpertLoad even(int(moe_layers), int(cfg.n_routed_experts));
    std::fill(even.values.begin(), even.values.end(), 1.0);
    return even;
  }();
  check(load.num_layers == moe_layers && load.num_experts == cfg.n_routed_experts, flags.expert_load, ": a load of ",
        load.num_layers, " layers x ", load.num_experts, " experts, but this model has ", moe_layers, " MoE layers x ",
        cfg.n_routed_experts, " routed experts");
  const parallel::ExpertPlacement placed = parallel::ExpertPlacement::from_load(
      load, cfg, ranks, int(cfg.n_routed_experts + flags.redundant_experts), parallel::parse_eplb_policy(flags.eplb_policy));
  const std::string without = cfg.n_routed_experts % ranks == 0
                                  ? str(parallel::ExpertPlacement::contiguous(cfg, ranks).rank_max_over_mean(load),
                                        " without, ")
                                  : "";
  log_info("EPLB (", flags.eplb_policy, ") placed ", flags.redundant_experts, " redundant experts from ",
           flags.expert_load.empty() ? std::string("an even load") : flags.expert_load, ": max/mean load per rank ", without, placed.rank_max_over_mean(load),
           " with (mean over MoE layers)");
  return placed;
}

// --eplb-interval: "100" forward steps, or "30s" seconds.
void parse_eplb_interval(const std::string& text, GroupFlags& g) {
  const bool seconds = !text.empty() && text.back() == 's';
  const std::string number = seconds ? text.substr(0, text.size() - 1) : text;
  char* end = nullptr;
  const double v = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  const bool whole = v == std::floor(v) && v < 1e15;
  check(end && *end == '\0' && v >= 0 && std::isfinite(v) && (seconds || whole),
        "--eplb-interval must be a number of forward steps (100) or of seconds (30s), got '", text, "'");
  if (seconds) g.eplb_interval_seconds = v;
  else g.eplb_interval_steps = int64_t(v);
}

}  // namespace

int serve_rank(engine::Engine& eng) {
  eng.wait_stopped();
  check(eng.group_failure().empty(), eng.group_failure());
  return 0;
}

GroupFlags group_flags(Args& args, model::ModelOptions& opt) {
  GroupFlags g;
  g.ep_size = args.get_int("ep-size", 0, 0, 1 << 20);
  g.placement = args.get_or("eplb-placement", "");
  g.redundant_experts = args.get_int("redundant-experts", 0, 0, 1 << 16);
  g.expert_load = args.get_or("expert-load", "");
  g.eplb_policy = args.get_or("eplb-policy", g.eplb_policy);
  check(g.placement.empty() || g.redundant_experts == 0,
        "give either --eplb-placement (a plan) or --redundant-experts with --expert-load (planned at start), not both");
  parse_eplb_interval(args.get_or("eplb-interval", "0"), g);
  check(g.redundant_experts == 0 || !g.expert_load.empty() || g.online_eplb(),
        "--redundant-experts places its replicas by an expert load: add --expert-load FILE (written by "
        "`dsinfer generate --dump-expert-load FILE`), or --eplb-interval to place them from the live load");
  g.dispatch = parse_dispatch(args.get_or("ep-dispatch", "auto"));
  g.low_latency_tokens = args.get_int("ep-low-latency-tokens", g.low_latency_tokens, 0, 1 << 16);
  g.timeout_s = args.get_double("ep-timeout", g.timeout_s, 0, 86400, true);
  const std::string act = args.get_or("expert-activations", "bf16");
  check(act == "bf16" || act == "fp8", "--expert-activations must be bf16 or fp8, got '", act, "'");
  opt.expert_activations = act == "fp8" ? model::ExpertActivations::kFp8 : model::ExpertActivations::kBf16;
  // Two micro-batches: each one's dispatch and combine travel while the other computes
  // (model/micro_batches.h). The same bits either way.
  opt.micro_batches = int(args.get_int("micro-batches", opt.micro_batches, 1, 2));
  return g;
}

RankContext::RankContext(const Args& args) {
  comm_ = parallel::world_group();
  if (comm_.size() == 1) return;
  set_log_prefix(str("rank ", comm_.rank(), ": "));
  const std::vector<std::string> all =
      comm_.allgather_strings(encode_flags(args.command(), args.given()), "comparing the ranks' flags", kStartupTimeoutS);
  for (int r = 1; r < comm_.size(); ++r) {
    const std::string d = difference(r, all[size_t(r)], all[0]);
    check(d.empty(), "the ranks of an expert-parallel group must run the same command: ", d);
  }
}

std::unique_ptr<model::DeepSeekModel> RankContext::load(const std::string& dir, model::ModelOptions opt,
                                                        const GroupFlags& flags) {
  check(flags.ep_size == 0 || flags.ep_size == comm_.size(), "--ep-size ", flags.ep_size, " but ", comm_.size(),
        " ranks were started (mpirun -np ", flags.ep_size, " runs that many)");
  if (comm_.size() == 1 && flags.online_eplb())
    log_warn("--eplb-interval moves experts between the ranks of an expert-parallel group; one process has none to move");
  if (comm_.size() == 1 && flags.placement.empty() && flags.redundant_experts == 0)
    return model::DeepSeekModel::load(dir, opt);
  comm_.set_timeout(flags.timeout_s);
  // Load, or learn why not; then every rank hears from every other before anyone goes on.
  std::unique_ptr<model::DeepSeekModel> m;
  std::string error;
  try {
    const model::ModelConfig cfg = model::load_config(dir + "/config.json");
    parallel::ExpertPlacement placement = place_experts(cfg, flags, comm_.size());
    parallel::ExpertParallelOptions eo;
    eo.precision = opt.precision;
    eo.activations = opt.expert_activations;
    eo.mode = flags.dispatch;
    eo.low_latency_tokens = flags.low_latency_tokens;
    executor_ = std::make_unique<parallel::ExpertParallelMoe>(comm_, std::move(placement), cfg, eo);
    opt.executor = executor_.get();
    m = model::DeepSeekModel::load(dir, opt);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const std::vector<std::string> errors = comm_.allgather_strings(error, "the ranks' model loads", kStartupTimeoutS);
  // Every rank throws the same message, so whichever rank mpirun lets print first (the first to
  // exit non-zero ends the others) names the rank that failed and why.
  for (int r = 0; r < comm_.size(); ++r)
    if (!errors[size_t(r)].empty()) fail("rank ", r, " failed to start: ", errors[size_t(r)]);
  const uint64_t fp = m->fingerprint();
  std::vector<uint64_t> fps(size_t(comm_.size()));
  comm_.allgather(&fp, sizeof fp, fps.data(), "the ranks' model fingerprints", kStartupTimeoutS);
  for (int r = 1; r < comm_.size(); ++r)
    check(fps[size_t(r)] == fps[0], "rank ", r, " loaded a different model than rank 0 (fingerprint ", std::hex,
          fps[size_t(r)], " vs ", fps[0], std::dec, "): every rank must load the same checkpoint");
  const auto& cfg = m->config();
  const double all_experts = double(executor_->expert_bytes()) * double(executor_->placement().num_logical()) /
                             double(std::max(1, executor_->placement().slots_per_rank()));
  log_info("holds ", executor_->placement().slots_per_rank(), " of ", cfg.n_routed_experts,
           " routed experts per MoE layer", executor_->placement().redundant_slots() > 0 ? " (with redundant replicas)" : "",
           ": ", double(executor_->expert_bytes()) / 1e9, " GB of expert weights of ", all_experts / 1e9, " GB");
  parallel::OnlineEplb* eplb = nullptr;
  if (flags.online_eplb() && comm_.size() > 1) {
    // The live load since the last plan (OnlineEplb resets the recorder at each).
    recorder_ = std::make_unique<parallel::ExpertLoadRecorder>(parallel::ExpertLoadRecorderOptions::for_model(cfg));
    m->set_observer(recorder_.get());
    parallel::OnlineEplbOptions oo;
    oo.interval_steps = flags.eplb_interval_steps;
    oo.interval_seconds = flags.eplb_interval_seconds;
    oo.policy = parallel::parse_eplb_policy(flags.eplb_policy);
    if (const char* f = std::getenv("DSINFER_EPLB_FAULT")) oo.fault = f;
    eplb_ = std::make_unique<parallel::OnlineEplb>(comm_, *executor_, *recorder_, cfg, oo);
    eplb = eplb_.get();
    log_info("online EPLB every ", flags.eplb_interval_steps > 0 ? str(flags.eplb_interval_steps, " steps")
                                                                  : str(flags.eplb_interval_seconds, " s"));
  }
  if (comm_.size() > 1) task_ = std::make_unique<ExpertBalanceTask>(*executor_, eplb);
  return m;
}

}  // namespace dsinfer::app
