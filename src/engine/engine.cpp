#include "engine/engine.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <utility>

#include "base/log.h"
#include "base/timer.h"
#include "cache/block_hash.h"

namespace dsinfer::engine {

Engine::Engine(std::unique_ptr<model::DeepSeekModel> model, tokenizer::Tokenizer tokenizer, const EngineOptions& options,
               uint64_t model_fingerprint)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options) {
  const auto& cfg = model_->config();
  max_model_len_ = options_.max_model_len > 0 ? std::min(options_.max_model_len, cfg.max_position_embeddings)
                                              : cfg.max_position_embeddings;
  check(max_model_len_ >= 2, "the context length must be at least 2 tokens");
  check(options_.max_running >= 1, "--max-running-requests must be at least 1");
  check(options_.max_batch_tokens >= options_.max_running,
        "--max-batch-tokens (", options_.max_batch_tokens, ") must be at least --max-running-requests (",
        options_.max_running, ") so every running sequence can decode each step");
  check(options_.max_queued >= 1, "--max-queued-requests must be at least 1");
  eos_id_ = tokenizer_.eos_id() >= 0 ? tokenizer_.eos_id() : int32_t(cfg.eos_token_id);
  int64_t num_blocks = options_.kv_blocks > 0
                           ? options_.kv_blocks
                           : cache::KvPool::blocks_in_bytes(options_.kv_cache_gb * 1e9, model_->cache_spec());
  pool_ = std::make_unique<cache::KvPool>(model_->cache_spec(), num_blocks);
  blocks_ = std::make_unique<cache::BlockManager>(*pool_, model_fingerprint, options_.prefix_caching);
  kv_capacity_tokens_ = num_blocks * pool_->block_size();
  scheduler_ = std::make_unique<Scheduler>(*blocks_, SchedulerOptions{options_.max_batch_tokens, options_.max_running});
  // Rows: every running sequence plus the n - 1 siblings a finished prefill may fork.
  runner_ = std::make_unique<Runner>(*model_, *blocks_, options_.max_batch_tokens,
                                     options_.max_running + kMaxChoices - 1);
  // DeepSeek pads the model's vocabulary past the tokenizer's; padded ids have no text and are
  // never sampled (the sampler only sees the first `vocab` logits of each row).
  int64_t vocab = cfg.vocab_size;
  if (tokenizer_.vocab_size() > 0) vocab = std::min<int64_t>(vocab, int64_t(tokenizer_.vocab_size()));
  sampler_ = std::make_unique<Sampler>(vocab);
  metrics_.kv_blocks_total = num_blocks;
  publish_gauges();
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() { shutdown(); }

uint64_t Engine::fingerprint(const std::string& dir, const model::DeepSeekModel& model) {
  namespace fs = std::filesystem;
  uint64_t h = mix64(uint64_t(model.cache_dtype()) + 1);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name == "config.json" || e.path().extension() == ".safetensors") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<char> head(1 << 16);
  for (const auto& f : files) {
    // Name, size and the first 64 KiB (the safetensors header and the first weights): two
    // checkpoints that differ anywhere practical differ here.
    std::string name = f.filename().string();
    uint64_t size = fs::file_size(f);
    h = cache::fingerprint_bytes(h, name.data(), name.size());
    h = cache::fingerprint_bytes(h, &size, sizeof size);
    std::ifstream in(f, std::ios::binary);
    in.read(head.data(), std::streamsize(head.size()));
    h = cache::fingerprint_bytes(h, head.data(), size_t(in.gcount()));
  }
  return h;
}

std::shared_ptr<RequestStream> Engine::submit(std::vector<int32_t> prompt, const SamplingParams& params) {
  params.validate();
  check(!prompt.empty(), "the prompt is empty");
  const int64_t vocab = model_->config().vocab_size;
  for (int32_t id : prompt) check(id >= 0 && id < vocab, "token id ", id, " is outside the vocabulary [0, ", vocab, ")");
  const int64_t len = int64_t(prompt.size());
  check(len < max_model_len_, "the prompt has ", len, " tokens but the context is ", max_model_len_, " tokens");
  // max_tokens against the room left, never len + max_tokens: near 2^63 the sum overflows.
  check(params.max_tokens <= max_model_len_ - len, "the prompt (", len, " tokens) plus max_tokens (",
        params.max_tokens, ") exceeds the context of ", max_model_len_, " tokens");
  check(params.max_tokens <= kv_capacity_tokens_ - len, "the prompt (", len, " tokens) plus max_tokens (",
        params.max_tokens, ") exceeds the KV cache (", kv_capacity_tokens_, " tokens); raise --kv-cache-gb");
  auto stream = std::make_shared<RequestStream>();
  stream->id = next_id_++;
  {
    std::lock_guard lock(mu_);
    if (!accepting_ || stop_) throw QueueFull("the server is shutting down");
    if (int64_t(incoming_.size()) + waiting_.load() >= options_.max_queued)
      throw QueueFull(str("the queue is full (", options_.max_queued, " requests waiting); retry shortly"));
    incoming_.push_back({std::move(prompt), params, stream, now_seconds()});
    ++in_flight_;
  }
  wake_.notify_all();
  return stream;
}

