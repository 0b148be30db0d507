// main() of the tests that run under mpirun (tests/parallel/extra.cmake starts them with 2 and 4
// ranks): every rank runs every test in the same order, so the collectives inside line up; the
// exit status is the worst of all ranks'.
#include <gtest/gtest.h>

#include "mpi_world.h"
#include "parallel/mpi_runtime.h"

namespace dsinfer::testing {
parallel::Communicator* g_world = nullptr;
}

int main(int argc, char** argv) {
  dsinfer::parallel::MpiRuntime mpi;
  dsinfer::parallel::Communicator world = dsinfer::parallel::world_group();
  world.set_timeout(120);  // a test that deadlocks fails instead of running forever
  dsinfer::testing::g_world = &world;
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  return int(world.allreduce_max(rc, "the test verdicts"));
}
