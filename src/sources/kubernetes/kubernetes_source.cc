#include "sources/kubernetes/kubernetes_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "sources/kubernetes/endpoints_builder.h"

namespace attache {
namespace {

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4U]);
      out.push_back(kHex[c & 15U]);
    }
  }
  return out;
}

ClusterAccess AccessFor(const KubernetesSourceConfig& config) {
  return config.kubeconfig.empty()
             ? InClusterAccess()
             : LoadKubeconfig(config.kubeconfig, config.context);
}

}  // namespace

KubernetesSource::KubernetesSource(std::string name,
                                   KubernetesSourceConfig config,
                                   Catalog* catalog)
    : name_(std::move(name)), config_(std::move(config)), catalog_(catalog) {}

KubernetesSource::~KubernetesSource() { Stop(); }

void KubernetesSource::Check() { AccessFor(config_); }

void KubernetesSource::LoadInitial() {
  // A bad kubeconfig is a config error; an unreachable server is not.
  client_ =
      std::make_unique<KubeClient>(AccessFor(config_), config_.request_timeout);
  std::vector<std::string> prefixes;
  if (config_.namespaces.empty()) {
    prefixes.emplace_back("");
  }
  for (const auto& ns : config_.namespaces) {
    prefixes.push_back("/namespaces/" + UrlEncode(ns));
  }
  const std::string selector = UrlEncode(config_.label_selector);
  services_.resize(prefixes.size());
  slices_.resize(prefixes.size());
  for (size_t i = 0; i < prefixes.size(); ++i) {
    service_informers_.push_back(std::make_unique<Informer<KubeService>>(
        client_.get(), "/api/v1" + prefixes[i] + "/services", selector,
        config_.watch_timeout, &DecodeServiceList, &DecodeServiceEvent,
        Informer<KubeService>::Callbacks{
            [this, i](const ServiceStore& store, const std::string* key) {
              OnServices(i, store, key);
            },
            [this](const std::string& message) { OnFailure(message); }}));
    slice_informers_.push_back(std::make_unique<Informer<KubeEndpointSlice>>(
        client_.get(),
        "/apis/discovery.k8s.io/v1" + prefixes[i] + "/endpointslices", "",
        config_.watch_timeout, &DecodeEndpointSliceList,
        &DecodeEndpointSliceEvent,
        Informer<KubeEndpointSlice>::Callbacks{
            [this, i](const SliceStore& store, const std::string* key) {
              OnSlices(i, store, key);
            },
            [this](const std::string& message) { OnFailure(message); }}));
  }
  bool all_listed = true;
  for (size_t i = 0; i < prefixes.size() && all_listed; ++i) {
    all_listed = service_informers_[i]->List() && slice_informers_[i]->List();
  }
  listed_ = all_listed;
  if (all_listed) {
    Publish();  // serve the cluster from the first snapshot on
  } else {
    spdlog::warn(
        "source {}: {} is not reachable yet; serving the other "
        "sources and retrying in the background",
        name_, client_->server());
  }
}

void KubernetesSource::Start() {
  publisher_ = std::thread([this] { PublishLoop(); });
  for (auto& informer : service_informers_) informer->Start(listed_);
  for (auto& informer : slice_informers_) informer->Start(listed_);
}

void KubernetesSource::Stop() {
  for (auto& informer : service_informers_) informer->Stop();
  for (auto& informer : slice_informers_) informer->Stop();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (publisher_.joinable()) {
    publisher_.join();
  }
}

void KubernetesSource::OnServices(size_t index, const ServiceStore& store,
                                  const std::string* key) {
  std::lock_guard lock(mu_);
  auto& mine = services_[index];
  if (key == nullptr || !mine) {
    mine = store;
    dirty_all_ = true;
  } else {
    if (auto old = mine->find(*key); old != mine->end()) {
      dirty_.emplace(old->second.ns, old->second.name);
      mine->erase(old);
    }
    if (auto now = store.find(*key); now != store.end()) {
      dirty_.emplace(now->second.ns, now->second.name);
      mine->emplace(*key, now->second);
    }
  }
  WakePublisherLocked();
}

