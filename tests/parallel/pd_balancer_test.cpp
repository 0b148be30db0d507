// The prefill/decode router's balancers (parallel/pd_balancer.h), checked on recorded load
// snapshots: tests/parallel/pd_snapshots/*.json, one moment of a deployment each. A snapshot holds
//   "balancer":  "prefill" or "decode";
//   "options":   optional PrefillBalancerOptions ("prefix_memory", "affinity_tolerance");
//   "sent":      optional, requests the router assigned before the moment (they seed its prefix
//                memory; their load is then replaced by the reports), each {"instance", "prompt_tokens",
//                "prefix"};
//   "instances": every instance's GET /pd/status body at that moment (read by parse_instance_status);
//   "down":      optional, instances marked down at that moment;
//   "steps":     what happens next, in order: {"report": i, "status": {...}}, {"set_up": i, "up": bool},
//                or a request {"request": {"prompt_tokens", "prefix"}, "exclude": [...], "expect": i,
//                "why": "..."} with optional checks "cached" (every instance's cached tokens for it),
//                "if_tolerance_0" (what a balancer with affinity_tolerance 0 would choose from the
//                same state), "after" (load fields of the chosen instance once assigned) and
//                "assign": false (the forward failed: nothing is assigned).
// A prompt's prefix is written as segments, [["doc-A", 100], ["q-3", 2]]: 100 blocks of doc-A then
// 2 of q-3; the keys are chained hashes (key k depends on every block up to k), as the router's are.
#include "parallel/pd_balancer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/json_fields.h"
#include "base/read_file.h"

