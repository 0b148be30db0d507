// The engine (nano-vllm's llm_engine): owns the model, the KV block manager, the scheduler, the
// runner and the sampler, and runs the step loop on its own thread. Other threads only submit,
// cancel and read metrics; everything else happens on the step thread, so the scheduler and the
// block manager need no locks. Every request — HTTP, `dsinfer generate`, `dsinfer logits` —
// takes this path. Each step reads as
//   schedule   (Scheduler: which chunks run, blocks allocated or preempted)
//   run        (Runner: one forward over every scheduled chunk)
//   postprocess(sample, detokenize, match stops, report, finish; the scheduler commits blocks)
// Before the first step the step thread warms up: it runs the largest prefill and decode steps the
// limits allow, so every buffer reaches its final size, and sizes the KV pool from the memory
// left after that; from then on a step allocates nothing in the model (tests/model) and the
// scheduling around it (tests/engine).
//
// In a data-parallel group (`mpirun -np N dsinfer serve`, docs/parallel.md) every rank runs an
// Engine over its own scheduler and KV cache, and the ranks step together, because every forward
// pass meets the others in each MoE layer's dispatch and combine (a rank with nothing to run
// steps with an empty batch). Rank 0 is the front door: requests are submitted there, it assigns
// each to a rank with DeepSeek's DP balancers (parallel/dp_balancer.h), and the other ranks'
// streams are relayed back to it after every step. engine_group.cpp holds that protocol.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/byte_stream.h"
#include "base/error.h"
#include "cache/block_manager.h"
#include "cache/kv_pool.h"
#include "engine/disk_prefix_loads.h"
#include "engine/engine_options.h"
#include "engine/step_boundary_task.h"
#include "engine/metrics.h"
#include "engine/mtp_drafter.h"
#include "engine/request.h"
#include "engine/runner.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/validated_request.h"
#include "model/deepseek.h"
#include "parallel/communicator.h"
#include "parallel/dp_balancer.h"
#include "tokenizer/tokenizer.h"

namespace dsinfer::engine {

// Thrown by submit() when the queue is full; the server answers 429 with Retry-After.
class QueueFull : public Error {
 public:
  using Error::Error;
};

class Engine {
 public:
  // Returns once the step thread has warmed up and the KV pool exists (rethrows its failure).
  // `group`: the data-parallel group this engine is one rank of (null or a group of one: alone);
  // it must outlive the engine. Every rank passes the same options.
  // `boundary`: work between a group's steps (online EPLB, engine/step_boundary_task.h), or null;
  // it must outlive the engine.
  Engine(std::unique_ptr<model::DeepSeekModel> model, tokenizer::Tokenizer tokenizer, const EngineOptions& options,
         parallel::Communicator* group = nullptr, StepBoundaryTask* boundary = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request validated against limits() (throws QueueFull when the queue is full).
  std::shared_ptr<RequestStream> submit(ValidatedRequest request);
  // A prefill instance's request (prefill/decode disaggregation, engine/kv_transfer.h): as
  // submit(), and every layer's KV rows of the prompt and the first token go to `export_to`.
  // In a data-parallel group these requests (and submit_import's) run on rank 0, whose process
  // holds the transfer endpoint; the group's experts serve them as any other.
  std::shared_ptr<RequestStream> submit(ValidatedRequest request, std::shared_ptr<KvExport> export_to);
  // A decode instance's request: reserves KV blocks for the prompt (import->wait_reserved() says
  // whether it could), then waits for the prompt's KV and first token to arrive through `import`
  // (until import->deadline(): then it fails) and decodes from there. The stream carries the
  // request's output as for submit(): the first token first.
  std::shared_ptr<RequestStream> submit_import(ValidatedRequest request, std::shared_ptr<KvImport> import);
  // Validates here (InvalidRequest for a bad request), then submits: for callers that have no
  // boundary of their own (the command-line tools, tests).
  std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, const SamplingParams& params);
  // What a request may ask of this engine.
  RequestLimits limits() const;
  // Frees the request's sequences and blocks at the next step boundary; the stream finishes.
  void cancel(const std::shared_ptr<RequestStream>& stream);

