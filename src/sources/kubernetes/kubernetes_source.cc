#include "sources/kubernetes/kubernetes_source.h"

#include <spdlog/spdlog.h>

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
            [this, i](const ServiceStore& store) { OnServices(i, store); },
            [this](const std::string& message) { OnFailure(message); }}));
    slice_informers_.push_back(std::make_unique<Informer<KubeEndpointSlice>>(
        client_.get(),
        "/apis/discovery.k8s.io/v1" + prefixes[i] + "/endpointslices", "",
        config_.watch_timeout, &DecodeEndpointSliceList,
        &DecodeEndpointSliceEvent,
        Informer<KubeEndpointSlice>::Callbacks{
            [this, i](const SliceStore& store) { OnSlices(i, store); },
            [this](const std::string& message) { OnFailure(message); }}));
  }
  bool all_listed = true;
  for (size_t i = 0; i < prefixes.size() && all_listed; ++i) {
    all_listed = service_informers_[i]->List() && slice_informers_[i]->List();
  }
  listed_ = all_listed;
  if (!all_listed) {
    spdlog::warn(
        "source {}: {} is not reachable yet; serving the other "
        "sources and retrying in the background",
        name_, client_->server());
  }
}

void KubernetesSource::Start() {
  for (auto& informer : service_informers_) informer->Start(listed_);
  for (auto& informer : slice_informers_) informer->Start(listed_);
}

void KubernetesSource::Stop() {
  for (auto& informer : service_informers_) informer->Stop();
  for (auto& informer : slice_informers_) informer->Stop();
}

void KubernetesSource::OnServices(size_t index, const ServiceStore& store) {
  std::lock_guard lock(mu_);
  services_[index] = store;
  PublishLocked();
}

void KubernetesSource::OnSlices(size_t index, const SliceStore& store) {
  std::lock_guard lock(mu_);
  slices_[index] = store;
  PublishLocked();
}

void KubernetesSource::OnFailure(const std::string& message) {
  spdlog::warn("source {}: {} (serving the last good state)", name_, message);
  catalog_->ReportError(name_, client_->server() + ": " + message);
}

void KubernetesSource::PublishLocked() {
  std::vector<const KubeService*> services;
  std::vector<const KubeEndpointSlice*> slices;
  for (const auto& store : services_) {
    if (!store) return;  // not listed yet: do not publish a partial view
    for (const auto& [key, service] : *store) services.push_back(&service);
  }
  for (const auto& store : slices_) {
    if (!store) return;
    for (const auto& [key, slice] : *store) slices.push_back(&slice);
  }
  catalog_->Update(name_, BuildServiceMap(services, slices, config_, name_));
}

}  // namespace attache
