// The cost of one endpoint change between a source and the xDS snapshot:
// the source hands its whole map to the catalog, the catalog merges and
// publishes a generation, and the snapshot set translates what changed.
// Run: bash bench/micro/run.sh (prints time per change at two catalog sizes).
#include <benchmark/benchmark.h>

#include <string>

#include "catalog/catalog.h"
#include "xds/cache/snapshot.h"

namespace attache {
namespace {

Service MakeService(int index, int endpoints, uint32_t port) {
  Service service;
  for (int i = 0; i < endpoints; ++i) {
    Endpoint endpoint;
    endpoint.address = "10." + std::to_string(index / 250) + "." +
                       std::to_string(index % 250) + "." + std::to_string(i);
    endpoint.port = port;
    endpoint.locality = {"region-a", "zone-" + std::to_string(i % 3), ""};
    endpoint.metadata["node"] = "node-" + std::to_string(i);
    endpoint.origin = "cluster-a";
    service.endpoints.push_back(std::move(endpoint));
  }
  return service;
}

// state.range(0) services of state.range(1) endpoints in one source, and a
// second source sharing ten of those names (so merging has work to do).
void BM_OneEndpointChange(benchmark::State& state) {
  const int services = static_cast<int>(state.range(0));
  const int endpoints = static_cast<int>(state.range(1));
  Catalog catalog({"kubernetes", "legacy"});
  ServiceMap built;
  for (int i = 0; i < services; ++i) {
    built["svc-" + std::to_string(i)] = MakeService(i, endpoints, 8080);
  }
  ServiceMap legacy;
  for (int i = 0; i < 10; ++i) {
    legacy["svc-" + std::to_string(i)] = MakeService(100000 + i, 2, 9090);
  }
  catalog.Update("legacy", legacy);
  catalog.Update("kubernetes", built);
  SnapshotSetPtr last =
      BuildSnapshotSet(catalog.Current(), TranslateOptions{}, nullptr);
  last->For(Flavor::kEnvoy);
  int change = 0;
  for (auto _ : state) {
    const int index = change % services;
    const std::string name = "svc-" + std::to_string(index);
    built[name] = MakeService(index, endpoints, 8081 + change % 2);
    catalog.Update("kubernetes", built);
    SnapshotSetPtr next =
        BuildSnapshotSet(catalog.Current(), TranslateOptions{}, last);
    benchmark::DoNotOptimize(next->For(Flavor::kEnvoy));
    next->ForgetPrevious();
    last = std::move(next);
    ++change;
  }
  state.counters["generation"] =
      static_cast<double>(catalog.Current()->generation);
}
BENCHMARK(BM_OneEndpointChange)
    ->Args({1000, 30})
    ->Args({10000, 30})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace attache

BENCHMARK_MAIN();
