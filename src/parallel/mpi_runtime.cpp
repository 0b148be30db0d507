#include "parallel/mpi_runtime.h"

#include <cstdio>
#include <cstdlib>

namespace dsinfer::parallel {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

int local_ranks() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  return 1;
}

MpiRuntime::MpiRuntime() {
  if (!launched_by_mpi()) return;
  int provided = 0;
  int argc = 0;
  char** argv = nullptr;
  check(MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided) == MPI_SUCCESS, "MPI_Init_thread failed");
  initialized_ = true;
  // The engine's step thread makes the calls after the main thread's start-up checks; never two
  // at once, which is what SERIALIZED promises.
  check(provided >= MPI_THREAD_SERIALIZED, "this MPI library does not support calls from more than one thread");
}

MpiRuntime::~MpiRuntime() {
  if (initialized_) MPI_Finalize();
}

void MpiRuntime::abort(int code) const {
  std::fflush(stdout);
  std::fflush(stderr);
  world_group().abort(code);
}

Communicator world_group() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized ? Communicator::world() : Communicator();
}

}  // namespace dsinfer::parallel
