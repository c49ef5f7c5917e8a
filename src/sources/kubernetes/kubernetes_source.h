#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/kubernetes/informer.h"
#include "sources/kubernetes/kube_client.h"
#include "sources/source.h"

namespace attache {

// One Kubernetes cluster: Services and EndpointSlices in the configured
// namespaces, watched with informers and turned into catalog services. When
// the API server is unreachable the last good state keeps serving (marked
// stale in the catalog); an unreachable server at start-up is not fatal.
class KubernetesSource final : public Source {
 public:
  KubernetesSource(std::string name, KubernetesSourceConfig config,
                   Catalog* catalog);
  ~KubernetesSource() override;

  const std::string& name() const override { return name_; }
  void Check() override;
  void LoadInitial() override;
  void Start() override;
  void Stop() override;

 private:
  using ServiceStore = Informer<KubeService>::Store;
  using SliceStore = Informer<KubeEndpointSlice>::Store;

  void OnServices(size_t index, const ServiceStore& store);
  void OnSlices(size_t index, const SliceStore& store);
  void OnFailure(const std::string& message);
  // Rebuilds this cluster's services and hands them to the catalog, once
  // both kinds have been listed.
  void PublishLocked();

  const std::string name_;
  const KubernetesSourceConfig config_;
  Catalog* const catalog_;
  std::unique_ptr<KubeClient> client_;
  std::vector<std::unique_ptr<Informer<KubeService>>> service_informers_;
  std::vector<std::unique_ptr<Informer<KubeEndpointSlice>>> slice_informers_;
  bool listed_ = false;

  std::mutex mu_;
  std::vector<std::optional<ServiceStore>> services_;
  std::vector<std::optional<SliceStore>> slices_;
};

}  // namespace attache