void Engine::cancel(const std::shared_ptr<RequestStream>& stream) {
  if (!stream) return;
  stream->cancelled = true;
  wake_.notify_all();
}

void Engine::abort_all() {
  {
    std::lock_guard lock(mu_);
    abort_all_ = true;
  }
  wake_.notify_all();
}

void Engine::shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineMetrics Engine::metrics() const {
  std::lock_guard lock(metrics_mu_);
  return metrics_;
}

void Engine::publish_gauges() {
  auto b = blocks_->stats();
  std::lock_guard lock(metrics_mu_);
  metrics_.running = int64_t(scheduler_->num_running());
  metrics_.waiting = int64_t(scheduler_->num_waiting());
  metrics_.kv_blocks_used = b.used;
  metrics_.kv_blocks_cached = b.cached;
  metrics_.kv_blocks_free = b.free;
  metrics_.prefix_evictions = uint64_t(b.evictions);
  metrics_.preemptions = uint64_t(scheduler_->total_preemptions());
}

void Engine::loop() {
  for (;;) {
    std::vector<Incoming> incoming;
    bool abort_everything = false, stopping = false;
    {
      std::unique_lock lock(mu_);
      // Sleep only when there is nothing to run; a cancel or a new request wakes us.
      if (scheduler_->idle() && incoming_.empty() && !stop_ && !abort_all_)
        wake_.wait_for(lock, std::chrono::milliseconds(50));
      incoming.swap(incoming_);
      abort_everything = std::exchange(abort_all_, false);
      stopping = stop_;
    }
    for (auto& in : incoming) {
      // Whatever accepting one request throws (out of memory) ends that request only.
      std::shared_ptr<RequestStream> stream = in.stream;
      try {
        accept(std::move(in));
      } catch (const std::exception& e) {
        log_warn("request ", stream->id, " failed on admission: ", e.what());
        requests_.erase(stream->id);
        stream->finish(str("internal error: ", e.what()));
        --in_flight_;
      }
    }
    std::vector<Request*> gone;
    for (auto& [id, r] : requests_)
      if (abort_everything || stopping || r->stream->cancelled) gone.push_back(r.get());
    for (Request* r : gone) abort(*r);
    waiting_ = int64_t(scheduler_->num_waiting());
    if (stopping) break;
    if (scheduler_->idle()) {
      publish_gauges();
      continue;
    }
    try {
      step();
    } catch (const std::exception& e) {
      // A failure inside a step is a bug, not a bad request; fail what is in flight and go on.
      log_warn("engine step failed: ", e.what());
      std::vector<Request*> all;
      for (auto& [id, r] : requests_) all.push_back(r.get());
      for (Request* r : all) {
        r->stream->finish(str("internal error: ", e.what()));
        abort(*r);
      }
    }
    waiting_ = int64_t(scheduler_->num_waiting());
    publish_gauges();
  }
  publish_gauges();
}

void Engine::accept(Incoming in) {
  auto r = std::make_unique<Request>();
  r->id = in.stream->id;
  r->prompt = std::move(in.prompt);
  r->params = std::move(in.params);
  r->stream = std::move(in.stream);
  r->arrival = in.arrival;
  r->stops = std::make_shared<const StopSet>(r->params.stop);
  r->base_seed = r->params.seed ? *r->params.seed : std::random_device{}() * 0x100000001ull + r->id;
  r->seqs.push_back(make_sequence(*r, 0));
  Sequence* first = r->seqs[0].get();
  requests_.emplace(r->id, std::move(r));
  scheduler_->add(first);  // last: if anything above throws, the scheduler never saw the request
}

