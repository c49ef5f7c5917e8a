#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
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
  using ServiceKey = std::pair<std::string, std::string>;  // namespace, name

  // Informer threads: keep a copy of what changed and note which Services
  // it touches. The publisher thread does the rest, so a burst of events
  // costs one rebuild of the Services it touched, not one of everything per
  // event.
  void OnServices(size_t index, const ServiceStore& store,
                  const std::string* key);
  void OnSlices(size_t index, const SliceStore& store, const std::string* key);
  void OnFailure(const std::string& message);
  void IndexSlicesLocked();
  void WakePublisherLocked();
  bool ListedLocked() const;  // every store listed at least once
  // Rebuilds the Services marked dirty and hands the cluster's services to
  // the catalog, once both kinds have been listed everywhere.
  void Publish();
  void PublishLoop();

  const std::string name_;
  const KubernetesSourceConfig config_;
  Catalog* const catalog_;
  std::unique_ptr<KubeClient> client_;
  std::vector<std::unique_ptr<Informer<KubeService>>> service_informers_;
  std::vector<std::unique_ptr<Informer<KubeEndpointSlice>>> slice_informers_;
  bool listed_ = false;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  // One store per namespace prefix, as the informers hold them; nullopt
  // until listed.
  std::vector<std::optional<ServiceStore>> services_;
  std::vector<std::optional<SliceStore>> slices_;
  // Usable slices by the Service they name, in store-key order.
  std::map<ServiceKey, std::map<std::string, const KubeEndpointSlice*>>
      slices_of_;
  std::set<ServiceKey> dirty_;
  bool dirty_all_ = false;

  // Publisher only (LoadInitial before Start, then the publisher thread).
  ServiceMap built_;
  std::map<ServiceKey, std::vector<std::string>> names_of_;
  std::thread publisher_;
};

}  // namespace attache