  // Refuse new requests from now on (drain); in-flight ones continue.
  void stop_accepting() { accepting_ = false; }
  bool accepting() const { return accepting_; }
  // No request in flight.
  bool idle() const { return in_flight_.load() == 0; }
  void abort_all();
  // Stops the step thread (aborting whatever is left). Called by the destructor too. On rank 0 of
  // a group this stops every rank.
  void shutdown();
  // Blocks until the step thread has ended: how a rank other than 0 serves (rank 0 stops it).
  void wait_stopped();
  // Non-empty once the group failed (a rank died, hung or fell out of step): every request in
  // flight was failed with this message and the engine accepts nothing more.
  std::string group_failure() const;

  EngineMetrics metrics() const;
  const tokenizer::Tokenizer& tokenizer() const { return tokenizer_; }
  const model::ModelConfig& config() const { return model_->config(); }
  int64_t max_model_len() const { return max_model_len_; }
  int64_t kv_capacity_tokens() const { return kv_capacity_tokens_; }
  const EngineOptions& options() const { return options_; }
  const model::DeepSeekModel& model() const { return *model_; }

 private:
  struct Incoming {
    std::vector<int32_t> prompt;
    SamplingParams params;
    std::shared_ptr<RequestStream> stream;
    double arrival;
    std::shared_ptr<KvExport> export_to = {};
    std::shared_ptr<KvImport> import_from = {};
  };
  // Tells the exports of the step's requests that a layer's rows are in the cache.
  class ExportObserver : public model::LayerObserver {
   public:
    ExportObserver(const SchedulerOutput& step, const kernels::KvCacheView& cache) : step_(step), cache_(cache) {}
    void on_layer_cached(int64_t layer) override;

   private:
    const SchedulerOutput& step_;
    kernels::KvCacheView cache_;
  };

  std::unique_ptr<model::DeepSeekModel> model_;
  tokenizer::Tokenizer tokenizer_;
  parallel::Communicator* group_ = nullptr;
  StepBoundaryTask* boundary_ = nullptr;
  EngineOptions options_;
  int64_t max_model_len_ = 0, kv_capacity_tokens_ = 0, vocab_ = 0;
  int32_t eos_id_ = -1;
  std::unique_ptr<cache::KvPool> pool_;
  std::unique_ptr<cache::BlockManager> blocks_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<DiskPrefixLoads> disk_;  // after blocks_: its pins are dropped before blocks_ goes
  std::unique_ptr<Runner> runner_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<MtpDrafter> drafter_;  // speculative decoding, when on

  // Shared with other threads.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Incoming> incoming_;
  bool stop_ = false, abort_all_ = false;
  std::atomic<bool> accepting_{true};
  std::atomic<int64_t> in_flight_{0}, waiting_{0};
  std::atomic<uint64_t> next_id_{1};
  bool imports_changed_ = false;  // a KvImport changed state: the step thread looks (under mu_)
  bool disk_loaded_ = false;      // a disk lookup finished: the step thread looks (under mu_)
  mutable std::mutex metrics_mu_;
  EngineMetrics metrics_;

  // Step thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
  uint64_t next_seq_id_ = 1;
  SchedulerOutput step_;
  std::vector<Request*> failed_, touched_;  // postprocess()'s lists, reused
  std::string piece_, text_;                // process_token's text buffers, reused
  std::vector<Request*> importing_;         // decode instance: requests waiting for their KV
  std::vector<Sequence*> disk_ready_;       // disk lookups that came back, reused
  // With MTP: sequences that finished in postprocess keep their blocks until the module has
  // written its rows of the step (then they are removed).
  bool defer_retire_ = false;
  std::vector<Sequence*> retiring_;
  std::unique_ptr<ExportObserver> exporter_;
  // Prefill instance with MTP: first tokens sampled this step, sent once the module has drafted
  // after them and its rows of the prompt are out (engine_mtp.cpp).
  struct PendingFirst {
    Sequence* seq;
    FirstToken first;
  };
  std::vector<PendingFirst> pending_firsts_;
  TokenLogprob lp_;
  std::thread thread_;

  std::shared_ptr<RequestStream> enqueue(ValidatedRequest request, std::shared_ptr<KvExport> export_to,
                                         std::shared_ptr<KvImport> import);
  void loop();
  bool grouped() const { return group_ && group_->size() > 1; }