std::unique_ptr<Sequence> Engine::make_sequence(Request& r, int index) {
  auto s = std::make_unique<Sequence>();
  s->id = next_seq_id_++;
  s->request = &r;
  s->index = index;
  s->tokens = r.prompt;
  // submit() bounded max_tokens by the context; min() keeps that true for any caller.
  s->tokens.reserve(size_t(std::min<int64_t>(int64_t(r.prompt.size()) + r.params.max_tokens, max_model_len_)));
  s->num_prompt = int64_t(r.prompt.size());
  s->rng = mix64(r.base_seed + 0x9e3779b97f4a7c15ull * uint64_t(index + 1));
  s->detok = std::make_unique<tokenizer::StreamingDetokenizer>(tokenizer_);
  s->stop = StopMatcher(r.stops);
  return s;
}

void Engine::abort(Request& r) {
  for (auto& s : r.seqs) {
    if (s->state == SeqState::kFinished) continue;
    scheduler_->remove(s.get());
    ChoiceUpdate u;
    u.index = s->index;
    u.finish = FinishReason::kAbort;
    r.stream->push(std::move(u));
  }
  // Choices not forked yet end too.
  for (int i = int(r.seqs.size()); i < r.params.n; ++i) {
    ChoiceUpdate u;
    u.index = i;
    u.finish = FinishReason::kAbort;
    r.stream->push(std::move(u));
  }
  const Usage usage = usage_of(r);
  {
    std::lock_guard lock(metrics_mu_);
    ++metrics_.requests_aborted;
  }
  r.stream->set_usage(usage);
  r.stream->finish();
  --in_flight_;
  requests_.erase(r.id);
}

void Engine::step() {
  scheduler_->schedule(step_);
  if (step_.chunks.empty()) {
    // Nothing fits although nothing else runs: the head of the queue can never be served.
    if (scheduler_->num_running() == 0 && scheduler_->num_waiting() > 0) {
      fail("no KV blocks for the next waiting request although nothing is running");
    }
    return;
  }
  for (const ScheduledChunk& c : step_.chunks) {
    Request& r = *c.seq->request;
    if (c.seq->index == 0 && r.cached_tokens < 0) r.cached_tokens = c.seq->computed;  // the prefix hit
  }
  runner_->run(step_);
  scheduler_->advance(step_);
  const double now = now_seconds();
  int64_t row = 0;
  std::vector<Request*> failed;
  for (const ScheduledChunk& c : step_.chunks) {
    if (!c.wants_logits) continue;
    const float* logits = runner_->logits_row(row++);
    Sequence& seq = *c.seq;
    Request& r = *seq.request;
    if (!r.error.empty()) continue;  // a sibling already failed this request in this step
    // What one request's tokens do (non-finite logits, a detokenizer or stop-matcher failure)
    // ends that request alone; it is failed after the loop, since later chunks may be its own.
    try {
      // Fork first: the siblings share the prompt's blocks, which the parent may release if its
      // first token already finishes it.
      if (seq.index == 0 && !r.forked && r.params.n > 1) fork_choices(r, logits, now);
      process_token(seq, logits, now);
    } catch (const Error& e) {
      r.error = e.what();
      failed.push_back(&r);
    } catch (const std::exception& e) {
      r.error = str("internal error: ", e.what());
      failed.push_back(&r);
    }
  }
  std::vector<Request*> done;
  for (const ScheduledChunk& c : step_.chunks)
    if (c.wants_logits && c.seq->request->error.empty()) done.push_back(c.seq->request);
  std::sort(done.begin(), done.end());
  done.erase(std::unique(done.begin(), done.end()), done.end());
  for (Request* r : failed) {
    log_warn("request ", r->id, " failed: ", r->error);
    r->stream->finish(r->error);  // first: the stream reports this error, not a plain abort
    abort(*r);
  }
  {
    std::lock_guard lock(metrics_mu_);
    ++metrics_.steps;
    metrics_.step_tokens += uint64_t(step_.num_tokens);
    metrics_.step_tokens_hist.observe(double(step_.num_tokens));
  }
  for (Request* r : done) finish_request_if_done(*r);
}

