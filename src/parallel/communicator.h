// The ranks of one expert-parallel group and the messages between them (docs/parallel.md).
// MPI is the transport: `mpirun -np N dsinfer ...` starts the ranks (on one machine or, with a
// hostfile, on several) and MPI_COMM_WORLD is the group. Without a launcher the group is this
// process alone and no MPI call is made at all (see mpi_runtime.h for why).
//
// Every wait goes through one polling loop with a watchdog: a peer that hangs or dies turns into a
// GroupFailure naming what was waited for (and, for point-to-point messages, which ranks), within
// the timeout, instead of a collective that never returns. The loop yields the CPU while it polls
// (sched_yield, then short sleeps), because ranks are often oversubscribed (4 ranks on 2 cores in
// CI) and a busy-polling MPI wait would steal the cores the computing rank needs.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/function_ref.h"

namespace dsinfer::parallel {

// The group cannot go on: a peer did not answer within the watchdog's deadline, or MPI failed.
class GroupFailure : public Error {
 public:
  using Error::Error;
};

// Outstanding non-blocking operations, waited for together. Reused across steps: clear() keeps
// the capacity, so a steady-state exchange allocates nothing.
struct Exchange {
  std::vector<MPI_Request> requests;
  std::vector<int> peers;  // the rank each request talks to; -1 for a collective
  std::vector<MPI_Status> statuses;
  // The pending ialltoallv's counts and displacements in bytes (one per exchange): MPI reads
  // them until the operation completes, so they live here, beside its request.
  std::vector<int> byte_counts;
  bool complete = false;  // every request done, statuses kept (by test() or wait())
  void clear() {
    requests.clear();
    peers.clear();
    byte_counts.clear();
    complete = false;
  }
  bool empty() const { return requests.empty(); }
};

class Communicator {
 public:
  // A group of one (no MPI).
  Communicator() = default;
  // MPI_COMM_WORLD; MPI must be initialised (MpiRuntime).
  static Communicator world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  bool uses_mpi() const { return mpi_; }
  // MPI_TAG_UB: the largest tag a message may carry (at least 32767 by the standard).
  int tag_upper_bound() const;
  // The watchdog: how long one wait may take before the group is declared failed (<= 0: forever).
  void set_timeout(double seconds) { timeout_s_ = seconds; }
  double timeout() const { return timeout_s_; }

  // Collectives: every rank calls them in the same order. `what` names the wait in errors.
  void allgather(const void* mine, size_t bytes, void* all, const char* what, double timeout_s = -1);
  std::vector<std::string> allgather_strings(const std::string& mine, const char* what, double timeout_s = -1);
  // The root's buffer is copied into every other rank's (resized to fit).
  void broadcast(std::vector<uint8_t>& buffer, int root, const char* what, double timeout_s = -1);
  // Every rank's buffer arrives at the root, in rank order (empty elsewhere).
  std::vector<std::vector<uint8_t>> gather(const std::vector<uint8_t>& mine, int root, const char* what);
  int64_t allreduce_max(int64_t value, const char* what);
  // values[i] summed over the ranks, in place.
  void allreduce_sum(int64_t* values, size_t n, const char* what);
  // One value to and from every rank.
  void alltoall(const int* send, int* recv, const char* what);

  // Non-blocking operations, completed by wait(). `bytes` may be 0 (the message says "nothing").
  // A receive may be posted larger than the message; received_bytes() tells what arrived.
  void isend(const void* buf, size_t bytes, int dst, int tag, Exchange& x);
  void irecv(void* buf, size_t bytes, int src, int tag, Exchange& x);
  // Counts and displacements in units of `unit` bytes (records or rows; at most 2 GB each way
  // per rank pair, MPI's int counts of bytes).
  void ialltoallv(const void* send, const int* send_counts, const int* send_displs, void* recv, const int* recv_counts,
                  const int* recv_displs, size_t unit, Exchange& x);
  void wait(Exchange& x, const char* what, double timeout_s = -1);
  // Moves the exchange on without blocking (Open MPI progresses transfers only inside MPI
  // calls); true when it has completed.
  bool test(Exchange& x, const char* what);
  // After wait(): the bytes request i received.
  size_t received_bytes(const Exchange& x, size_t i) const;

  // Ends every rank of the group (MPI_Abort); for a failure the group cannot survive.
  [[noreturn]] void abort(int code) const;

 private:
  bool mpi_ = false;
  int rank_ = 0, size_ = 1;
  double timeout_s_ = 60;

  void check_mpi(int rc, const char* what) const;
  // Posts one non-blocking collective (`post` starts it on the request given) and waits for it.
  void collective(const char* what, double timeout_s, FunctionRef<int(MPI_Request*)> post);
};

}  // namespace dsinfer::parallel