void KubernetesSource::OnSlices(size_t index, const SliceStore& store,
                                const std::string* key) {
  std::lock_guard lock(mu_);
  auto& mine = slices_[index];
  if (key == nullptr || !mine) {
    mine = store;
    IndexSlicesLocked();
    dirty_all_ = true;
  } else {
    if (auto old = mine->find(*key); old != mine->end()) {
      const ServiceKey service{old->second.ns, old->second.service_name};
      dirty_.insert(service);
      if (auto it = slices_of_.find(service); it != slices_of_.end()) {
        it->second.erase(*key);
      }
      mine->erase(old);
    }
    if (auto now = store.find(*key); now != store.end()) {
      auto inserted = mine->emplace(*key, now->second).first;
      const KubeEndpointSlice& slice = inserted->second;
      dirty_.emplace(slice.ns, slice.service_name);
      if (UsableSlice(slice)) {
        slices_of_[{slice.ns, slice.service_name}][*key] = &slice;
      }
    }
  }
  WakePublisherLocked();
}

void KubernetesSource::IndexSlicesLocked() {
  slices_of_.clear();
  for (const auto& store : slices_) {
    if (!store) continue;
    for (const auto& [key, slice] : *store) {
      if (UsableSlice(slice)) {
        slices_of_[{slice.ns, slice.service_name}][key] = &slice;
      }
    }
  }
}

void KubernetesSource::WakePublisherLocked() { wake_.notify_one(); }

bool KubernetesSource::ListedLocked() const {
  return std::all_of(services_.begin(), services_.end(),
                     [](const auto& store) { return store.has_value(); }) &&
         std::all_of(slices_.begin(), slices_.end(),
                     [](const auto& store) { return store.has_value(); });
}

void KubernetesSource::OnFailure(const std::string& message) {
  spdlog::warn("source {}: {} (serving the last good state)", name_, message);
  catalog_->ReportError(name_, client_->server() + ": " + message);
}

void KubernetesSource::PublishLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [this] {
      return stopping_ || ((dirty_all_ || !dirty_.empty()) && ListedLocked());
    });
    if (stopping_) {
      return;
    }
    lock.unlock();
    Publish();
    lock.lock();
  }
}

void KubernetesSource::Publish() {
  std::vector<std::string> problems;
  {
    std::lock_guard lock(mu_);
    if (!ListedLocked()) {
      return;  // do not publish a partial view
    }
    std::set<ServiceKey> dirty;
    if (dirty_all_) {
      built_.clear();
      names_of_.clear();
      for (const auto& store : services_) {
        for (const auto& [key, service] : *store) {
          dirty.emplace(service.ns, service.name);
        }
      }
    } else {
      dirty = std::move(dirty_);
    }
    dirty_.clear();
    dirty_all_ = false;
    const std::vector<const KubeEndpointSlice*> none;
    for (const ServiceKey& service_key : dirty) {
      if (auto it = names_of_.find(service_key); it != names_of_.end()) {
        for (const std::string& name : it->second) {
          built_.erase(name);
        }
        names_of_.erase(it);
      }
      const std::string key = service_key.first + "/" + service_key.second;
      const KubeService* service = nullptr;
      for (const auto& store : services_) {
        if (auto it = store->find(key); it != store->end()) {
          service = &it->second;
        }
      }
      if (service == nullptr) {
        continue;  // deleted, or slices of a Service that is not there
      }
      std::vector<const KubeEndpointSlice*> matching;
      if (auto it = slices_of_.find(service_key); it != slices_of_.end()) {
        for (const auto& [slice_key, slice] : it->second) {
          matching.push_back(slice);
        }
      }
      names_of_[service_key] = AddServiceEntries(*service, matching, config_,
                                                 name_, &built_, &problems);
    }
  }
  for (const std::string& problem : problems) {
    spdlog::warn("source {}: {}", name_, problem);
    catalog_->ReportRejected(name_, problem);
  }
  // Outside the lock: the informers go on applying events meanwhile.
  catalog_->Update(name_, built_);
}

}  // namespace attache
