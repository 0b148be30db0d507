// dsinfer: one binary, one subcommand per cmd_*.cpp file.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "base/error.h"
#include "command.h"
#include "kernels/cpu_features.h"
#include "parallel/mpi_runtime.h"

namespace dsinfer::app {

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

static void print_help() {
  std::printf("usage: dsinfer COMMAND [flags]   (dsinfer COMMAND --help for its flags)\n\ncommands:\n");
  auto all = commands();
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return std::strcmp(a.name, b.name) < 0; });
  for (auto& c : all) std::printf("  %-12s %s\n", c.name, c.summary);
}

// The kernel path in use and every path this CPU could run (DSINFER_ISA picks among them).
static void print_version() {
  std::printf("dsinfer %s\nkernel path: %s (this CPU runs:", DSINFER_VERSION, kernels::isa_name(kernels::active_isa()));
  for (kernels::Isa isa : kernels::supported_isas()) std::printf(" %s", kernels::isa_name(isa));
  std::printf("; set DSINFER_ISA to choose)\n");
}

static int run_command(const Command& c, const std::string& name, const std::vector<std::string>& rest) {
  try {
    Args args(name, rest);
    return c.run(args);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "dsinfer %s: error: %s\n", c.name, e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "dsinfer %s: error: %s\n", c.name, e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "dsinfer %s: error: out of memory\n", c.name);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsinfer %s: internal error: %s\n", c.name, e.what());
    return 70;
  }
}

static int main_impl(int argc, char** argv) {
  try {  // a DSINFER_ISA this CPU cannot honour stops here, before any work, with its reason
    kernels::isa_from_environment();
  } catch (const Error& e) {
    std::fprintf(stderr, "dsinfer: error: %s\n", e.what());
    return 2;
  }
  if (argc >= 2 && !std::strcmp(argv[1], "--version")) {
    print_version();
    return 0;
  }
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  // Under mpirun every rank initialises MPI (and finalises it when the command returns), and the
  // ranks on one machine share its cores: each rank's thread pool takes its share unless
  // DSINFER_THREADS says otherwise.
  std::optional<parallel::MpiRuntime> mpi;
  if (parallel::launched_by_mpi()) {
    if (!std::getenv("DSINFER_THREADS")) {
      const int share = std::max(1, int(std::thread::hardware_concurrency()) / parallel::local_ranks());
      setenv("DSINFER_THREADS", std::to_string(share).c_str(), 0);
    }
    // MPI starts threads of its own; they must not take SIGTERM/SIGINT (whose default action
    // would end the process where `serve` drains), so they start with both blocked. This
    // thread's mask is restored after.
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    try {
      mpi.emplace();
    } catch (const Error& e) {
      std::fprintf(stderr, "dsinfer: error: %s\n", e.what());
      return 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  for (auto& c : commands()) {
    if (name != c.name) continue;
    std::vector<std::string> rest(argv + 2, argv + argc);
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) {
      std::printf("usage: dsinfer %s %s\n\n%s\n", c.name, c.usage, c.summary);
      return 0;
    }
    const int rc = run_command(c, name, rest);
    // A rank that fails ends the whole group: the others may be waiting for it in a collective,
    // where MPI_Finalize would wait forever.
    if (rc != 0 && mpi && parallel::world_group().size() > 1) mpi->abort(rc);
    return rc;
  }
  std::fprintf(stderr, "dsinfer: unknown command '%s' (dsinfer --help lists them)\n", name.c_str());
  return 2;
}

}  // namespace dsinfer::app

int main(int argc, char** argv) { return dsinfer::app::main_impl(argc, argv); }