void Engine::fork_choices(Request& r, const float* logits, double now) {
  r.forked = true;
  Sequence& parent = *r.seqs[0];
  for (int i = 1; i < r.params.n; ++i) {
    r.seqs.push_back(make_sequence(r, i));
    Sequence& child = *r.seqs.back();
    // Share the prompt's blocks; the child then samples its first token from the same logits.
    if (blocks_->fork(parent.blocks, r.prompt.size(), child.blocks)) {
      child.computed = int64_t(r.prompt.size());
      child.hashes.assign(parent.hashes.begin(),
                          parent.hashes.begin() + std::min<int64_t>(int64_t(parent.hashes.size()),
                                                                    int64_t(r.prompt.size()) / blocks_->block_size()));
      scheduler_->add_running(&child);
      process_token(child, logits, now);
    } else {
      scheduler_->add_front(&child);  // recomputed later, mostly from the prefix cache
    }
  }
}

std::string Engine::decode_piece(Sequence& seq, int32_t id) {
  try {
    return seq.detok->push(id);
  } catch (const Error&) {
    return {};  // an id the model knows but the tokenizer does not: it has no text
  }
}

void Engine::process_token(Sequence& seq, const float* logits, double now) {
  Request& r = *seq.request;
  const SamplingParams& p = r.params;
  ChoiceUpdate u;
  u.index = seq.index;
  TokenLogprob lp;
  SamplingContext ctx{&p, seq.tokens.data(), seq.num_prompt, int64_t(seq.tokens.size()), &seq.rng};
  int32_t id = sampler_->sample(logits, ctx, &lp);
  seq.tokens.push_back(id);
  u.token_ids.push_back(id);
  if (p.logprobs >= 0) u.logprobs.push_back(std::move(lp));

  if (!r.first_token_seen) {
    r.first_token_seen = true;
    if (r.cached_tokens < 0) r.cached_tokens = 0;
    std::lock_guard lock(metrics_mu_);
    metrics_.ttft.observe(now - r.arrival);
  } else if (seq.last_token_time > 0) {
    std::lock_guard lock(metrics_mu_);
    metrics_.itl.observe(now - seq.last_token_time);
  }
  seq.last_token_time = now;

  bool stop_id = (!p.ignore_eos && id == eos_id_) ||
                 std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), id) != p.stop_token_ids.end();
  bool stopped = false;
  if (!stop_id) u.text = seq.stop.push(decode_piece(seq, id), stopped);
  FinishReason reason = FinishReason::kNone;
  if (stop_id || stopped)
    reason = FinishReason::kStop;
  else if (seq.num_generated() >= p.max_tokens || int64_t(seq.tokens.size()) >= max_model_len_)
    reason = FinishReason::kLength;
  if (reason != FinishReason::kNone && !stopped) {
    // Generation ended without a stop string: release whatever was held back.
    bool late_stop = false;
    u.text += seq.stop.push(seq.detok->flush(), late_stop);
    if (late_stop)
      reason = FinishReason::kStop;
    else
      u.text += seq.stop.flush();
  }
  u.finish = reason;
  r.stream->push(std::move(u));
  if (reason != FinishReason::kNone) finish_sequence(seq, reason);
}

void Engine::finish_sequence(Sequence& seq, FinishReason reason) {
  seq.finish = reason;
  scheduler_->remove(&seq);
  ++seq.request->finished;
}

Usage Engine::usage_of(const Request& r) {
  Usage u;
  u.prompt_tokens = int64_t(r.prompt.size());
  u.cached_tokens = std::max<int64_t>(0, r.cached_tokens);
  for (auto& s : r.seqs) u.completion_tokens += s->num_generated();
  return u;
}

void Engine::finish_request_if_done(Request& r) {
  if (r.finished < r.params.n) return;
  const Usage u = usage_of(r);
  {
    // Metrics first: whoever sees the stream finish must also see it counted.
    std::lock_guard lock(metrics_mu_);
    bool any_length = false;
    for (auto& s : r.seqs) any_length |= s->finish == FinishReason::kLength;
    ++(any_length ? metrics_.requests_finished_length : metrics_.requests_finished_stop);
    metrics_.prompt_tokens += uint64_t(u.prompt_tokens);
    metrics_.cached_prompt_tokens += uint64_t(u.cached_tokens);
    metrics_.generation_tokens += uint64_t(u.completion_tokens);
    metrics_.e2e.observe(now_seconds() - r.arrival);
  }
  r.stream->set_usage(u);
  r.stream->finish();
  --in_flight_;
  requests_.erase(r.id);
}

}  // namespace dsinfer::engine
