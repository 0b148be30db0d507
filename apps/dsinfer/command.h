// Subcommand registry: each `cmd_*.cpp` registers one subcommand with a static Registration,
// so adding a command touches no shared file.
#pragma once

#include <string>
#include <vector>

#include "args.h"

namespace dsinfer::app {

struct Command {
  const char* name;
  const char* summary;  // one line for `dsinfer --help`
  const char* usage;    // full flag list for `dsinfer NAME --help`
  int (*run)(Args& args);
};

std::vector<Command>& commands();

struct Registration {
  explicit Registration(Command c) { commands().push_back(c); }
};

}  // namespace dsinfer::app
