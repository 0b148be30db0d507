// MPI's lifetime in one dsinfer process. `mpirun -np N dsinfer serve ...` starts N ranks; each
// initialises MPI here and the ranks form one expert-parallel group. A process that no launcher
// started does not initialise MPI at all: an MPI singleton would be the same group of one, but
// MPI_Init costs ~0.3 s and starts Open MPI's runtime for every `dsinfer generate` and every test,
// so the group of one is Communicator's default instead, with no MPI underneath.
#pragma once

#include "parallel/communicator.h"

namespace dsinfer::parallel {

// True when a launcher (Open MPI's mpirun, MPICH's hydra, Slurm's PMIx) started this process.
bool launched_by_mpi();
// This machine's ranks of the job (1 without a launcher): each rank's thread pool takes its share
// of the cores.
int local_ranks();

// MPI_COMM_WORLD when this process's MpiRuntime initialised MPI, else the group of one.
Communicator world_group();

class MpiRuntime {
 public:
  // Initialises MPI when launched_by_mpi() (thread level: serialized calls from any thread).
  MpiRuntime();
  ~MpiRuntime();  // MPI_Finalize
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  // Ends every rank with `code` (stderr flushed first): for a rank that cannot go on.
  [[noreturn]] void abort(int code) const;

 private:
  bool initialized_ = false;
};

}  // namespace dsinfer::parallel
