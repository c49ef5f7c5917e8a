#pragma once

#include "catalog/model.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "translate/view.h"

namespace attache {

// The parts of a Cluster that let clients notice dead endpoints and move
// away from them, from fully resolved settings (every field set).
void AddResilience(const ResilienceSettings& settings, Flavor flavor,
                   envoy::config::cluster::v3::Cluster* cluster);

// lb_policy, and for gRPC clients load_balancing_policy too: the enum that
// every gRPC client accepts (grpc-js refuses LEAST_REQUEST there), and the
// typed list that lets each client take the first policy it supports.
void SetLbPolicy(LbPolicy policy, Flavor flavor,
                 envoy::config::cluster::v3::Cluster* cluster);

// False when num_retries is 0 (no policy).
bool MakeRetryPolicy(const RetrySettings& settings,
                     envoy::config::route::v3::RetryPolicy* policy);

void SetDuration(std::chrono::milliseconds value,
                 google::protobuf::Duration* duration);

}  // namespace attache
