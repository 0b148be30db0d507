// dsinfer: one binary, one subcommand per cmd_*.cpp file.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "base/error.h"
#include "command.h"
#include "kernels/cpu_features.h"

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
  for (auto& c : commands()) {
    if (name != c.name) continue;
    std::vector<std::string> rest(argv + 2, argv + argc);
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) {
      std::printf("usage: dsinfer %s %s\n\n%s\n", c.name, c.usage, c.summary);
      return 0;
    }
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
  std::fprintf(stderr, "dsinfer: unknown command '%s' (dsinfer --help lists them)\n", name.c_str());
  return 2;
}

}  // namespace dsinfer::app

int main(int argc, char** argv) { return dsinfer::app::main_impl(argc, argv); }
