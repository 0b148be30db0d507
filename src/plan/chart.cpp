#include "plan/chart.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>

#include "base/error.h"

extern char** environ;

namespace dsinfer::plan {

namespace fs = std::filesystem;

namespace {

// gnuplot single-quoted strings escape a quote by doubling it.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::vector<std::string> columns(const ChartInput& in) {
  std::vector<std::string> names;
  auto collect = [&](const std::optional<PhaseResult>& r) {
    if (!r) return;
    for (const auto& b : r->breakdown)
      if (b.lane == "compute" && std::find(names.begin(), names.end(), b.name) == names.end()) names.push_back(b.name);
  };
  collect(in.prefill);
  collect(in.decode);
  names.push_back("compute waiting on network");
  names.push_back("dispatch");
  names.push_back("combine");
  names.push_back("network idle");
  return names;
}

std::string colour(const std::string& name, size_t index) {
  static const std::vector<std::pair<std::string, std::string>> fixed = {
      {"MLA projections", "#4e79a7"}, {"MLA attention core", "#f28e2b"}, {"dense MLP", "#76b7b2"},
      {"shared experts", "#59a14f"},  {"routed experts", "#edc948"},     {"MTP projection", "#b07aa1"},
      {"LM head", "#ff9da7"},         {"compute waiting on network", "#555555"},
      {"dispatch", "#e15759"},        {"combine", "#9c755f"},            {"network idle", "#d9d9d9"}};
  for (const auto& [n, c] : fixed)
    if (n == name) return c;
  static const char* spare[] = {"#17becf", "#bcbd22", "#8c564b", "#7f7f7f"};
  return spare[index % 4];
}

std::string breakdown_data(const ChartInput& in) {
  std::vector<std::string> cols = columns(in);
  std::ostringstream os;
  os << "bar";
  for (const auto& c : cols) os << "\t\"" << c << "\"";
  os << "\n";
  auto rows = [&](const std::optional<PhaseResult>& r) {
    if (!r) return;
    for (const char* lane : {"compute", "network"}) {
      os << "\"" << r->phase << " " << lane << "\"";
      for (const auto& c : cols) {
        double v = 0;
        for (const auto& b : r->breakdown)
          if (b.lane == lane && b.name == c) v += b.seconds;
        if (c == "compute waiting on network" && std::string(lane) == "compute") v = r->exposed_wait;
        if (c == "network idle" && std::string(lane) == "network") v = r->step_seconds - r->network_busy;
        os << "\t" << 100 * v / r->step_seconds;
      }
      os << "\n";
    }
  };
  rows(in.prefill);
  rows(in.decode);
  return os.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
  if (!out) fail("cannot write ", p.string());
}

}  // namespace

std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string gnuplot_script(const ChartInput& in, const std::string& png_path, const std::string& data_dir) {
  const bool curve = in.decode && !in.curve.empty();
  std::ostringstream s;
  s << "set terminal pngcairo size " << (curve ? 1500 : 900) << ",620 font 'sans,10'\n";
  s << "set output " << quoted(png_path) << "\n";
  s << "set datafile separator '\\t'\n";
  s << "set multiplot layout 1," << (curve ? 2 : 1) << " title " << quoted(in.title) << "\n";
  s << "set title 'Where one step goes (slowest GPU), by lane'\n";
  s << "set style data histograms\nset style histogram rowstacked\n";
  s << "set style fill solid 0.85 border -1\nset boxwidth 0.6\n";
  s << "set ylabel '% of step'\nset yrange [0:100]\nset grid ytics\n";
  s << "set key outside right top vertical font ',8'\n";
  s << "set xtics rotate by -20 font ',9'\n";
  // One colour per block, fixed by name so both phases agree; idle and waiting in greys.
  const std::vector<std::string> cols = columns(in);
  s << "plot ";
  for (size_t i = 0; i < cols.size(); ++i)
    s << (i ? ", \\\n     " : "") << quoted(data_dir + "/breakdown.dat") << " using " << i + 2
      << (i ? "" : ":xtic(1)") << " title columnheader(" << i + 2 << ") lc rgb " << quoted(colour(cols[i], i));
  s << "\n";
  if (curve) {
    s << "set title 'Decode unit: throughput against per-request speed'\n";
    s << "unset style\nset style data linespoints\nset autoscale\nset yrange [0:*]\nset xrange [0:*]\n";
    s << "set xtics norotate font ',10'\n";
    s << "set xlabel 'tokens/s per request'\nset ylabel 'output tokens/s per node'\nset key inside top right\n";
    s << "set arrow from " << in.target_tokens_per_s << ", graph 0 to " << in.target_tokens_per_s
      << ", graph 1 nohead dt 2 lc rgb 'gray40'\n";
    s << "plot " << quoted(data_dir + "/curve.dat") << " using 2:3 with linespoints pt 6 lw 2 title 'batch sweep', "
      << quoted(data_dir + "/operating.dat") << " using 1:2 with points pt 7 ps 2 lc rgb 'red' title 'operating point'\n";
  }
  s << "unset multiplot\n";
  return s.str();
}

void write_chart(const ChartInput& in, const std::string& png_path, const std::string& gnuplot) {
  std::string exe = find_executable(gnuplot);
  if (exe.empty())
    fail("gnuplot was not found (looked for '", gnuplot, "' on PATH), so no chart was written to ", png_path,
         "; install it with `sudo apt-get install gnuplot-nox` (scripts/setup.sh does) or drop --png");
  char tmpl[] = "/tmp/dsinfer-chart-XXXXXX";
  if (!mkdtemp(tmpl)) fail("cannot create a temporary folder for the chart data");
  fs::path dir(tmpl);
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};

  write_file(dir / "breakdown.dat", breakdown_data(in));
  if (in.decode) {
    std::ostringstream curve, op;
    for (const auto& p : in.curve) curve << p.batch_per_gpu << "\t" << p.per_request_tokens_per_s << "\t" << p.tokens_per_s_per_node << "\n";
    op << in.decode->per_request_tokens_per_s << "\t" << in.decode->tokens_per_s_per_node << "\n";
    write_file(dir / "curve.dat", curve.str());
    write_file(dir / "operating.dat", op.str());
  }
  fs::path script = dir / "chart.gp";
  std::error_code ec;
  fs::path out = fs::absolute(png_path, ec);
  write_file(script, gnuplot_script(in, ec ? png_path : out.string(), dir.string()));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  std::string err_path = (dir / "gnuplot.err").string();
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string script_path = script.string();
  char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(script_path.c_str()), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail("could not start gnuplot (", exe, ")");
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream err(err_path);
    std::string msg((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    fail("gnuplot failed writing ", png_path, ": ", msg.empty() ? "no message" : msg);
  }
  if (!fs::exists(png_path)) fail("gnuplot ran but ", png_path, " was not written");
}

}  // namespace dsinfer::plan
