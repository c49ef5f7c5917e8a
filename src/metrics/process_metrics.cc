#include "metrics/process_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "metrics/registry.h"

namespace attache {
namespace {

// The fields of /proc/self/stat after the command name, which may hold
// spaces and parentheses; fields[0] is the state (field 3 in proc(5)).
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) {
    return fields;
  }
  std::istringstream rest(stat.substr(close + 1));
  for (std::string field; rest >> field;) {
    fields.push_back(field);
  }
  return fields;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) {
      return std::stod(line.substr(6));
    }
  }
  return 0;
}

double MaxOpenFiles() {
  std::ifstream in("/proc/self/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream fields(line.substr(14));
      std::string soft;
      fields >> soft;
      return soft == "unlimited" ? 0 : std::stod(soft);
    }
  }
  return 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessMetrics() {
  std::vector<prometheus::MetricFamily> out;
  const std::vector<std::string> stat = StatFields();
  // proc(5) field numbers minus 3: utime 14, stime 15, num_threads 20,
  // starttime 22, vsize 23, rss 24.
  if (stat.size() > 21) {
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    auto cpu = CounterFamily("process_cpu_seconds_total",
                             "User and system CPU time spent in seconds.");
    AddSample(&cpu, {}, (std::stod(stat[11]) + std::stod(stat[12])) / ticks);
    out.push_back(std::move(cpu));
    auto rss = GaugeFamily("process_resident_memory_bytes",
                           "Resident memory size in bytes.");
    AddSample(&rss, {}, std::stod(stat[21]) * page);
    out.push_back(std::move(rss));
    auto virt = GaugeFamily("process_virtual_memory_bytes",
                            "Virtual memory size in bytes.");
    AddSample(&virt, {}, std::stod(stat[20]));
    out.push_back(std::move(virt));
    auto start =
        GaugeFamily("process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.");
    AddSample(&start, {}, BootTimeSeconds() + std::stod(stat[19]) / ticks);
    out.push_back(std::move(start));
    auto threads = GaugeFamily("process_threads", "Number of OS threads.");
    AddSample(&threads, {}, std::stod(stat[17]));
    out.push_back(std::move(threads));
  }
  std::error_code error;
  double open = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator();
       it.increment(error)) {
    ++open;
  }
  auto fds =
      GaugeFamily("process_open_fds", "Number of open file descriptors.");
  AddSample(&fds, {}, open);
  out.push_back(std::move(fds));
  auto max_fds = GaugeFamily("process_max_fds",
                             "Maximum number of open file descriptors.");
  AddSample(&max_fds, {}, MaxOpenFiles());
  out.push_back(std::move(max_fds));
  return out;
}

}  // namespace attache
