#include "engine/engine.h"

#include <algorithm>
#include <future>
#include <random>
#include <utility>

#include "base/hash.h"
#include "base/log.h"
#include "base/memory_info.h"
#include "base/timer.h"

namespace dsinfer::engine {

Engine::Engine(std::unique_ptr<model::DeepSeekModel> model, tokenizer::Tokenizer tokenizer, const EngineOptions& options,
               parallel::Communicator* group, StepBoundaryTask* boundary)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), group_(group), boundary_(boundary), options_(options) {
  if (grouped()) balancer_ = std::make_unique<parallel::DpBalancer>(group_->size(), parallel::DpBalancePolicy::kBoth);
  const auto& cfg = model_->config();
  max_model_len_ = options_.max_model_len > 0 ? std::min(options_.max_model_len, cfg.max_position_embeddings)
                                              : cfg.max_position_embeddings;
  check(max_model_len_ >= 2, "the context length must be at least 2 tokens");
  check(options_.max_running >= 1, "--max-running-requests must be at least 1");
  check(options_.max_batch_tokens >= options_.max_running,
        "--max-batch-tokens (", options_.max_batch_tokens, ") must be at least --max-running-requests (",
        options_.max_running, ") so every running sequence can decode each step");
  check(options_.max_queued >= 1, "--max-queued-requests must be at least 1");
  check(options_.draft_tokens >= 0 && options_.draft_tokens <= EngineOptions::kMaxDraftTokens,
        "--draft-tokens must be between 1 and ", EngineOptions::kMaxDraftTokens, ", got ", options_.draft_tokens);
  eos_id_ = tokenizer_.eos_id() >= 0 ? tokenizer_.eos_id() : int32_t(cfg.eos_token_id);
  // DeepSeek pads the model's vocabulary past the tokenizer's; padded ids have no text and are
  // never sampled (the sampler only sees the first `vocab` logits of each row).
  vocab_ = cfg.vocab_size;
  if (tokenizer_.vocab_size() > 0) vocab_ = std::min<int64_t>(vocab_, int64_t(tokenizer_.vocab_size()));
  // The warm-up and the pool belong to the step thread (per-thread kernel scratch is sized by the
  // thread that runs the steps): wait for it to be ready, or for the reason it is not.
  std::promise<void> ready;
  std::future<void> started = ready.get_future();
  thread_ = std::thread([this, &ready] {
    try {
      start();
    } catch (...) {
      ready.set_exception(std::current_exception());
      return;
    }
    ready.set_value();
    loop();
  });
  try {
    started.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

Engine::~Engine() { shutdown(); }

void Engine::start() {
  const kernels::KvCacheSpec spec = model_->cache_spec();
  // Routing seen by an observer (expert-load recording) and DSINFER_DUMP files are the requests',
  // not the warm-up's.
  model::RoutingObserver* observer = model_->observer();
  model_->set_observer(nullptr);
  model_->set_dumping(false);
  const double warm_start = now_seconds();
  if (options_.warm_up) {
    // The largest prefill step, on a pool of its own: the activations it grows are in the
    // measurement of the memory left.
    cache::KvPool scratch(spec, (options_.max_batch_tokens + spec.block_size - 1) / spec.block_size + 1);
    warm_up_prefill(scratch.view(), scratch.num_blocks(), 0, options_.max_batch_tokens);
  }
  const int64_t num_blocks = options_.kv_blocks > 0 ? options_.kv_blocks : kv_blocks_from_memory();
  pool_ = std::make_unique<cache::KvPool>(spec, num_blocks);
  blocks_ = std::make_unique<cache::BlockManager>(*pool_, model_->fingerprint(), options_.prefix_caching);
  kv_capacity_tokens_ = num_blocks * pool_->block_size();
  scheduler_ = std::make_unique<Scheduler>(*blocks_, options_);
  if (!options_.kv_disk_dir.empty()) {
    check(options_.prefix_caching, "--kv-disk-dir needs the prefix cache (drop --no-prefix-cache)");
    disk_ = std::make_unique<DiskPrefixLoads>(disk_tier_options(options_), *blocks_, model_->fingerprint(), pool_->view(), [this] {
      {
        std::lock_guard lock(mu_);
        disk_loaded_ = true;
      }
      wake_.notify_all();
    });
  }
  // Rows: every running sequence plus the n - 1 siblings a finished prefill may fork, each with
  // its drafts.
  const int64_t rows = (options_.max_running + kMaxChoices - 1) * (1 + options_.draft_tokens);
  runner_ = std::make_unique<Runner>(*model_, pool_->view(), options_.max_batch_tokens, rows);
  // A cache with the MTP module's layer: a prefix hit recomputes the token at its end.
  blocks_->set_lookahead(model_->has_mtp());
  if (options_.draft_tokens > 0)
    drafter_ = std::make_unique<MtpDrafter>(*model_, pool_->view(), options_.draft_tokens, vocab_,
                                            options_.max_batch_tokens, rows);
  sampler_ = std::make_unique<Sampler>(vocab_);
  exporter_ = std::make_unique<ExportObserver>(step_, pool_->view());
  step_.chunks.reserve(size_t(options_.max_running + kMaxChoices));
  retiring_.reserve(step_.chunks.capacity());
  failed_.reserve(step_.chunks.capacity());
  touched_.reserve(step_.chunks.capacity());
  piece_.reserve(512);
  text_.reserve(2048);
  if (options_.warm_up) {
    // Over the real pool: a decode step of every running sequence with the pool's whole capacity
    // as their contexts (the split plan and table widths at their largest), and a prefill chunk
    // over as much cached context as attention decompresses at once.
    warm_up_decode(pool_->view(), num_blocks);
    // The context-sized buffers of a prefill chunk (decompressed K/V of a whole tile) grow with a
    // short chunk over a long context: a full-sized chunk there would cost seconds of attention.
    // The chunk-sized buffers of the tiled path are reserved for max_batch_tokens instead.
    const int64_t longest = std::min(max_model_len_, kv_capacity_tokens_);
    const int64_t chunk = std::min<int64_t>(kWarmUpChunk, options_.max_batch_tokens);
    const int64_t context = std::clamp<int64_t>(std::min(model_->attention_context_tile(), longest) - chunk, 0,
                                                std::max<int64_t>(0, longest - chunk));
    // A group's ranks run the same warm-up forwards whatever their pools (each meets the others
    // in every MoE layer), so this one runs even without context there.
    if (context > 0 || grouped()) warm_up_prefill(pool_->view(), num_blocks, context, chunk);
    model_->reserve_chunk(options_.max_batch_tokens);
    log_debug("warm-up: ", now_seconds() - warm_start, " s (a prefill of ", options_.max_batch_tokens, " tokens, a decode of ",
             options_.max_running, " sequences over ", kv_capacity_tokens_, " cached tokens, ", chunk,
             " tokens over ", context, ")");
  }
  model_->set_observer(observer);
  model_->set_dumping(true);
  metrics_.kv_blocks_total = num_blocks;
  metrics_.kv_bytes_per_token = spec.num_layers * spec.row_bytes();
  metrics_.draft_tokens = options_.draft_tokens;
  publish_gauges();
}

RequestLimits Engine::limits() const { return {model_->config().vocab_size, max_model_len_, kv_capacity_tokens_}; }

std::shared_ptr<RequestStream> Engine::submit(std::vector<int32_t> prompt, const SamplingParams& params) {
  return submit(validate_request(limits(), std::move(prompt), params));
}

std::shared_ptr<RequestStream> Engine::submit(ValidatedRequest request) { return submit(std::move(request), nullptr); }

std::shared_ptr<RequestStream> Engine::submit(ValidatedRequest request, std::shared_ptr<KvExport> export_to) {
  return enqueue(std::move(request), std::move(export_to), nullptr);
}

std::shared_ptr<RequestStream> Engine::submit_import(ValidatedRequest request, std::shared_ptr<KvImport> import) {
  check(import != nullptr, "submit_import needs a KvImport");
  check(!grouped() || group_->is_root(), "requests are submitted on rank 0");
  import->set_on_change([this] {
    {
      std::lock_guard lock(mu_);
      imports_changed_ = true;
    }
    wake_.notify_all();
  });
  return enqueue(std::move(request), nullptr, std::move(import));
}

std::shared_ptr<RequestStream> Engine::enqueue(ValidatedRequest request, std::shared_ptr<KvExport> export_to,
                                               std::shared_ptr<KvImport> import) {
  const SamplingParams& params = request.params();
  auto stream = std::make_shared<RequestStream>(int(params.n));
  stream->id = next_id_++;
  {
    std::lock_guard lock(mu_);
    if (!accepting_ || stop_) throw QueueFull("the server is shutting down");
    if (int64_t(incoming_.size()) + waiting_.load() >= options_.max_queued)
      throw QueueFull(str("the queue is full (", options_.max_queued, " requests waiting); retry shortly"));
    incoming_.push_back(
        {std::move(request).take_prompt(), params, stream, now_seconds(), std::move(export_to), std::move(import)});
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
  EngineMetrics m;
  {
    std::lock_guard lock(metrics_mu_);
    m = metrics_;
  }
  // Read when asked, not published every step: the tier keeps its own counters under its own
  // lock (thread-safe), and copying them (strings included) would cost each step an allocation.
  // disk_ is set before the constructor returns and lives as long as the engine.
  if (disk_) m.kv_disk = disk_->metrics();
  if (!m.ranks.empty()) {  // rank 0 of a group: speculative decoding's counters are the group's
    m.mtp_drafted = m.mtp_accepted = m.mtp_verify_steps = m.mtp_emitted = 0;
    for (const RankGauges& g : m.ranks) {
      m.mtp_drafted += g.mtp_drafted;
      m.mtp_accepted += g.mtp_accepted;
      m.mtp_verify_steps += g.mtp_verify_steps;
      m.mtp_emitted += g.mtp_emitted;
    }
  }
  return m;
}

void Engine::publish_gauges() {
  auto b = blocks_->stats();
  std::lock_guard lock(metrics_mu_);
  metrics_.running = int64_t(scheduler_->num_running());
  metrics_.waiting = int64_t(scheduler_->num_waiting());
  metrics_.kv_blocks_used = b.used;
  metrics_.kv_blocks_cached = b.cached;
  metrics_.kv_blocks_free = b.free;
  prefill_load(metrics_.prefill_tokens, metrics_.attention_work);
  metrics_.importing = int64_t(importing_.size());
  if (!metrics_.ranks.empty()) {  // rank 0 of a group: the group's sums (per rank in `ranks`)
    metrics_.running = metrics_.waiting = metrics_.kv_blocks_used = metrics_.kv_blocks_total = 0;
    for (const RankGauges& g : metrics_.ranks) {
      metrics_.running += g.running;
      metrics_.waiting += g.waiting;
      metrics_.kv_blocks_used += g.kv_blocks_used;
      metrics_.kv_blocks_total += g.kv_blocks_total;
    }
  }
  metrics_.prefix_evictions = uint64_t(b.evictions);
  metrics_.preemptions = uint64_t(scheduler_->total_preemptions());
}

void Engine::prefill_load(int64_t& tokens, double& work) const {
  tokens = 0;
  work = 0;
  for (const auto& [id, req] : requests_)
    for (const auto& s : req->seqs) {
      if (s->state == SeqState::kFinished || req->import_from) continue;
      const int64_t left = std::max<int64_t>(0, s->num_prompt - s->computed);
      tokens += left;
      work += double(left) * double(left);
    }
}

void Engine::wait_stopped() {
  if (thread_.joinable()) thread_.join();
}

std::string Engine::group_failure() const {
  std::lock_guard lock(metrics_mu_);
  return group_failure_;
}

void Engine::fail_all_local(const std::string& why) {
  std::vector<Request*> all;
  for (auto& [id, r] : requests_) all.push_back(r.get());
  for (Request* r : all) fail_request(*r, why);
}

void Engine::loop() {
  if (grouped()) {
    group_loop();
    return;
  }
  for (;;) {
    std::vector<Incoming> incoming;
    bool abort_everything = false, stopping = false;
    {
      std::unique_lock lock(mu_);
      // Sleep only when there is nothing to run; a cancel or a new request wakes us.
      if (scheduler_->idle() && incoming_.empty() && !stop_ && !abort_all_ && !imports_changed_ && !disk_loaded_)
        wake_.wait_for(lock, std::chrono::milliseconds(50));
      imports_changed_ = false;
      disk_loaded_ = false;
      incoming.swap(incoming_);
      // Counted as waiting from here, so submit()'s queue check never sees them in neither place.
      waiting_ += int64_t(incoming.size());
      abort_everything = std::exchange(abort_all_, false);
      stopping = stop_;
    }
    for (auto& in : incoming) admit(std::move(in));
    std::vector<Request*> gone;
    for (auto& [id, r] : requests_)
      if (abort_everything || stopping || r->stream->cancelled) gone.push_back(r.get());
    for (Request* r : gone) abort(*r);
    if (!importing_.empty()) poll_imports(now_seconds());
    if (disk_) disk_boundary();
    waiting_ = int64_t(scheduler_->num_waiting() + importing_.size() + (disk_ ? disk_->waiting() : 0));
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
      fail_all_local(str("internal error: ", e.what()));
    }
    waiting_ = int64_t(scheduler_->num_waiting() + (disk_ ? disk_->waiting() : 0));
    publish_gauges();
  }
  publish_gauges();
}

void Engine::disk_boundary() {
  // Writes first: the blocks the last step committed are still indexed (nothing has been
  // allocated since), so they are pinned before a load could evict them.
  disk_->write_through();
  disk_ready_.clear();
  disk_->poll(disk_ready_);
  for (Sequence* s : disk_ready_) scheduler_->add(s);
}

void Engine::admit(Incoming in) {
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

void Engine::accept(Incoming in) {
  auto r = std::make_unique<Request>();
  r->id = in.stream->id;
  r->prompt = std::move(in.prompt);
  r->params = std::move(in.params);
  r->stream = std::move(in.stream);
  r->arrival = in.arrival;
  r->stops = std::make_shared<const StopSet>(r->params.stop);
  r->base_seed = r->params.seed ? *r->params.seed : std::random_device{}() * 0x100000001ull + r->id;
  r->export_to = std::move(in.export_to);
  r->import_from = std::move(in.import_from);
  r->seqs.push_back(make_sequence(*r, 0));
  Sequence* first = r->seqs[0].get();
  Request& req = *r;
  requests_.emplace(r->id, std::move(r));
  if (req.import_from) {
    if (reserve_import(req)) importing_.push_back(&req);
    return;
  }
  if (disk_ && disk_->start(*first)) return;  // queued once its lookup is back (disk_boundary)
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
  // The block table at its final size too: crossing into a new block mid-decode allocates nothing.
  s->blocks.reserve(size_t(std::min<int64_t>(int64_t(r.prompt.size()) + r.params.max_tokens, max_model_len_) / pool_->block_size() + 2));
  s->drafts.reserve(size_t(options_.draft_tokens));
  s->rng = mix64(r.base_seed + 0x9e3779b97f4a7c15ull * uint64_t(index + 1));
  s->detok = std::make_unique<tokenizer::StreamingDetokenizer>(tokenizer_);
  s->stop = StopMatcher(r.stops);
  return s;
}

void Engine::fail_request(Request& r, const std::string& why) {
  r.stream->finish(why);  // first: the stream reports this error, not a plain abort
  abort(r);
}

void Engine::abort(Request& r) {
  if (r.import_from) {
    importing_.erase(std::remove(importing_.begin(), importing_.end(), &r), importing_.end());
    r.import_from->fail("the request ended before its KV arrived");  // no-op once ready
  }
  for (auto& s : r.seqs) {
    if (s->state == SeqState::kFinished) continue;
    if (disk_) disk_->forget(*s);
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
  // schedule
  scheduler_->schedule(step_);
  if (step_.chunks.empty()) {
    // A rank of a group steps with the others even with nothing to run: its MoE layers take part
    // in every dispatch and combine with an empty batch.
    if (grouped()) {
      runner_->run(step_);
      if (drafter_) drafter_->run(true);  // and in every pass of the MTP module's MoE layer
    }
    // Nothing fits although nothing else runs: the head of the queue can never be served.
    if (scheduler_->num_running() == 0 && scheduler_->num_waiting() > 0) {
      const char* why = "no KV blocks for the next waiting request although nothing is running";
      if (!grouped()) fail(why);
      log_warn("engine step failed: ", why);
      fail_all_local(str("internal error: ", why));  // a throw would leave the group out of step
    }
    return;
  }
  for (const ScheduledChunk& c : step_.chunks) {
    Request& r = *c.seq->request;
    if (c.seq->index == 0 && r.cached_tokens < 0) {  // the prefix hit, and how much of it the disk gave
      r.cached_tokens = c.seq->computed;
      r.disk_cached_tokens = std::min(c.seq->disk_hit_tokens, c.seq->computed);
    }
  }
  // A prefill instance's prompts leave layer by layer, while the later layers compute.
  bool exporting = false;
  for (const ScheduledChunk& c : step_.chunks)
    exporting |= c.seq->request->export_to != nullptr && c.seq->computed < c.seq->num_prompt;
  model_->set_layer_observer(exporting ? exporter_.get() : nullptr);
  // run
  const double t0 = now_seconds();
  runner_->run(step_);
  const double t1 = now_seconds();
  // postprocess
  scheduler_->advance(step_);
  postprocess(t1);
  {
    std::lock_guard lock(metrics_mu_);
    metrics_.forward_seconds += t1 - t0;
    ++metrics_.steps;
    metrics_.step_tokens += uint64_t(step_.num_tokens);
    metrics_.step_tokens_hist.observe(double(step_.num_tokens));
  }
}

void Engine::postprocess(double now) {
  // Requests are finished or failed after the loop: a request's later chunks may still follow.
  failed_.clear();
  touched_.clear();
  pending_firsts_.clear();  // a failed step's (its requests were failed with it)
  defer_retire_ = drafter_ != nullptr;
  for (size_t i = 0; i < step_.chunks.size(); ++i) {
    const ScheduledChunk& c = step_.chunks[i];
    const int64_t rows = runner_->row_count(i);
    if (rows == 0) continue;
    Sequence& seq = *c.seq;
    Request& r = *seq.request;
    if (!r.error.empty()) continue;  // a sibling already failed this request in this step
    const float* first = runner_->logits_row(runner_->first_row(i));
    // What one request's tokens do (non-finite logits, a detokenizer or stop-matcher failure)
    // ends that request alone.
    try {
      if (!c.wants_logits) {  // a returned-logits prompt chunk that does not end the prompt
        ChoiceUpdate u;
        u.index = seq.index;
        report_logits(seq, first, rows, u);
        r.stream->push(std::move(u));
        continue;
      }
      if (c.drafts > 0) {
        scheduler_->verified(&seq, process_drafts(seq, first, rows, now));
        continue;
      }
      const float* last = first + size_t(rows - 1) * size_t(model_->config().vocab_size);
      // Fork first: the siblings share the prompt's blocks, which the parent may release if its
      // first token already finishes it.
      if (seq.index == 0 && !r.forked && r.params.n > 1) fork_choices(r, last, now);
      process_token(seq, last, rows, now);
    } catch (const Error& e) {
      r.error = e.what();
      failed_.push_back(&r);
    } catch (const std::exception& e) {
      r.error = str("internal error: ", e.what());
      failed_.push_back(&r);
    }
  }
  if (drafter_) {
    try {
      run_drafter();
    } catch (...) {  // the step fails (Engine::loop): the sequences that finished still go
      retire_finished();
      throw;
    }
    retire_finished();
  }
  // The requests that took a token and did not fail, listed before the failed ones are aborted
  // (which frees them).
  for (const ScheduledChunk& c : step_.chunks)
    if (c.wants_logits && c.seq->request->error.empty()) touched_.push_back(c.seq->request);
  std::sort(touched_.begin(), touched_.end());
  touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
  for (Request* r : failed_) {
    log_warn("request ", r->id, " failed: ", r->error);
    fail_request(*r, r->error);
  }
  for (Request* r : touched_) finish_request_if_done(*r);
}

void Engine::fork_choices(Request& r, const float* logits, double now) {
  r.forked = true;
  const Sequence& parent = *r.seqs[0];
  for (int i = 1; i < r.params.n; ++i) {
    r.seqs.push_back(make_sequence(r, i));
    Sequence& child = *r.seqs.back();
    // Running at once on the prompt's shared blocks: the child samples its first token from the
    // same logits. Otherwise it is queued and recomputed later.
    if (scheduler_->fork(parent, child, int64_t(r.prompt.size()))) process_token(child, logits, 1, now);
  }
}

void Engine::decode_piece(Sequence& seq, int32_t id, std::string& out) {
  try {
    seq.detok->push(id, out);
  } catch (const Error&) {
    // an id the model knows but the tokenizer does not: it has no text
  }
}

void Engine::report_logits(Sequence& seq, const float* first_row, int64_t rows, ChoiceUpdate& u) const {
  if (!seq.request->params.return_logits) return;
  const size_t vocab = size_t(model_->config().vocab_size);
  u.logits.assign(first_row, first_row + size_t(rows) * vocab);
  u.logits_rows = rows;
  u.logits_first_position = seq.computed - rows;  // advance() has counted this chunk in
}

void Engine::process_token(Sequence& seq, const float* logits, int64_t rows, double now) {
  Request& r = *seq.request;
  const SamplingParams& p = r.params;
  if (p.return_logits) {  // a tool's request: its rows go out ahead of the token they chose
    ChoiceUpdate u;
    u.index = seq.index;
    report_logits(seq, logits - size_t(rows - 1) * size_t(model_->config().vocab_size), rows, u);
    r.stream->push(std::move(u));
  }
  SamplingContext ctx{&p, seq.tokens.data(), seq.num_prompt, int64_t(seq.tokens.size()), &seq.rng};
  const size_t generated = size_t(seq.num_generated());
  int32_t id;
  if (generated < p.forced_tokens.size()) {
    id = p.forced_tokens[generated];
    if (p.logprobs >= 0) sampler_->logprobs(logits, id, p.logprobs, lp_);
  } else {
    id = sampler_->sample(logits, ctx, &lp_);
  }
  if (r.export_to && seq.index == 0 && generated == 0) {
    FirstToken first{id, seq.rng, std::nullopt, std::max<int64_t>(0, r.cached_tokens), r.disk_cached_tokens};
    if (p.logprobs >= 0) first.logprob = lp_;
    // With MTP the token waits for the module's drafts after it (export_mtp_rows).
    if (drafter_) pending_firsts_.push_back({&seq, std::move(first)});
    else r.export_to->prefill_done(first);
  }
  take_token(seq, id, p.logprobs >= 0 ? &lp_ : nullptr, now);
}

void Engine::take_token(Sequence& seq, int32_t id, const TokenLogprob* lp, double now) {
  Request& r = *seq.request;
  const SamplingParams& p = r.params;
  seq.tokens.push_back(id);

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

  // The token's text: detokenized, then held back while it could still become a stop string.
  // Both append into buffers of the step thread that keep their capacity.
  text_.clear();
  bool stop_id = (!p.ignore_eos && id == eos_id_) ||
                 std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), id) != p.stop_token_ids.end();
  bool stopped = false;
  if (!stop_id) {
    piece_.clear();
    decode_piece(seq, id, piece_);
    seq.stop.push(piece_, stopped, text_);
  }
  FinishReason reason = FinishReason::kNone;
  if (stop_id || stopped)
    reason = FinishReason::kStop;
  else if (seq.num_generated() >= p.max_tokens || int64_t(seq.tokens.size()) >= max_model_len_)
    reason = FinishReason::kLength;
  if (reason != FinishReason::kNone && !stopped) {
    // Generation ended without a stop string: release whatever was held back.
    bool late_stop = false;
    piece_.clear();
    seq.detok->flush(piece_);
    seq.stop.push(piece_, late_stop, text_);
    if (late_stop)
      reason = FinishReason::kStop;
    else
      seq.stop.flush(text_);
  }
  r.stream->push_token(seq.index, id, text_, lp, reason);
  if (reason != FinishReason::kNone) finish_sequence(seq, reason);
}

void Engine::finish_sequence(Sequence& seq, FinishReason reason) {
  seq.finish = reason;
  if (defer_retire_) retiring_.push_back(&seq);  // the MTP module still writes its rows of this step
  else scheduler_->remove(&seq);
  ++seq.request->finished;
}

Usage Engine::usage_of(const Request& r) {
  Usage u;
  u.prompt_tokens = int64_t(r.prompt.size());
  u.cached_tokens = std::max<int64_t>(0, r.cached_tokens);
  u.disk_cached_tokens = r.disk_cached_tokens;
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
    metrics_.disk_cached_prompt_tokens += uint64_t(u.disk_cached_tokens);
    metrics_.generation_tokens += uint64_t(u.completion_tokens);
    metrics_.e2e.observe(now_seconds() - r.arrival);
  }
  r.stream->set_usage(u);
  r.stream->finish();
  --in_flight_;
  requests_.erase(r.id);
}

}  // namespace dsinfer::engine
