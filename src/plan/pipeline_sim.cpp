#include "plan/pipeline_sim.h"

#include <algorithm>
#include <map>
#include <queue>
#include <tuple>

#include "base/error.h"

namespace dsinfer::plan {

namespace {

using Priority = std::tuple<int, int, int, int>;  // layer, stage, micro-batch, index

struct Finish {
  double time;
  int op;
  bool operator>(const Finish& o) const { return time != o.time ? time > o.time : op > o.op; }
};

}  // namespace

PipelineResult run_pipeline(const std::vector<PipelineOp>& ops) {
  const int n = int(ops.size());
  std::vector<int> waiting(n, 0);
  std::vector<std::vector<int>> dependents(n);
  for (int i = 0; i < n; ++i) {
    if (ops[i].seconds < 0) fail("pipeline op ", i, " (", ops[i].name, ") has negative duration");
    for (int d : ops[i].deps) {
      if (d < 0 || d >= i) fail("pipeline op ", i, " (", ops[i].name, ") depends on op ", d, ", which is not earlier");
      dependents[d].push_back(i);
      ++waiting[i];
    }
  }

  PipelineResult r;
  r.start.assign(n, 0);
  r.finish.assign(n, 0);
  std::priority_queue<Priority, std::vector<Priority>, std::greater<Priority>> ready[2];
  std::priority_queue<Finish, std::vector<Finish>, std::greater<Finish>> events;
  bool lane_busy[2] = {false, false};
  auto make_ready = [&](int i) {
    ready[int(ops[i].lane)].push({ops[i].layer, ops[i].stage, ops[i].micro_batch, i});
  };
  for (int i = 0; i < n; ++i)
    if (!waiting[i]) make_ready(i);

  double now = 0;
  int done = 0;
  while (true) {
    for (int lane = 0; lane < 2; ++lane) {
      if (lane_busy[lane] || ready[lane].empty()) continue;
      int i = std::get<3>(ready[lane].top());
      ready[lane].pop();
      lane_busy[lane] = true;
      r.start[i] = now;
      r.finish[i] = now + ops[i].seconds;
      events.push({r.finish[i], i});
    }
    if (events.empty()) break;
    now = events.top().time;
    // Retire everything that finishes now before choosing what starts, so ties resolve by priority.
    while (!events.empty() && events.top().time == now) {
      int i = events.top().op;
      events.pop();
      lane_busy[int(ops[i].lane)] = false;
      ++done;
      for (int d : dependents[i])
        if (--waiting[d] == 0) make_ready(d);
    }
  }
  if (done != n) fail("pipeline has ", n - done, " operations that never became ready");

  std::map<std::pair<std::string, int>, size_t> slot;
  for (int i = 0; i < n; ++i) {
    r.makespan = std::max(r.makespan, r.finish[i]);
    r.busy[int(ops[i].lane)] += ops[i].seconds;
    r.flops += ops[i].flops;
    auto [it, fresh] = slot.emplace(std::make_pair(ops[i].name, int(ops[i].lane)), r.busy_by_name.size());
    if (fresh) r.busy_by_name.push_back({ops[i].name, ops[i].lane, 0.0});
    r.busy_by_name[it->second].seconds += ops[i].seconds;
  }
  return r;
}

int PipelineBuilder::add(std::string name, Lane lane, double seconds, double flops, std::vector<int> deps, int layer,
                         int stage, int micro_batch) {
  PipelineOp op;
  op.name = std::move(name);
  op.lane = lane;
  op.seconds = seconds;
  op.flops = flops;
  op.deps = std::move(deps);
  op.layer = layer;
  op.stage = stage;
  op.micro_batch = micro_batch;
  ops_.push_back(std::move(op));
  return int(ops_.size()) - 1;
}

}  // namespace dsinfer::plan
