package main

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// check decodes a response with the official types and compares every
// assignment's name and fingerprint with what the wire reader found.
func (l *loadgen) check(raw []byte, delta bool, fast *response) {
	var anys []*anypb.Any
	var err error
	if delta {
		var m discoveryv3.DeltaDiscoveryResponse
		err = proto.Unmarshal(raw, &m)
		for _, r := range m.GetResources() {
			anys = append(anys, r.GetResource())
		}
	} else {
		var m discoveryv3.DiscoveryResponse
		err = proto.Unmarshal(raw, &m)
		anys = m.GetResources()
	}
	if err != nil || fast == nil || len(anys) != len(fast.res) {
		l.counts.mismatch.Add(1)
		return
	}
	for i, a := range anys {
		if a.GetTypeUrl() != endpointType {
			continue
		}
		var cla endpointv3.ClusterLoadAssignment
		if err := a.UnmarshalTo(&cla); err != nil {
			l.counts.mismatch.Add(1)
			continue
		}
		var fp fingerprint
		for _, locality := range cla.GetEndpoints() {
			for _, lb := range locality.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				fp.add(sa.GetAddress(), sa.GetPortValue(), lb.GetHealthStatus() <= 1)
			}
		}
		got := fast.res[i]
		if !got.assignment || got.name != cla.GetClusterName() || got.fingerprint != fp.value() {
			l.counts.mismatch.Add(1)
		}
	}
}