  // The group protocol (engine_group.cpp), step thread only.
  struct RemoteRequest {  // rank 0: a request another rank runs, relayed to its client's stream
    std::shared_ptr<RequestStream> stream;
    double arrival = 0;
    int rank = 0;
    bool first_token_seen = false, cancel_sent = false, any_length = false;
  };
  std::unique_ptr<parallel::DpBalancer> balancer_;
  std::unordered_map<uint64_t, RemoteRequest> remote_;
  std::unordered_map<uint64_t, std::shared_ptr<RequestStream>> hosted_;  // ranks > 0: rank 0's requests
  std::vector<uint64_t> dirty_;  // hosted requests whose streams have news
  std::string group_failure_;    // under metrics_mu_
  void group_loop();
  // Rank 0 sends the step's control (new requests per rank, cancels, stop); every rank applies
  // its part. Returns false when the group stops.
  bool exchange_control(std::vector<Incoming>& incoming, bool abort_everything, bool stopping);
  // Every rank's load; true when any rank has work.
  bool exchange_status();
  // Ranks > 0 send their streams' news to rank 0, which relays it to the clients.
  void exchange_updates();
  void host_request(uint64_t id, std::vector<int32_t> prompt, SamplingParams params);
  void relay_update(ByteReader& r);
  void fail_group(const std::string& why);
  void fail_all_local(const std::string& why);
  // Step thread, once: the warm-up steps and the KV pool (see the top of this file).
  void start();
  int64_t kv_blocks_from_memory();
  void warm_up_prefill(const kernels::KvCacheView& cache, int64_t num_blocks, int64_t context, int64_t tokens);
  // Enough queries for the prefill attention's transposed-key path (kernels/attention.cpp).
  static constexpr int64_t kWarmUpChunk = 16;
  void warm_up_decode(const kernels::KvCacheView& cache, int64_t num_blocks);
  void warm_up_mtp(const model::Batch& batch, const kernels::KvCacheView& cache, std::vector<float>& logits);
  void step();
  void postprocess(double now);
  // accept(), and a failure ends that request only (its stream gets the error).
  void admit(Incoming in);
  void accept(Incoming in);
  void abort(Request& r);
  // Ends the request with an error its stream reports (not a plain abort).
  void fail_request(Request& r, const std::string& why);
  // Samples (or takes the forced) next token of seq from its logits row and reports it with
  // `rows` logits rows ending at that row when the request returns logits.
  void process_token(Sequence& seq, const float* logits, int64_t rows, double now);
  // A chunk that fed MTP drafts (rows: one per fed token): each row sampled in order as a step
  // without drafts would, while the draft fed at the next row equals the token sampled. Returns
  // how many fed tokens stand (the last one and the drafts that matched).
  int64_t process_drafts(Sequence& seq, const float* first, int64_t rows, double now);
  // After the step's tokens: the MTP module over the rows the step made valid, and new drafts.
  void run_drafter();
  // Prefill instance with MTP, after the module's pass: its rows of the step's exported prompts,
  // then the first tokens with their drafts.
  void export_mtp_rows();
  // The most drafts a decoding sequence may feed next: K, cut at max_tokens and the context.
  int64_t draft_limit(const Sequence& seq) const;
  // Then the sequences that finished during the step give their blocks back.
  void retire_finished();
  // The chosen token joins the sequence: text, stops, length, the stream (lp: its logprobs).
  void take_token(Sequence& seq, int32_t id, const TokenLogprob* lp, double now);
  // Decode instance: reserve blocks for an imported request; start the ones whose KV arrived,
  // fail the ones that failed or timed out.
  bool reserve_import(Request& r);
  void poll_imports(double now);
  void start_import(Request& r, double now);
  void report_logits(Sequence& seq, const float* first_row, int64_t rows, ChoiceUpdate& u) const;
  void fork_choices(Request& r, const float* logits, double now);
  void decode_piece(Sequence& seq, int32_t id, std::string& out);
  void finish_sequence(Sequence& seq, FinishReason reason);
  void finish_request_if_done(Request& r);
  // What a request's usage reports: prompt, cached and generated tokens over all its choices.
  static Usage usage_of(const Request& r);
  std::unique_ptr<Sequence> make_sequence(Request& r, int index);
  void publish_gauges();
  // The disk tier's step-boundary work: blocks written through, lookups that came back queued.
  void disk_boundary();
  // Prompt tokens still to prefill over the requests here, and the sum of their squares.
  void prefill_load(int64_t& tokens, double& work) const;
};

}  // namespace dsinfer::engine
