// The group the MPI tests run in (MPI_COMM_WORLD under mpirun, a group of one without).
#pragma once

#include "parallel/communicator.h"

namespace dsinfer::testing {
extern parallel::Communicator* g_world;
inline parallel::Communicator& world() { return *g_world; }
}  // namespace dsinfer::testing
