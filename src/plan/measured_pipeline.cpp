#include "plan/measured_pipeline.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "base/json.h"
#include "base/json_fields.h"
#include "base/read_file.h"

namespace dsinfer::plan {

using nlohmann::json;

namespace {

constexpr const char* kFormat = "dsinfer-stage-costs-1";
constexpr NumberRange kNonNegative = NumberRange::non_negative();

// The stage names of the file, in StageSeconds' order.
struct StageField {
  const char* key;
  double StageSeconds::*member;
};
constexpr StageField kStageFields[] = {
    {"attention", &StageSeconds::attention},   {"route", &StageSeconds::route},
    {"dispatch_post", &StageSeconds::dispatch_post}, {"experts", &StageSeconds::experts},
    {"shared", &StageSeconds::shared},         {"combine_finish", &StageSeconds::combine_finish},
    {"dense", &StageSeconds::dense},           {"other", &StageSeconds::other},
};

MeasuredStep parse_step(const json& j, const StageCosts& c, const std::string& path) {
  FieldReader r(j, c.origin, path);
  MeasuredStep m;
  m.phase = r.string("phase");
  m.payload = r.string("payload");
  m.micro_batches = int(r.integer("micro_batches", IntRange{1, 2}));
  m.tokens_per_rank = r.integer("tokens_per_rank", IntRange::non_negative());
  m.normal_mode = r.one_of<bool>("dispatch_mode", {{"normal", true}, {"low-latency", false}});
  FieldReader s = r.reader("stages_s");
  for (const StageField& f : kStageFields) m.stages.*f.member = s.number(f.key, kNonNegative);
  s.finish();
  const bool moe_work = m.stages.route + m.stages.dispatch_post + m.stages.experts + m.stages.shared +
                            m.stages.combine_finish > 0;
  if (moe_work && c.moe_layers == 0) s.fail("experts", "are timed but the model has no MoE layer (moe_layers 0)");
  if (m.stages.dense > 0 && c.moe_layers == c.layers)
    s.fail("dense", "is timed but every layer is an MoE layer (moe_layers = layers)");
  m.dispatch_bytes = r.number("dispatch_bytes", kNonNegative);
  m.combine_bytes = r.number("combine_bytes", kNonNegative);
  if ((m.dispatch_bytes > 0 || m.combine_bytes > 0) && !(c.network.bytes_per_s > 0))
    r.fail("dispatch_bytes", "are not 0, so network.bandwidth_gb_per_s must be positive");
  m.measured_step_s = r.number("measured_step_s", NumberRange::positive());
  m.measured_exposed_s = r.number("measured_exposed_s", kNonNegative);
  r.finish();
  return m;
}

}  // namespace

double NetworkCosts::transfer_seconds(double bytes) const {
  if (!(bytes > 0)) return 0;
  return latency_s + bytes / bytes_per_s;
}

StageCosts parse_stage_costs(const json& j, const std::string& origin) {
  FieldReader r(j, origin);
  StageCosts c;
  c.origin = origin;
  const std::string format = r.string("format");
  if (format != kFormat) r.fail("format", "is '", format, "'; this dsinfer reads '", kFormat, "'");
  c.source = r.string_or("source", "");
  c.model = r.string_or("model", "");
  c.ranks = int(r.integer("ranks", IntRange::positive(INT32_MAX)));
  c.layers = int(r.integer("layers", IntRange::positive(INT32_MAX)));
  c.moe_layers = int(r.integer("moe_layers", IntRange{0, c.layers}));
  FieldReader n = r.reader("network");
  c.network.latency_s = n.number("latency_us", kNonNegative) * 1e-6;
  c.network.bytes_per_s = n.number("bandwidth_gb_per_s", kNonNegative) * 1e9;
  n.finish();
  const json& steps = r.array("steps", 1);
  for (size_t i = 0; i < steps.size(); ++i) c.steps.push_back(parse_step(steps[i], c, str("steps[", i, "]")));
  r.finish();
  return c;
}

StageCosts load_stage_costs(const std::string& path) {
  return parse_stage_costs(parse_json(read_regular_file(path, "stage costs file"), path), path);
}

json to_json(const StageCosts& c) {
  json steps = json::array();
  for (const MeasuredStep& m : c.steps) {
    json stages = json::object();
    for (const StageField& f : kStageFields) stages[f.key] = m.stages.*f.member;
    steps.push_back({{"phase", m.phase},
                     {"payload", m.payload},
                     {"micro_batches", m.micro_batches},
                     {"tokens_per_rank", m.tokens_per_rank},
                     {"dispatch_mode", m.normal_mode ? "normal" : "low-latency"},
                     {"stages_s", stages},
                     {"dispatch_bytes", m.dispatch_bytes},
                     {"combine_bytes", m.combine_bytes},
                     {"measured_step_s", m.measured_step_s},
                     {"measured_exposed_s", m.measured_exposed_s}});
  }
  return {{"format", kFormat},
          {"source", c.source},
          {"model", c.model},
          {"ranks", c.ranks},
          {"layers", c.layers},
          {"moe_layers", c.moe_layers},
          {"network", {{"latency_us", c.network.latency_s * 1e6}, {"bandwidth_gb_per_s", c.network.bytes_per_s / 1e9}}},
          {"steps", steps}};
}

std::vector<PipelineOp> measured_step_graph(const MeasuredStep& m, int layers, int moe_layers, const NetworkCosts& net,
                                            int micro_batches) {
  check(micro_batches == 1 || micro_batches == 2, "micro-batches must be 1 or 2, got ", micro_batches);
  check(layers >= 1 && moe_layers >= 0 && moe_layers <= layers, "a model of ", layers, " layers cannot have ",
        moe_layers, " MoE layers");
  const int M = micro_batches, dense_layers = layers - moe_layers;
  const StageSeconds& s = m.stages;
  // Per layer and micro-batch.
  const double attention = s.attention / (layers * M);
  const double gate = moe_layers ? (s.route + s.dispatch_post) / (moe_layers * M) : 0;
  const double experts = moe_layers ? s.experts / (moe_layers * M) : 0;
  const double shared = moe_layers ? s.shared / (moe_layers * M) : 0;
  const double finish = moe_layers ? s.combine_finish / (moe_layers * M) : 0;
  const double dense = dense_layers ? s.dense / (dense_layers * M) : 0;
  const double dispatch = moe_layers ? net.transfer_seconds(m.dispatch_bytes / (moe_layers * M)) : 0;
  const double combine = moe_layers ? net.transfer_seconds(m.combine_bytes / (moe_layers * M)) : 0;
  const double layout = m.normal_mode && net.bytes_per_s > 0 ? net.latency_s : 0;

  // Lower-numbered layers of a step's MoE layers are its dense ones (first_k_dense_replace).
  auto is_moe = [&](int l) { return l >= dense_layers; };
  PipelineBuilder b;
  int last = -1;  // the compute lane's previous operation (program order), or a blocking exchange
  auto compute = [&](const char* name, double seconds, std::vector<int> deps, int layer, int stage, int mb) {
    if (last >= 0) deps.push_back(last);
    last = b.add(name, Lane::kCompute, seconds, 0, std::move(deps), layer, stage, mb);
    return last;
  };
  std::vector<std::vector<int>> dispatched(static_cast<size_t>(layers), std::vector<int>(2, -1));
  std::vector<std::vector<int>> combined(dispatched);
  // The gate and dispatch post; then the transfer (after the blocking count exchange in normal mode).
  auto post = [&](int l, int mb) {
    const int p = compute("gate and dispatch post", gate, {}, l, kAttention, mb);
    std::vector<int> deps = {p};
    if (layout > 0) {
      last = b.add("count exchange", Lane::kNetwork, layout, 0, {p}, l, kDispatch, mb);  // blocks compute
      deps = {last};
    }
    dispatched[size_t(l)][size_t(mb)] = b.add("dispatch", Lane::kNetwork, dispatch, 0, deps, l, kDispatch, mb);
  };
  auto experts_op = [&](int l, int mb) {
    const int x = compute("routed experts", experts, {dispatched[size_t(l)][size_t(mb)]}, l, kRouted, mb);
    combined[size_t(l)][size_t(mb)] = b.add("combine", Lane::kNetwork, combine, 0, {x}, l, kCombine, mb);
  };
  auto finish_op = [&](int l, int mb) {
    compute("combine finish", finish, {combined[size_t(l)][size_t(mb)]}, l, kCombine, mb);
  };

  for (int l = 0; l < layers; ++l) {
    if (M == 1) {  // DeepSeekModel::run_layers
      compute("attention", attention, {}, l, kAttention, 0);
      if (!is_moe(l)) {
        compute("dense MLP", dense, {}, l, kShared, 0);
        continue;
      }
      post(l, 0);
      compute("shared experts", shared, {}, l, kShared, 0);
      experts_op(l, 0);
      finish_op(l, 0);
      continue;
    }
    // DeepSeekModel::run_layers_overlapped
    for (int mb = 0; mb < 2; ++mb) {
      if (l > 0 && is_moe(l - 1)) finish_op(l - 1, mb);
      compute("attention", attention, {}, l, kAttention, mb);
      if (is_moe(l)) post(l, mb);
    }
    for (int mb = 0; mb < 2; ++mb) {
      if (!is_moe(l)) {
        compute("dense MLP", dense, {}, l, kShared, mb);
        continue;
      }
      experts_op(l, mb);
      compute("shared experts", shared, {}, l, kShared, mb);
    }
  }
  if (M == 2 && is_moe(layers - 1))
    for (int mb = 0; mb < 2; ++mb) finish_op(layers - 1, mb);
  compute("other", s.other, {}, layers, kAttention, 0);
  return b.ops();
}

PredictedStep predict_step(const MeasuredStep& m, int layers, int moe_layers, const NetworkCosts& net,
                           int micro_batches) {
  const PipelineResult r = run_pipeline(measured_step_graph(m, layers, moe_layers, net, micro_batches));
  PredictedStep p;
  p.step_s = r.makespan;
  p.compute_s = r.busy[int(Lane::kCompute)];
  p.network_s = r.busy[int(Lane::kNetwork)];
  p.exposed_s = std::max(0.0, p.step_s - p.compute_s);
  return p;
}

std::vector<StageComparison> compare_stage_costs(const StageCosts& c) {
  std::vector<StageComparison> rows;
  for (const MeasuredStep& m : c.steps) {
    StageComparison row;
    row.measured = &m;
    row.predicted = predict_step(m, c.layers, c.moe_layers, c.network, m.micro_batches);
    if (m.micro_batches == 2)
      for (const MeasuredStep& one : c.steps)
        if (one.micro_batches == 1 && one.phase == m.phase && one.payload == m.payload) {
          row.has_from_one = true;
          row.from_one = predict_step(one, c.layers, c.moe_layers, c.network, 2);
          break;
        }
    rows.push_back(row);
  }
  return rows;
}

namespace {

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

// The one-micro-batch row of the same phase and payload.
const StageComparison* single_of(const std::vector<StageComparison>& rows, const MeasuredStep& m) {
  for (const StageComparison& r : rows)
    if (r.measured->micro_batches == 1 && r.measured->phase == m.phase && r.measured->payload == m.payload) return &r;
  return nullptr;
}

}  // namespace

std::string format_stage_comparison(const StageCosts& c, const std::vector<StageComparison>& rows) {
  std::string out;
  char line[512];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("measured stage costs: %s (%s; %s, %d layers of which %d MoE; %d rank%s)\n", c.origin.c_str(),
      c.source.empty() ? "?" : c.source.c_str(), c.model.empty() ? "model not named" : c.model.c_str(), c.layers,
      c.moe_layers, c.ranks, c.ranks == 1 ? "" : "s");
  if (c.network.bytes_per_s > 0)
    add("network: a transfer = %.2f us + bytes / %.3f GB/s (MPI point to point)\n", c.network.latency_s * 1e6,
        c.network.bytes_per_s / 1e9);
  else
    add("network: none (one rank)\n");
  add("\nstep time and exposed communication per step (ms): measured, and predicted by the overlap model from the "
      "measured stage costs\n");
  add("%-8s %-7s %3s %7s %9s %9s %7s %9s %9s %9s\n", "phase", "payload", "mb", "tokens", "measured", "predicted",
      "ratio", "exp meas", "exp pred", "compute");
  for (const StageComparison& r : rows) {
    const MeasuredStep& m = *r.measured;
    add("%-8s %-7s %3d %7ld %9.3f %9.3f %7.3f %9.3f %9.3f %9.3f\n", m.phase.c_str(), m.payload.c_str(),
        m.micro_batches, long(m.tokens_per_rank), m.measured_step_s * 1e3, r.predicted.step_s * 1e3,
        ratio(r.predicted.step_s, m.measured_step_s), m.measured_exposed_s * 1e3, r.predicted.exposed_s * 1e3,
        r.predicted.compute_s * 1e3);
  }
  bool header = false;
  for (const StageComparison& r : rows) {
    const MeasuredStep& m = *r.measured;
    const StageComparison* one = m.micro_batches == 2 ? single_of(rows, m) : nullptr;
    if (!one) continue;
    if (!header) {
      add("\ntwo micro-batches against one: step time on/off, and the share of the exposed communication hidden\n");
      add("%-8s %-7s %10s %10s %16s %12s %12s\n", "phase", "payload", "measured", "predicted", "pred. from mb 1",
          "hidden meas", "hidden pred");
      header = true;
    }
    const double hidden_meas = one->measured->measured_exposed_s > 0
                                   ? 1 - m.measured_exposed_s / one->measured->measured_exposed_s
                                   : 0;
    const double hidden_pred = one->predicted.exposed_s > 0 ? 1 - r.predicted.exposed_s / one->predicted.exposed_s : 0;
    add("%-8s %-7s %10.3f %10.3f %16.3f %11.1f%% %11.1f%%\n", m.phase.c_str(), m.payload.c_str(),
        ratio(m.measured_step_s, one->measured->measured_step_s), ratio(r.predicted.step_s, one->predicted.step_s),
        r.has_from_one ? ratio(r.from_one.step_s, one->predicted.step_s) : 0.0, 100 * hidden_meas, 100 * hidden_pred);
  }
  return out;
}

json to_json(const StageCosts& c, const std::vector<StageComparison>& rows) {
  json out = {{"stage_costs", c.origin}, {"source", c.source}, {"model", c.model}, {"ranks", c.ranks}};
  json list = json::array();
  for (const StageComparison& r : rows) {
    const MeasuredStep& m = *r.measured;
    json row = {{"phase", m.phase},
                {"payload", m.payload},
                {"micro_batches", m.micro_batches},
                {"tokens_per_rank", m.tokens_per_rank},
                {"measured_step_s", m.measured_step_s},
                {"predicted_step_s", r.predicted.step_s},
                {"predicted_over_measured", ratio(r.predicted.step_s, m.measured_step_s)},
                {"measured_exposed_s", m.measured_exposed_s},
                {"predicted_exposed_s", r.predicted.exposed_s},
                {"predicted_compute_s", r.predicted.compute_s},
                {"predicted_network_s", r.predicted.network_s}};
    if (r.has_from_one) row["predicted_from_one_micro_batch_step_s"] = r.from_one.step_s;
    if (const StageComparison* one = m.micro_batches == 2 ? single_of(rows, m) : nullptr) {
      row["measured_on_off"] = ratio(m.measured_step_s, one->measured->measured_step_s);
      row["predicted_on_off"] = ratio(r.predicted.step_s, one->predicted.step_s);
    }
    list.push_back(row);
  }
  out["steps"] = list;
  return out;
}

}  // namespace dsinfer::plan