namespace dsinfer::parallel {
namespace {

using nlohmann::json;

const std::string kSnapshotDir = std::string(DSINFER_SOURCE_DIR) + "/tests/parallel/pd_snapshots/";

// Every snapshot a test replays; PdSnapshotFiles checks the directory holds exactly these.
const std::vector<std::string> kPrefillSnapshots = {"prefill_long_prompt_burst", "prefill_attention_work",
                                                    "prefill_prefix_affinity", "prefill_down_and_retry",
                                                    "prefill_bounded_prefix_memory", "recorded_prefill_tiny_v3"};
const std::vector<std::string> kDecodeSnapshots = {"decode_kv_vs_running", "recorded_decode_tiny_v3"};
const std::string kMalformedSnapshot = "malformed_status";

json load_snapshot(const std::string& name) {
  const std::string path = kSnapshotDir + name + ".json";
  return parse_json(read_regular_file(path, "pd snapshot"), path);
}

// Chained block keys: key k = hash(key k-1, segment, index), never 0.
std::vector<uint64_t> prefix_keys(const json& request) {
  std::vector<uint64_t> keys;
  if (!request.contains("prefix")) return keys;
  uint64_t key = 0x9e3779b97f4a7c15ull;
  for (const json& segment : request.at("prefix")) {
    const std::string name = segment.at(0).get<std::string>();
    const uint64_t seed = fingerprint_bytes(0x5eedull, name.data(), name.size());
    for (int64_t j = 0; j < segment.at(1).get<int64_t>(); ++j) {
      key = mix64(key ^ mix64(seed + uint64_t(j))) | 1;
      keys.push_back(key);
    }
  }
  return keys;
}

std::vector<int> exclude_of(const json& step) {
  return step.contains("exclude") ? step.at("exclude").get<std::vector<int>>() : std::vector<int>{};
}

InstanceLoad status_of(const json& status, const std::string& where) { return parse_instance_status(status, where); }

// The load fields a snapshot's "after" may name.
double load_field(const InstanceLoad& load, const std::string& field) {
  if (field == "prefill_tokens") return double(load.prefill_tokens);
  if (field == "attention_work") return load.attention_work;
  if (field == "running") return double(load.running);
  if (field == "kv_blocks_used") return double(load.kv_blocks_used);
  ADD_FAILURE() << "unknown load field '" << field << "' in a snapshot's \"after\"";
  return -1;
}

// What both replays do alike: every instance's recorded status, the instances down from the
// start, and the steps that change state rather than ask for a choice (true when `step` was one).
template <typename Balancer>
void start_from(const json& snap, const std::string& file, const std::vector<Balancer*>& all) {
  for (size_t i = 0; i < snap.at("instances").size(); ++i) {
    const InstanceLoad load = status_of(snap.at("instances").at(i), file + " instances[" + std::to_string(i) + "]");
    for (Balancer* x : all) x->report(int(i), load);
  }
  for (const json& down : snap.value("down", json::array()))
    for (Balancer* x : all) x->set_up(down.get<int>(), false);
}

template <typename Balancer>
bool apply_state_step(const json& step, const std::string& where, const std::vector<Balancer*>& all) {
  if (step.contains("set_up")) {
    for (Balancer* x : all) x->set_up(step.at("set_up").get<int>(), step.at("up").get<bool>());
    return true;
  }
  if (step.contains("report")) {
    const InstanceLoad load = status_of(step.at("status"), where);
    for (Balancer* x : all) x->report(step.at("report").get<int>(), load);
    return true;
  }
  return false;
}

// Replays a prefill snapshot on three balancers fed the same events: `b` (choose, then assign),
// `combined` (choose_and_assign) and `shadow` (affinity_tolerance 0, for "if_tolerance_0").
// Returns the number of choices checked.
int replay_prefill(const json& snap, const std::string& file) {
  PrefillBalancerOptions options;
  if (snap.contains("options")) {
    const json& o = snap.at("options");
    options.prefix_memory = o.value("prefix_memory", options.prefix_memory);
    options.affinity_tolerance = o.value("affinity_tolerance", options.affinity_tolerance);
  }
  PrefillBalancerOptions no_affinity = options;
  no_affinity.affinity_tolerance = 0;
  const int n = int(snap.at("instances").size());
  PrefillBalancer b(n, options), combined(n, options), shadow(n, no_affinity);
  const std::vector<PrefillBalancer*> all = {&b, &combined, &shadow};

  for (const json& sent : snap.value("sent", json::array())) {
    const std::vector<uint64_t> keys = prefix_keys(sent);
    const int instance = sent.at("instance").get<int>();
    for (PrefillBalancer* x : all) x->assign(instance, sent.at("prompt_tokens").get<int64_t>(), keys);
  }
  start_from(snap, file, all);

  int checked = 0;
  const json& steps = snap.at("steps");
  for (size_t k = 0; k < steps.size(); ++k) {
    const json& step = steps[k];
    SCOPED_TRACE(file + " step " + std::to_string(k) + ": " + step.value("why", std::string("(no why)")));
    if (apply_state_step(step, file + " step " + std::to_string(k), all)) continue;
    const json& request = step.at("request");
    const int64_t prompt = request.at("prompt_tokens").get<int64_t>();
    const std::vector<uint64_t> keys = prefix_keys(request);
    const std::vector<int> exclude = exclude_of(step);
    const int expect = step.at("expect").get<int>();
    EXPECT_FALSE(step.value("why", "").empty()) << "every expectation says why";
    const bool assign = step.value("assign", true);

    if (step.contains("cached")) {
      const std::vector<int64_t> cached = step.at("cached").get<std::vector<int64_t>>();
      EXPECT_EQ(int(cached.size()), n) << "\"cached\" lists every instance";
      for (int i = 0; i < n && i < int(cached.size()); ++i)
        EXPECT_EQ(b.cached_tokens(i, prompt, keys), cached[size_t(i)]) << "cached tokens on instance " << i;
    }
    if (step.contains("if_tolerance_0")) {
      EXPECT_EQ(shadow.choose(prompt, keys, exclude), step.at("if_tolerance_0").get<int>()) << "with tolerance 0";
    }
    EXPECT_EQ(b.choose(prompt, keys, exclude), expect);
    const int combined_choice =
        assign ? combined.choose_and_assign(prompt, keys, exclude) : combined.choose(prompt, keys, exclude);
    EXPECT_EQ(combined_choice, expect) << "choose_and_assign";
    ++checked;
    // The expected choice is assigned (also where the check failed), so later steps see the
    // state the snapshot describes.
    if (expect >= 0 && assign) {
      b.assign(expect, prompt, keys);
      shadow.assign(expect, prompt, keys);
      if (step.contains("after")) {
        for (const auto& [field, value] : step.at("after").items())
          EXPECT_EQ(load_field(b.load(expect), field), value.get<double>()) << field << " of instance " << expect;
      }
    }
  }
  return checked;
}

int replay_decode(const json& snap, const std::string& file) {
  const int n = int(snap.at("instances").size());
  EXPECT_FALSE(snap.contains("options") || snap.contains("sent")) << "decode snapshots have no prefix memory";
  DecodeBalancer b(n), combined(n);
  const std::vector<DecodeBalancer*> all = {&b, &combined};
  start_from(snap, file, all);
  int checked = 0;
  const json& steps = snap.at("steps");
  for (size_t k = 0; k < steps.size(); ++k) {
    const json& step = steps[k];
    SCOPED_TRACE(file + " step " + std::to_string(k) + ": " + step.value("why", std::string("(no why)")));
    if (apply_state_step(step, file + " step " + std::to_string(k), all)) continue;
    const int64_t prompt = step.at("request").at("prompt_tokens").get<int64_t>();
    const std::vector<int> exclude = exclude_of(step);
    const int expect = step.at("expect").get<int>();
    EXPECT_FALSE(step.value("why", "").empty()) << "every expectation says why";
    const bool assign = step.value("assign", true);
    EXPECT_EQ(b.choose(prompt, exclude), expect);
    EXPECT_EQ(assign ? combined.choose_and_assign(prompt, exclude) : combined.choose(prompt, exclude), expect)
        << "choose_and_assign";
    ++checked;
    if (expect >= 0 && assign) {
      b.assign(expect, prompt);
      if (step.contains("after")) {
        for (const auto& [field, value] : step.at("after").items())
          EXPECT_EQ(load_field(b.load(expect), field), value.get<double>()) << field << " of instance " << expect;
      }
    }
  }
  return checked;
}

class PdSnapshot : public ::testing::TestWithParam<std::string> {};

TEST_P(PdSnapshot, EveryRecordedChoiceHolds) {
  const std::string file = GetParam() + ".json";
  const json snap = load_snapshot(GetParam());
  ASSERT_FALSE(snap.value("description", "").empty()) << file << " says what moment it records";
  const std::string kind = snap.at("balancer").get<std::string>();
  int checked = 0;
  if (kind == "prefill") {
    checked = replay_prefill(snap, file);
  } else {
    ASSERT_EQ(kind, "decode") << file;
    checked = replay_decode(snap, file);
  }
  EXPECT_GE(checked, 3) << file << " checks a few choices";
}

std::vector<std::string> all_replayed() {
  std::vector<std::string> names = kPrefillSnapshots;
  names.insert(names.end(), kDecodeSnapshots.begin(), kDecodeSnapshots.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(PdRecorded, PdSnapshot, ::testing::ValuesIn(all_replayed()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(PdSnapshotFiles, EveryFileIsReplayedAndDeclaresItsBalancer) {
  std::vector<std::string> on_disk, listed = all_replayed();
  for (const auto& entry : std::filesystem::directory_iterator(kSnapshotDir)) {
    if (entry.path().extension() == ".json") on_disk.push_back(entry.path().stem().string());
  }
  listed.push_back(kMalformedSnapshot);
  std::sort(on_disk.begin(), on_disk.end());
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(on_disk, listed) << "a snapshot file nobody replays checks nothing";
  for (const std::string& name : kPrefillSnapshots) EXPECT_EQ(load_snapshot(name).at("balancer"), "prefill") << name;
  for (const std::string& name : kDecodeSnapshots) EXPECT_EQ(load_snapshot(name).at("balancer"), "decode") << name;
}

// ---------------------------------------------------------------------------------------------
// /pd/status parsing.

TEST(PdStatus, MalformedStatusNamesTheField) {
  const json snap = load_snapshot(kMalformedSnapshot);
  const std::string origin = "http://10.0.0.2:8001/pd/status";

  const InstanceLoad ok = parse_instance_status(snap.at("valid"), origin);
  const json& parsed = snap.at("parsed");
  EXPECT_EQ(ok.role, parsed.at("role") == "prefill" ? InstanceRole::kPrefill : InstanceRole::kDecode);
  EXPECT_EQ(ok.accepting, parsed.at("accepting").get<bool>());
  EXPECT_EQ(ok.running, parsed.at("running").get<int64_t>());
  EXPECT_EQ(ok.waiting, parsed.at("waiting").get<int64_t>());
  EXPECT_EQ(ok.prefill_tokens, parsed.at("prefill_tokens").get<int64_t>());
  EXPECT_EQ(ok.attention_work, parsed.at("attention_work").get<double>());
  EXPECT_EQ(ok.kv_blocks_used, parsed.at("kv_blocks_used").get<int64_t>());
  EXPECT_EQ(ok.kv_blocks_total, parsed.at("kv_blocks_total").get<int64_t>());
  EXPECT_EQ(ok.block_size, parsed.at("block_size").get<int64_t>());

  const json& cases = snap.at("cases");
  ASSERT_GE(cases.size(), 10u);
  for (size_t k = 0; k < cases.size(); ++k) {
    const json& c = cases[k];
    const std::string field = c.at("field").get<std::string>();
    SCOPED_TRACE("case " + std::to_string(k) + " (" + field + "): " + c.at("why").get<std::string>());
    json status = c.contains("document") ? c.at("document") : snap.at("valid");
    if (c.contains("remove")) {
      ASSERT_EQ(status.erase(c.at("remove").get<std::string>()), 1u);
    }
    if (c.contains("set")) {
      for (const auto& [key, value] : c.at("set").items()) status[key] = value;
    }
    try {
      parse_instance_status(status, origin);
      ADD_FAILURE() << "accepted " << status.dump();
    } catch (const FieldError& e) {
      EXPECT_EQ(e.path(), field) << e.what();
      const std::string message = e.what();
      EXPECT_NE(message.find(origin), std::string::npos) << message;
      if (!field.empty()) {
        EXPECT_NE(message.find("'" + field + "'"), std::string::npos) << message;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The rules worked by hand.

TEST(PdPrefillBalancer, ScoresFollowTheDocumentedRules) {
  // Two instances; instance 1 was sent a prompt whose first 3 blocks this request shares.
  PrefillBalancer b(2);
  const std::vector<uint64_t> sent = {11, 12, 13, 14};  // chained keys, 4 blocks
  b.assign(1, 300, sent);
  InstanceLoad l0, l1;
  l0.prefill_tokens = 1000, l0.attention_work = 1e6, l0.running = 1;
  l1.prefill_tokens = 2000, l1.attention_work = 3e6, l1.running = 2;
  b.report(0, l0);
  b.report(1, l1);
  const std::vector<uint64_t> keys = {11, 12, 13, 99};  // diverges at block 4
  const int64_t L = 600;
  EXPECT_EQ(b.cached_tokens(0, L, keys), 0);
  EXPECT_EQ(b.cached_tokens(1, L, keys), 3 * 64);
  // Means over both instances with the request counted uncached (L tokens, L^2 work).
  const double mean_tokens = (1000 + 2000 + 600) / 2.0, mean_work = (1e6 + 3e6 + 600.0 * 600) / 2.0;
  const double s0 = (1000 + 600) / mean_tokens + (1e6 + 600.0 * 600) / mean_work;
  const double s1 = (2000 + 408) / mean_tokens + (3e6 + 408.0 * 408) / mean_work;
  EXPECT_DOUBLE_EQ(b.score(0, L, keys), s0);
  EXPECT_DOUBLE_EQ(b.score(1, L, keys), s1);
  ASSERT_GT(s1 - s0, PrefillBalancerOptions{}.affinity_tolerance) << "the holder is beyond the tolerance here";
  EXPECT_EQ(b.choose(L, keys), 0);
  // A tolerance above the gap lets the holder win.
  PrefillBalancer loose(2, PrefillBalancerOptions{.prefix_memory = 64, .affinity_tolerance = s1 - s0 + 0.01});
  loose.assign(1, 300, sent);
  loose.report(0, l0);
  loose.report(1, l1);
  EXPECT_EQ(loose.choose(L, keys), 1);
  // assign adds the new tokens only: 600 - 192 = 408.
  b.assign(1, L, keys);
  EXPECT_EQ(b.load(1).prefill_tokens, 2000 + 408);
  EXPECT_DOUBLE_EQ(b.load(1).attention_work, 3e6 + 408.0 * 408);
  EXPECT_EQ(b.load(1).running, 3);
  // A prompt fully covered by held blocks still prefills its last token.
  const std::vector<uint64_t> two = {11, 12};
  EXPECT_EQ(b.cached_tokens(1, 128, two), 127);
  EXPECT_EQ(b.cached_tokens(1, 129, two), 128);
  // A 0 key ends the chain: nothing after it counts or is stored.
  const std::vector<uint64_t> broken = {11, 0, 13};
  EXPECT_EQ(b.cached_tokens(1, 300, broken), 64);
}

TEST(PdDecodeBalancer, ScoresFollowTheDocumentedRules) {
  DecodeBalancer b(3);
  InstanceLoad a, c, d;
  a.role = c.role = d.role = InstanceRole::kDecode;
  a.running = 4, a.kv_blocks_used = 100, a.kv_blocks_total = 1000, a.block_size = 64;
  c.running = 9, c.kv_blocks_used = 10, c.kv_blocks_total = 500, c.block_size = 128;
  d.running = 2, d.kv_blocks_used = 0, d.kv_blocks_total = 0;  // cache size unknown
  b.report(0, a);
  b.report(1, c);
  b.report(2, d);
  const int64_t L = 1000;  // 16 blocks of 64, 8 of 128
  const double mean_running = (4 + 9 + 2 + 1) / 3.0;
  EXPECT_DOUBLE_EQ(b.score(0, L), (100 + 16) / 1000.0 + 5 / mean_running);
  EXPECT_DOUBLE_EQ(b.score(1, L), (10 + 8) / 500.0 + 10 / mean_running);
  EXPECT_DOUBLE_EQ(b.score(2, L), 0.0 + 3 / mean_running);
  EXPECT_EQ(b.choose(L), 2);
  b.assign(1, L);
  EXPECT_EQ(b.load(1).kv_blocks_used, 18) << "ceil(1000 / 128) of instance 1's blocks";
  EXPECT_EQ(b.load(1).running, 10);
  // A down instance leaves the means: with 2 down, the mean running is over 0 and 1.
  b.set_up(2, false);
  EXPECT_DOUBLE_EQ(b.score(0, L), (100 + 16) / 1000.0 + 5 / ((4 + 10 + 1) / 2.0));
}

// ---------------------------------------------------------------------------------------------
// Bounds, concurrency, invalid input.

TEST(PdPrefillBalancer, DefaultPrefixMemoryHoldsTheLast65536Keys) {
  ASSERT_EQ(PrefillBalancerOptions{}.prefix_memory, 65536);
  PrefillBalancer b(2);
  // One prompt of exactly 65,536 blocks fills instance 0's memory.
  const int64_t blocks = PrefillBalancerOptions{}.prefix_memory;
  std::vector<uint64_t> chain(static_cast<size_t>(blocks));
  for (int64_t k = 0; k < blocks; ++k) chain[size_t(k)] = uint64_t(k + 1) * 0x9e3779b97f4a7c15ull | 1;
  const int64_t L = blocks * kDpBlockTokens + 10;
  b.assign(0, L, chain);
  EXPECT_EQ(b.cached_tokens(0, L, chain), blocks * kDpBlockTokens) << "every key held";
  EXPECT_EQ(b.cached_tokens(1, L, chain), 0);
  // Three more keys push out the three remembered first: the chain's deepest three.
  const std::vector<uint64_t> other = {7, 8, 9};
  b.assign(0, 3 * kDpBlockTokens, other);
  EXPECT_EQ(b.cached_tokens(0, L, chain), (blocks - 3) * kDpBlockTokens);
  EXPECT_EQ(b.cached_tokens(0, 3 * kDpBlockTokens + 1, other), 3 * kDpBlockTokens);
  // A memory as large again: the whole chain is pushed out.
  std::vector<uint64_t> next(static_cast<size_t>(blocks));
  for (int64_t k = 0; k < blocks; ++k) next[size_t(k)] = uint64_t(k + 1) * 0xc2b2ae3d27d4eb4full | 1;
  b.assign(0, L, next);
  EXPECT_EQ(b.cached_tokens(0, L, chain), 0);
  EXPECT_EQ(b.cached_tokens(0, 3 * kDpBlockTokens + 1, other), 0);
  EXPECT_EQ(b.cached_tokens(0, L, next), blocks * kDpBlockTokens);
}

TEST(PdPrefillBalancer, ConcurrentRequestsSpreadLikeSequentialOnes) {
  // 8 request threads assign 100 equal prompts each while a polling thread reads loads and
  // re-marks instances up; each choose_and_assign is atomic, so the result is that of some
  // sequential order of equal requests: exactly even.
  constexpr int kInstances = 4, kThreads = 8, kEach = 100;
  PrefillBalancer prefill(kInstances);
  DecodeBalancer decode(kInstances);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread poller([&] {
    while (!stop.load()) {
      for (int i = 0; i < kInstances; ++i) {
        prefill.set_up(i, true);
        decode.set_up(i, true);
        if (prefill.load(i).running < 0 || decode.load(i).kv_blocks_used < 0) ++failures;
      }
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kEach; ++k) {
        if (prefill.choose_and_assign(640, {}) < 0) ++failures;
        if (decode.choose_and_assign(640) < 0) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  stop = true;
  poller.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < kInstances; ++i) {
    EXPECT_EQ(prefill.load(i).running, kThreads * kEach / kInstances) << "prefill instance " << i;
    EXPECT_EQ(prefill.load(i).prefill_tokens, 640 * kThreads * kEach / kInstances);
    EXPECT_EQ(decode.load(i).running, kThreads * kEach / kInstances) << "decode instance " << i;
    EXPECT_EQ(decode.load(i).kv_blocks_used, 10 * kThreads * kEach / kInstances);
  }
}

TEST(PdBalancer, DownInstancesAreResetAndNotAssigned) {
  PrefillBalancer b(2);
  const std::vector<uint64_t> keys = {5, 6};
  InstanceLoad busy;
  busy.prefill_tokens = 5000, busy.attention_work = 2.5e7, busy.running = 3, busy.block_size = 32;
  b.report(0, busy);
  b.assign(0, 200, keys);
  ASSERT_EQ(b.cached_tokens(0, 200, keys), 128);
  b.set_up(0, false);
  EXPECT_FALSE(b.is_up(0));
  EXPECT_EQ(b.load(0).running, 0) << "a down instance's load is reset";
  EXPECT_EQ(b.load(0).block_size, 32) << "but not its block size";
  EXPECT_EQ(b.cached_tokens(0, 200, keys), 0) << "and its prefixes forgotten";
  b.assign(0, 200, keys);  // chosen before it went down: nothing is added
  EXPECT_EQ(b.load(0).running, 0);
  EXPECT_EQ(b.cached_tokens(0, 200, keys), 0);
  b.report(0, busy);  // a report while down: kept, but the instance stays down
  EXPECT_FALSE(b.is_up(0));
  EXPECT_EQ(b.choose(200, keys, std::vector<int>{1}), -1);
  b.set_up(0, true);
  EXPECT_EQ(b.load(0).running, 3);
  EXPECT_EQ(b.choose(200, keys, std::vector<int>{1}), 0);

  DecodeBalancer d(2);
  d.set_up(1, false);
  d.assign(1, 640);
  EXPECT_EQ(d.load(1).kv_blocks_used, 0);
  EXPECT_EQ(d.choose_and_assign(640), 0);
  d.set_up(0, false);
  EXPECT_EQ(d.choose_and_assign(640), -1);
  EXPECT_EQ(d.load(0).running, 0);
}

TEST(PdBalancer, RejectsInvalidInput) {
  EXPECT_THROW(PrefillBalancer(0), Error);
  EXPECT_THROW(DecodeBalancer(-1), Error);
  EXPECT_THROW(PrefillBalancer(2, PrefillBalancerOptions{.prefix_memory = 0}), Error);
  EXPECT_THROW(PrefillBalancer(2, PrefillBalancerOptions{.affinity_tolerance = -0.1}), Error);
  EXPECT_THROW(PrefillBalancer(2, PrefillBalancerOptions{.affinity_tolerance = std::nan("")}), Error);

  PrefillBalancer b(2);
  InstanceLoad decode_load;
  decode_load.role = InstanceRole::kDecode;
  decode_load.running = 7;
  EXPECT_THROW(b.report(0, decode_load), Error) << "a decode instance in the prefill list";
  InstanceLoad negative;
  negative.running = -1;
  EXPECT_THROW(b.report(0, negative), Error);
  InstanceLoad bad_block;
  bad_block.block_size = 0;
  EXPECT_THROW(b.report(0, bad_block), Error);
  EXPECT_THROW(b.report(2, InstanceLoad{}), Error);
  EXPECT_THROW(b.set_up(-1, false), Error);
  EXPECT_THROW(b.choose(-1, {}), Error);
  const std::vector<uint64_t> three = {1, 2, 3};
  EXPECT_THROW(b.choose(191, three), Error) << "3 full blocks need 192 tokens";
  EXPECT_NO_THROW(b.choose(192, three));
  EXPECT_THROW(b.choose(100, {}, std::vector<int>{2}), Error) << "an exclude index out of range";
  EXPECT_THROW(b.assign(2, 100, {}), Error);
  EXPECT_THROW(b.choose_and_assign(191, three), Error);
  EXPECT_EQ(b.load(0).running, 0) << "a rejected call changes nothing";
  EXPECT_EQ(b.cached_tokens(0, 192, three), 0);

  DecodeBalancer d(1);
  InstanceLoad prefill_load;
  EXPECT_THROW(d.report(0, prefill_load), Error) << "a prefill instance in the decode list";
  EXPECT_THROW(d.choose(-5), Error);
  EXPECT_THROW(d.choose(5, std::vector<int>{1}), Error);
  EXPECT_THROW(d.assign(1, 5), Error);
}

}  // namespace
}  // namespace dsinfer::parallel
