#include "parallel/communicator.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <sstream>
#include <cstring>
#include <limits>

#include "base/timer.h"

namespace dsinfer::parallel {

namespace {

int as_int(size_t n, const char* what) {
  check(n <= size_t(INT_MAX), what, ": a message of ", n, " units is larger than MPI's int counts allow");
  return int(n);
}

// Every rank's piece laid end to end: counts and displacements in bytes; returns the total.
size_t byte_layout(const std::vector<int64_t>& sizes, std::vector<int>& counts, std::vector<int>& displs,
                   const char* what) {
  counts.assign(sizes.size(), 0);
  displs.assign(sizes.size(), 0);
  size_t total = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    counts[r] = as_int(size_t(sizes[r]), what);
    displs[r] = as_int(total, what);
    total += size_t(sizes[r]);
  }
  return total;
}

}  // namespace

Communicator Communicator::world() {
  Communicator c;
  c.mpi_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &c.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &c.size_);
  // Errors come back as return codes (check_mpi turns them into GroupFailure) instead of MPI's
  // default of aborting the job without a word about what was being done.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return c;
}

void Communicator::check_mpi(int rc, const char* what) const {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw GroupFailure(str("rank ", rank_, ": ", what, ": MPI error: ", std::string(text, size_t(len))));
}

void Communicator::collective(const char* what, double timeout_s, FunctionRef<int(MPI_Request*)> post) {
  Exchange x;
  x.requests.resize(1);
  x.peers.push_back(-1);  // no one rank to name
  check_mpi(post(&x.requests[0]), what);
  wait(x, what, timeout_s);
}

bool Communicator::test(Exchange& x, const char* what) {
  if (x.requests.empty() || x.complete) return true;
  x.statuses.resize(x.requests.size());
  int done = 0;
  check_mpi(MPI_Testall(int(x.requests.size()), x.requests.data(), &done, x.statuses.data()), what);
  x.complete = done != 0;
  return x.complete;
}

void Communicator::wait(Exchange& x, const char* what, double timeout_s) {
  if (x.requests.empty() || x.complete) return;
  const double limit = timeout_s < 0 ? timeout_s_ : timeout_s;
  const double start = now_seconds();
  const int n = int(x.requests.size());
  x.statuses.resize(x.requests.size());
  for (;;) {
    int done = 0;
    check_mpi(MPI_Testall(n, x.requests.data(), &done, x.statuses.data()), what);
    if (done) {
      x.complete = true;
      return;
    }
    // Each test also moves the transfer on (Open MPI progresses inside MPI calls), so the first
    // 2 ms poll back to back, yielding the core to whoever needs it (on an oversubscribed machine
    // the rank we wait for may); then, for a long wait such as an idle group's, short sleeps.
    // Sleeping from the first poll halved the bandwidth of 1 MB messages (bench/ep_bench).
    const double waited = now_seconds() - start;
    if (waited < 2e-3) sched_yield();
    else ::usleep(waited < 0.1 ? 50 : 500);
    if (limit > 0 && waited > limit) {
      std::vector<int> late;  // the peers of the requests still open
      for (int i = 0; i < n; ++i) {
        int one = 0;
        MPI_Test(&x.requests[size_t(i)], &one, MPI_STATUS_IGNORE);
        const int peer = x.peers[size_t(i)];
        if (!one && peer >= 0 && std::find(late.begin(), late.end(), peer) == late.end()) late.push_back(peer);
      }
      std::ostringstream who;
      if (late.empty()) who << "the other ranks";
      for (size_t i = 0; i < late.size(); ++i) who << (i ? ", " : "rank ") << late[i];
      throw GroupFailure(str("rank ", rank_, ": ", what, " waited ", limit, " s for ", who.str(),
                             ": a rank of the expert-parallel group died or hangs"));
    }
  }
}

size_t Communicator::received_bytes(const Exchange& x, size_t i) const {
  int count = 0;
  MPI_Get_count(&x.statuses[i], MPI_BYTE, &count);
  return size_t(count);
}

void Communicator::allgather(const void* mine, size_t bytes, void* all, const char* what, double timeout_s) {
  if (!mpi_) {
    std::memcpy(all, mine, bytes);
    return;
  }
  collective(what, timeout_s, [&](MPI_Request* r) {
    return MPI_Iallgather(mine, as_int(bytes, what), MPI_BYTE, all, as_int(bytes, what), MPI_BYTE, MPI_COMM_WORLD, r);
  });
}

std::vector<std::string> Communicator::allgather_strings(const std::string& mine, const char* what, double timeout_s) {
  if (!mpi_) return {mine};
  std::vector<int64_t> sizes(static_cast<size_t>(size_));
  const int64_t n = int64_t(mine.size());
  allgather(&n, sizeof n, sizes.data(), what, timeout_s);
  std::vector<int> counts, displs;
  std::string all(byte_layout(sizes, counts, displs, what), '\0');
  collective(what, timeout_s, [&](MPI_Request* r) {
    return MPI_Iallgatherv(mine.data(), int(n), MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                           MPI_COMM_WORLD, r);
  });
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(displs[size_t(r)]), size_t(counts[size_t(r)])));
  return out;
}

