#include "sources/registry/registry_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "util/duration.h"

namespace attache {
namespace {

// Enough to name the problem without flooding a log line or the debug view.
constexpr size_t kListed = 3;

std::vector<std::string> Unique(std::vector<std::string> names) {
  std::vector<std::string> unique;
  for (std::string& name : names) {
    if (std::find(unique.begin(), unique.end(), name) == unique.end()) {
      unique.push_back(std::move(name));
    }
  }
  return unique;
}

std::string JoinFirst(const std::vector<std::string>& lines) {
  std::string joined;
  for (size_t i = 0; i < lines.size() && i < kListed; ++i) {
    joined += (i == 0 ? "" : "; ") + lines[i];
  }
  if (lines.size() > kListed) {
    joined += "; and " + std::to_string(lines.size() - kListed) + " more";
  }
  return joined;
}

}  // namespace

RegistrySource::RegistrySource(std::string name, RegistrySourceConfig config,
                               Catalog* catalog)
    : name_(std::move(name)),
      config_(std::move(config)),
      services_(Unique(config_.services)),
      catalog_(catalog),
      client_(config_.url, config_.timeout) {
  tracked_.reserve(services_.size());
  for (size_t i = 0; i < services_.size(); ++i) {
    tracked_.emplace_back(
        RemovalGuard{.confirm_empty = config_.confirm_empty,
                     .max_removal_percent = config_.max_removal_percent,
                     .window = config_.removal_window});
  }
}

RegistrySource::~RegistrySource() { Stop(); }

void RegistrySource::LoadInitial() { Round(RegistryClient::kParallel); }

void RegistrySource::Start() {
  spdlog::info("source {}: polling {} for {} services every {}", name_,
               client_.display_url(), services_.size(),
               FormatDuration(config_.interval));
  thread_ = std::thread([this] { Poll(); });
}

void RegistrySource::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  client_.Cancel();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool RegistrySource::Stopping() {
  std::lock_guard lock(stop_mu_);
  return stopping_;
}

void RegistrySource::Poll() {
  std::unique_lock lock(stop_mu_);
  while (
      !wake_.wait_for(lock, config_.interval, [this] { return stopping_; })) {
    lock.unlock();
    PollOnce();
    lock.lock();
  }
}

void RegistrySource::Round(size_t give_up_after) {
  std::lock_guard round(round_mu_);
  ++rounds_;
  std::vector<RegistryFetch> fetched;
  try {
    fetched = client_.FetchAll(services_, give_up_after);
  } catch (const std::exception& error) {
    fetched.assign(services_.size(), RegistryFetch{"", error.what()});
  }
  if (Stopping()) {
    return;  // a cancelled round says nothing about the registry
  }

  std::vector<std::string> failures;
  for (size_t i = 0; i < services_.size(); ++i) {
    std::string error = std::move(fetched[i].error);
    if (error.empty()) {
      try {
        RegistryAnswer answer = DecodeRegistryResponse(fetched[i].body, name_);
        if (answer.endpoints.empty() && !answer.problems.empty()) {
          // Not "no hosts" but a registry writing nonsense: the empty
          // guard is for the former and would in the end apply it.
          skipped_hosts_ += answer.problems.size();
          error = "none of its " + std::to_string(answer.problems.size()) +
                  " hosts is usable (" + answer.problems.front() +
                  (answer.problems.size() > 1 ? ", ..." : "") + ")";
        } else {
          Take(tracked_[i], services_[i], std::move(answer));
        }
      } catch (const RegistryResponseError& bad) {
        error = bad.what();
      }
    }
    if (!error.empty()) {
      NoteFailure(tracked_[i], services_[i], error);
      failures.push_back("service " + services_[i] + ": " + error);
    }
  }
  if (!failures.empty()) {
    // The services that answered go out; the failing ones keep their last
    // good endpoints, and the source stays stale until all answer again.
    ServiceMap served = Served();
    if (!published_ || served != published_map_) {
      published_map_ = served;
      catalog_->Update(name_, std::move(served), Catalog::Freshness::kPartial);
    }
    catalog_->ReportError(name_, "registry " + client_.display_url() + ": " +
                                     JoinFirst(failures));
    published_ = false;
    return;
  }
  ServiceMap served = Served();
  if (!published_ || served != published_map_) {
    published_map_ = served;
    published_ = true;
    catalog_->Update(name_, std::move(served));
  }
}

void RegistrySource::Take(Tracked& tracked, const std::string& service,
                          RegistryAnswer answer) {
  if (!tracked.last_error.empty()) {
    spdlog::info("source {}: service {}: the registry answers again", name_,
                 service);
    tracked.last_error.clear();
  }
  const size_t listed = answer.endpoints.size() + answer.problems.size();
  skipped_hosts_ += answer.problems.size();
  if (!answer.problems.empty()) {
    // The same bad hosts come back every round; say it when it changes.
    const auto level = answer.problems == tracked.last_problems
                           ? spdlog::level::debug
                           : spdlog::level::warn;
    spdlog::log(level, "source {}: service {}: skipped {} of {} hosts: {}",
                name_, service, answer.problems.size(), listed,
                JoinFirst(answer.problems));
  }
  tracked.last_problems = std::move(answer.problems);

  const size_t before = tracked.state.endpoints().size();
  const bool known = tracked.state.known();
  switch (tracked.state.Accept(std::move(answer.endpoints))) {
    case RegistryService::Outcome::kHeldEmpty:
      ++held_empty_;
      spdlog::warn(
          "source {}: service {}: the registry lists no hosts (empty answer "
          "{} of the {} in a row that empty a service); still serving its {} "
          "host(s)",
          name_, service, tracked.state.empty_streak(), config_.confirm_empty,
          before);
      break;
    case RegistryService::Outcome::kHeldRemoval:
      ++held_removals_;
      spdlog::warn(
          "source {}: service {}: the registry lists {} fewer host(s) than "
          "were served, more than {}% of them; still serving them until "
          "answers say so for {} ms (removal_guard)",
          name_, service, tracked.state.held_back(),
          config_.max_removal_percent, config_.removal_window.count());
      break;
    case RegistryService::Outcome::kApplied:
      if (known) {
        spdlog::info(
            "source {}: service {}: the registry lists {} host(s), was {}",
            name_, service, tracked.state.endpoints().size(), before);
      } else {
        spdlog::info("source {}: service {}: the registry lists {} host(s)",
                     name_, service, tracked.state.endpoints().size());
      }
      break;
    case RegistryService::Outcome::kUnchanged:
      break;
  }
}

void RegistrySource::NoteFailure(Tracked& tracked, const std::string& service,
                                 const std::string& error) {
  ++failed_fetches_;
  const auto level =
      error == tracked.last_error ? spdlog::level::debug : spdlog::level::warn;
  spdlog::log(level,
              "source {}: registry {}: service {}: {}; keeping its last good "
              "endpoints",
              name_, client_.display_url(), service, error);
  tracked.last_error = error;
}

ServiceMap RegistrySource::Served() const {
  ServiceMap served;
  for (size_t i = 0; i < services_.size(); ++i) {
    if (tracked_[i].state.known()) {
      served.emplace(services_[i],
                     Service{.settings = config_.service_settings,
                             .endpoints = tracked_[i].state.endpoints()});
    }
  }
  return served;
}

}  // namespace attache
