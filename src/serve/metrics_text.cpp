#include "serve/metrics_text.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "base/error.h"
#include "kernels/cpu_features.h"

namespace dsinfer::serve {
namespace {

// Shortest text that reads back as the same double (0.025, not 0.025000000000000001).
std::string num(double v) {
  char buf[64];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

struct Writer {
  std::ostringstream os;
  std::string labels;  // model="..."

  void head(const std::string& name, const char* type, const char* help) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const std::string& name, double v, const std::string& extra = {}) {
    os << name << '{' << labels << (extra.empty() ? "" : ",") << extra << "} " << num(v) << '\n';
  }
  void counter(const std::string& name, const char* help, double v) {
    head(name, "counter", help);
    sample(name, v);
  }
  void gauge(const std::string& name, const char* help, double v) {
    head(name, "gauge", help);
    sample(name, v);
  }
  void histogram(const std::string& name, const char* help, const engine::Histogram& h) {
    head(name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h.bounds().size(); ++i) {
      cum += h.counts()[i];
      sample(name + "_bucket", double(cum), "le=\"" + num(h.bounds()[i]) + "\"");
    }
    cum += h.counts().back();
    sample(name + "_bucket", double(cum), "le=\"+Inf\"");
    sample(name + "_sum", h.sum());
    sample(name + "_count", double(h.count()));
  }
};

std::string escape_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void write_disk_tier(Writer& w, const cache::DiskTierMetrics& d) {
  w.counter("dsinfer_kv_disk_lookups_total", "Prompts looked up on disk after the RAM index missed.", double(d.lookups));
  w.counter("dsinfer_kv_disk_lookup_blocks_total", "KV blocks asked of the disk tier.", double(d.lookup_blocks));
  w.counter("dsinfer_kv_disk_hit_blocks_total", "KV blocks found on disk and verified.", double(d.hit_blocks));
  w.counter("dsinfer_kv_disk_miss_blocks_total", "KV blocks asked of the disk tier and not loaded from it.",
            double(d.lookup_blocks - d.hit_blocks));
  w.counter("dsinfer_kv_disk_bad_blocks_total",
            "Block files that failed verification (truncated, corrupt, foreign): removed and recomputed.",
            double(d.bad_blocks));
  w.counter("dsinfer_kv_disk_collisions_total", "Block files of another prompt under the same key (a miss).",
            double(d.collisions));
  w.counter("dsinfer_kv_disk_read_bytes_total", "Bytes of block files read and verified.", double(d.read_bytes));
  w.counter("dsinfer_kv_disk_read_seconds_total", "Wall time while any of the disk tier's readers was busy (open, read, verify).",
            d.read_seconds);
  w.gauge("dsinfer_kv_disk_read_gbps", "Disk tier read throughput since start (GB/s of lookup wall time).",
          d.read_seconds > 0 ? double(d.read_bytes) / d.read_seconds / 1e9 : 0.0);
  w.counter("dsinfer_kv_disk_written_blocks_total", "KV blocks written through to disk.", double(d.written_blocks));
  w.counter("dsinfer_kv_disk_written_bytes_total", "Bytes of block files written.", double(d.written_bytes));
  w.counter("dsinfer_kv_disk_already_present_total", "Blocks not written: another writer had stored them.",
            double(d.already_present));
  w.counter("dsinfer_kv_disk_skipped_writes_total", "Blocks not written: the write queue was full or the tier read-only.",
            double(d.skipped_writes));
  w.counter("dsinfer_kv_disk_write_errors_total", "Block writes that failed (disk full, permissions).",
            double(d.write_errors));
  w.gauge("dsinfer_kv_disk_writable", "1 while the disk tier can write; 0 after a failed write, until a retry works.",
          d.writable ? 1.0 : 0.0);
  w.counter("dsinfer_kv_disk_gc_runs_total", "Directory scans (index rebuilds and garbage collections).",
            double(d.gc_runs));
  w.counter("dsinfer_kv_disk_gc_removed_files_total", "Block files removed as least recently used or expired.",
            double(d.gc_removed_files));
  w.counter("dsinfer_kv_disk_gc_removed_bytes_total", "Bytes of block files removed by the collector.",
            double(d.gc_removed_bytes));
  w.gauge("dsinfer_kv_disk_files", "Block files in the directory (last scan plus this instance's writes).",
          double(d.files));
  w.gauge("dsinfer_kv_disk_bytes", "Bytes of block files in the directory (last scan plus this instance's writes).",
          double(d.bytes));
  w.gauge("dsinfer_kv_disk_capacity_bytes", "The capacity the collector enforces (--kv-disk-gb).", d.capacity_bytes);
}

}  // namespace

std::string render_metrics(const engine::EngineMetrics& m, const HttpCounters& http, const std::string& model_name) {
  Writer w;
  w.labels = "model=\"" + escape_label(model_name) + "\"";
  w.head("dsinfer_kernel_path", "gauge", "The kernel path (instruction set) the forward pass runs with: 1 for the one in use.");
  w.sample("dsinfer_kernel_path", 1, std::string("isa=\"") + kernels::isa_name(kernels::active_isa()) + "\"");
  w.head("dsinfer_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, count] : http.requests)
    w.sample("dsinfer_http_requests_total", double(count),
             "endpoint=\"" + escape_label(key.first) + "\",status=\"" + std::to_string(key.second) + "\"");
  const http::ConnectionStats& c = http.connections;
  w.counter("dsinfer_http_connections_accepted_total", "TCP connections accepted.", double(c.accepted));
  w.gauge("dsinfer_http_connections_open", "TCP connections open now.", double(c.open));
  w.head("dsinfer_http_connections_closed_total", "counter",
         "Connections the server closed or lost, by why (normal ends, deadlines, a full connection table).");
  const std::pair<const char*, uint64_t> closed[] = {
      {"idle", c.closed_idle},           {"peer", c.closed_peer},         {"header_timeout", c.timed_out_headers},
      {"body_timeout", c.timed_out_body}, {"write_timeout", c.timed_out_write}, {"evicted", c.evicted},
      {"refused_full", c.refused_full}};
  for (const auto& [why, n] : closed) w.sample("dsinfer_http_connections_closed_total", double(n), str("reason=\"", why, "\""));
  w.counter("dsinfer_http_responses_abandoned_total", "Responses whose client left before they were complete.",
            double(c.abandoned));
  w.counter("dsinfer_http_bad_requests_total", "Requests refused while reading them (malformed, too large, bad coding).",
            double(c.bad_requests));
  w.head("dsinfer_requests_finished_total", "counter", "Engine requests finished, by reason.");
  w.sample("dsinfer_requests_finished_total", double(m.requests_finished_stop), "reason=\"stop\"");
  w.sample("dsinfer_requests_finished_total", double(m.requests_finished_length), "reason=\"length\"");
  w.sample("dsinfer_requests_finished_total", double(m.requests_aborted), "reason=\"abort\"");
  w.counter("dsinfer_prompt_tokens_total", "Prompt tokens of finished requests.", double(m.prompt_tokens));
  w.counter("dsinfer_cached_prompt_tokens_total", "Prompt tokens served from the prefix cache.",
            double(m.cached_prompt_tokens));
  w.counter("dsinfer_generation_tokens_total", "Generated tokens of finished requests.", double(m.generation_tokens));
  w.gauge("dsinfer_prefix_cache_hit_rate", "Cached prompt tokens / prompt tokens since start.",
          m.prompt_tokens ? double(m.cached_prompt_tokens) / double(m.prompt_tokens) : 0.0);
  {  // the prefix cache per tier: what RAM held, and what the disk tier loaded after RAM missed
    const double disk = double(m.disk_cached_prompt_tokens), ram = double(m.cached_prompt_tokens) - disk;
    auto per_tier = [&](const char* name, const char* help, double in_ram, double on_disk) {
      w.head(name, "counter", help);
      w.sample(name, in_ram, "tier=\"ram\"");
      w.sample(name, on_disk, "tier=\"disk\"");
    };
    per_tier("dsinfer_prefix_cache_hit_tokens_total", "Prompt tokens whose KV came from each tier.", ram, disk);
    per_tier("dsinfer_prefix_cache_hit_bytes_total", "KV bytes (every layer) reused from each tier.",
             ram * double(m.kv_bytes_per_token), disk * double(m.kv_bytes_per_token));
    per_tier("dsinfer_prefix_cache_miss_tokens_total",
             "Prompt tokens each tier did not hold (RAM: every token not a RAM hit; disk: of those, the ones not found there).",
             double(m.prompt_tokens) - ram, double(m.prompt_tokens) - double(m.cached_prompt_tokens));
  }
  if (m.kv_disk) write_disk_tier(w, *m.kv_disk);
  w.counter("dsinfer_steps_total", "Forward steps run.", double(m.steps));
  w.counter("dsinfer_step_tokens_total", "Tokens fed to the model over all steps.", double(m.step_tokens));
  w.counter("dsinfer_preemptions_total", "Sequences preempted for lack of KV blocks (recomputed later).",
            double(m.preemptions));
  if (m.draft_tokens > 0) {  // speculative decoding with the MTP module (docs/serving.md)
    w.gauge("dsinfer_mtp_draft_tokens", "MTP drafts fed per decode step (--draft-tokens).", double(m.draft_tokens));
    w.counter("dsinfer_mtp_drafted_tokens_total", "MTP drafts compared with the token sampled at their row.",
              double(m.mtp_drafted));
    w.counter("dsinfer_mtp_accepted_tokens_total", "MTP drafts equal to the token sampled at their row.",
              double(m.mtp_accepted));
    w.gauge("dsinfer_mtp_acceptance_rate", "Accepted / drafted MTP tokens since start.", m.mtp_acceptance_rate());
    w.counter("dsinfer_mtp_verify_steps_total", "Sequence decode steps that fed MTP drafts.", double(m.mtp_verify_steps));
    w.counter("dsinfer_mtp_emitted_tokens_total", "Tokens the decode steps that fed MTP drafts emitted.",
              double(m.mtp_emitted));
    w.gauge("dsinfer_mtp_tokens_per_step", "Tokens a decode step that fed drafts emitted, on average.",
            m.mtp_tokens_per_step());
  }
  w.counter("dsinfer_prefix_cache_evictions_total", "Cached KV blocks evicted to make room.",
            double(m.prefix_evictions));
  w.gauge("dsinfer_requests_running", "Sequences in the running batch.", double(m.running));
  w.gauge("dsinfer_requests_waiting", "Sequences waiting for admission.", double(m.waiting));
  w.gauge("dsinfer_kv_blocks_total", "KV blocks in the pool (64 tokens each).", double(m.kv_blocks_total));
  w.gauge("dsinfer_kv_blocks_used", "KV blocks referenced by live sequences.", double(m.kv_blocks_used));
  w.gauge("dsinfer_kv_blocks_cached", "Unreferenced KV blocks kept for prefix reuse (evictable).",
          double(m.kv_blocks_cached));
  w.gauge("dsinfer_kv_blocks_free", "Empty KV blocks.", double(m.kv_blocks_free));
  if (!m.ranks.empty()) {  // an expert-parallel group (DP attention): each rank's own load
    auto per_rank = [&](const std::string& name, const char* type, const char* help, auto field) {
      w.head(name, type, help);
      for (size_t r = 0; r < m.ranks.size(); ++r)
        w.sample(name, double(field(m.ranks[r])), "rank=\"" + std::to_string(r) + "\"");
    };
    using G = engine::RankGauges;
    per_rank("dsinfer_rank_requests_running", "gauge", "Sequences held by each rank (running or queued there).",
             [](const G& g) { return g.running; });
    per_rank("dsinfer_rank_requests_waiting", "gauge", "Sequences waiting for admission on each rank.",
             [](const G& g) { return g.waiting; });
    per_rank("dsinfer_rank_prefill_tokens", "gauge", "Prompt tokens each rank has still to prefill.",
             [](const G& g) { return g.prefill_tokens; });
    per_rank("dsinfer_rank_kv_blocks_used", "gauge", "KV blocks in use on each rank.",
             [](const G& g) { return g.kv_blocks_used; });
    per_rank("dsinfer_rank_kv_blocks_total", "gauge", "KV blocks in each rank's pool.",
             [](const G& g) { return g.kv_blocks_total; });
    per_rank("dsinfer_rank_steps_total", "counter", "Forward steps each rank has run.", [](const G& g) { return g.steps; });
    per_rank("dsinfer_rank_step_tokens_total", "counter", "Tokens (prompt and generated) each rank's steps computed.",
             [](const G& g) { return g.step_tokens; });
    per_rank("dsinfer_rank_expert_rows_total", "counter",
             "(token, expert) rows each rank's routed experts computed: the expert load per rank.",
             [](const G& g) { return g.expert_rows; });
  }
  if (m.online_eplb) {  // online EPLB (parallel/online_eplb.h)
    const parallel::OnlineEplbMetrics& b = *m.online_eplb;
    w.counter("dsinfer_eplb_rebalances_total", "Expert placements switched to while serving.", double(b.rebalances));
    w.counter("dsinfer_eplb_aborted_total", "Expert moves dropped because a copy failed its checksum.",
              double(b.aborted));
    w.counter("dsinfer_eplb_skipped_total", "Plans not worth a move (or no load recorded yet).", double(b.skipped));
    w.counter("dsinfer_eplb_experts_moved_total", "Experts copied between ranks by rebalances.",
              double(b.experts_moved));
    w.counter("dsinfer_eplb_bytes_moved_total", "Expert weight bytes copied between ranks by rebalances.",
              double(b.bytes_moved));
    w.head("dsinfer_eplb_rank_load_max_over_mean", "gauge",
           "Busiest rank's expert load over the mean, planned from the recorded load, around the last rebalance.");
    w.sample("dsinfer_eplb_rank_load_max_over_mean", b.imbalance_before, "when=\"before\"");
    w.sample("dsinfer_eplb_rank_load_max_over_mean", b.imbalance_after, "when=\"after\"");
    w.gauge("dsinfer_eplb_last_move_seconds", "Wall time of the last rebalance, plan to switch.", b.last_move_seconds);
    w.gauge("dsinfer_eplb_longest_boundary_seconds",
            "Longest time one step boundary spent on EPLB (the most a step was held up by it).",
            b.longest_boundary_seconds);
    w.gauge("dsinfer_eplb_median_step_seconds", "Median of recent ordinary step-loop iterations, for comparison.",
            b.median_step_seconds);
  }
  w.histogram("dsinfer_time_to_first_token_seconds", "Time from arrival to the first generated token.", m.ttft);
  w.histogram("dsinfer_inter_token_latency_seconds", "Time between successive tokens of a sequence.", m.itl);
  w.histogram("dsinfer_request_latency_seconds", "Time from arrival to the last token.", m.e2e);
  w.histogram("dsinfer_step_tokens", "Tokens per forward step.", m.step_tokens_hist);
  return w.os.str();
}

}  // namespace dsinfer::serve