void Communicator::broadcast(std::vector<uint8_t>& buffer, int root, const char* what, double timeout_s) {
  if (!mpi_) return;
  uint64_t n = buffer.size();
  collective(what, timeout_s,
             [&](MPI_Request* r) { return MPI_Ibcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD, r); });
  if (rank_ != root) buffer.resize(size_t(n));
  if (n == 0) return;
  collective(what, timeout_s, [&](MPI_Request* r) {
    return MPI_Ibcast(buffer.data(), as_int(size_t(n), what), MPI_BYTE, root, MPI_COMM_WORLD, r);
  });
}

std::vector<std::vector<uint8_t>> Communicator::gather(const std::vector<uint8_t>& mine, int root, const char* what) {
  if (!mpi_) return {mine};
  const int64_t n = int64_t(mine.size());
  std::vector<int64_t> sizes(static_cast<size_t>(size_));
  collective(what, -1, [&](MPI_Request* r) {
    return MPI_Igather(&n, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, root, MPI_COMM_WORLD, r);
  });
  std::vector<int> counts, displs;  // read at the root only (sizes are zeros elsewhere)
  std::vector<uint8_t> all(byte_layout(sizes, counts, displs, what));
  collective(what, -1, [&](MPI_Request* r) {
    return MPI_Igatherv(mine.data(), int(n), MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, root,
                        MPI_COMM_WORLD, r);
  });
  std::vector<std::vector<uint8_t>> out;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r)
      out.emplace_back(all.begin() + displs[size_t(r)], all.begin() + displs[size_t(r)] + counts[size_t(r)]);
  return out;
}

int64_t Communicator::allreduce_max(int64_t value, const char* what) {
  if (!mpi_) return value;
  int64_t out = 0;
  collective(what, -1, [&](MPI_Request* r) {
    return MPI_Iallreduce(&value, &out, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD, r);
  });
  return out;
}

int Communicator::tag_upper_bound() const {
  if (!mpi_) return std::numeric_limits<int>::max();
  int* ub = nullptr;
  int found = 0;
  check_mpi(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &found), "MPI_TAG_UB");
  return found && ub ? *ub : 32767;
}

void Communicator::allreduce_sum(int64_t* values, size_t n, const char* what) {
  if (!mpi_ || n == 0) return;
  collective(what, -1, [&](MPI_Request* r) {
    return MPI_Iallreduce(MPI_IN_PLACE, values, as_int(n, what), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, r);
  });
}

void Communicator::alltoall(const int* send, int* recv, const char* what) {
  if (!mpi_) {
    recv[0] = send[0];
    return;
  }
  collective(what, -1, [&](MPI_Request* r) {
    return MPI_Ialltoall(send, 1, MPI_INT, recv, 1, MPI_INT, MPI_COMM_WORLD, r);
  });
}

void Communicator::isend(const void* buf, size_t bytes, int dst, int tag, Exchange& x) {
  check(mpi_, "isend without MPI (a group of one sends nothing)");
  x.requests.emplace_back();
  x.peers.push_back(dst);
  check_mpi(MPI_Isend(buf, as_int(bytes, "isend"), MPI_BYTE, dst, tag, MPI_COMM_WORLD, &x.requests.back()), "isend");
}

void Communicator::irecv(void* buf, size_t bytes, int src, int tag, Exchange& x) {
  check(mpi_, "irecv without MPI (a group of one receives nothing)");
  x.requests.emplace_back();
  x.peers.push_back(src);
  check_mpi(MPI_Irecv(buf, as_int(bytes, "irecv"), MPI_BYTE, src, tag, MPI_COMM_WORLD, &x.requests.back()), "irecv");
}

void Communicator::ialltoallv(const void* send, const int* send_counts, const int* send_displs, void* recv,
                              const int* recv_counts, const int* recv_displs, size_t unit, Exchange& x) {
  if (!mpi_) {
    std::memcpy(static_cast<char*>(recv) + size_t(recv_displs[0]) * unit,
                static_cast<const char*>(send) + size_t(send_displs[0]) * unit, size_t(send_counts[0]) * unit);
    return;
  }
  // In bytes rather than a derived datatype per record size: no datatype to free at the end.
  check(x.byte_counts.empty(), "one ialltoallv per exchange (its counts must not move until it completes)");
  const int n = size_;
  x.byte_counts.resize(4 * size_t(n));
  int* sc = x.byte_counts.data();
  int *sd = sc + n, *rc = sd + n, *rd = rc + n;
  for (int r = 0; r < n; ++r) {
    sc[r] = as_int(size_t(send_counts[r]) * unit, "ialltoallv");
    sd[r] = as_int(size_t(send_displs[r]) * unit, "ialltoallv");
    rc[r] = as_int(size_t(recv_counts[r]) * unit, "ialltoallv");
    rd[r] = as_int(size_t(recv_displs[r]) * unit, "ialltoallv");
  }
  x.requests.emplace_back();
  x.peers.push_back(-1);
  check_mpi(MPI_Ialltoallv(send, sc, sd, MPI_BYTE, recv, rc, rd, MPI_BYTE, MPI_COMM_WORLD, &x.requests.back()),
            "ialltoallv");
}

void Communicator::abort(int code) const {
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace dsinfer::parallel
