package main

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	clusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	endpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	adsService   = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
)

// counters shared by every client.
type counters struct {
	responses atomic.Uint64
	bytes     atomic.Uint64
	errors    atomic.Uint64
	mismatch  atomic.Uint64 // -verify: the wire reader disagreed with protobuf
}

// client is one simulated Envoy: CDS wildcard, then EDS for its clusters,
// ACKing every response, over one ADS stream on its own connection.
type client struct {
	id    int
	delta bool
	subs  []int           // service indices, ascending
	held  []atomic.Uint32 // per sub: the seq of the state it holds (0: none yet)
	// Per sub: the fingerprint of what it holds. Edits can cancel out (a
	// health flip and back): a client may hold the newest content without
	// ever receiving the newest seq, because there was nothing to send.
	content []atomic.Uint64
	ready   int // subs held at least once on this stream

	load *loadgen
}

func (c *client) subPos(service int) int {
	i := sort.SearchInts(c.subs, service)
	if i < len(c.subs) && c.subs[i] == service {
		return i
	}
	return -1
}

// run holds one stream until ctx ends; initial is called once the client
// holds every cluster and every one of its assignments.
func (c *client) run(ctx context.Context, target string, initial func()) error {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	method := adsService + "StreamAggregatedResources"
	if c.delta {
		method = adsService + "DeltaAggregatedResources"
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
		method, grpc.ForceCodecV2(wireCodec{}))
	if err != nil {
		return err
	}
	for i := range c.held {
		c.held[i].Store(0)
	}
	c.ready = 0
	node := &corev3.Node{Id: fmt.Sprintf("load-%d", c.id), Cluster: "bench", UserAgentName: "envoy"}
	if c.delta {
		err = stream.SendMsg(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: clusterType})
	} else {
		err = stream.SendMsg(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: clusterType})
	}
	if err != nil {
		return err
	}
	clusters, edsAsked, done := 0, false, false
	for {
		in := received{delta: c.delta, keep: c.load.verify}
		if err := stream.RecvMsg(&in); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		c.load.counts.responses.Add(1)
		c.load.counts.bytes.Add(uint64(in.size))
		if in.parsed != nil {
			return in.parsed
		}
		r := in.resp
		if c.load.verify {
			c.load.check(in.raw, c.delta, r)
		}
		switch r.typeURL {
		case clusterType:
			if c.delta {
				clusters += len(r.res) - len(r.removed)
			} else {
				clusters = len(r.res)
			}
		case endpointType:
			hist := c.load.hist.Load()
			for _, res := range r.res {
				name, fp := res.name, res.fingerprint
				svc, ok := c.load.work.byName[name]
				if !ok {
					continue
				}
				pos := c.subPos(svc)
				if pos < 0 {
					continue
				}
				c.content[pos].Store(fp)
				before := c.held[pos].Load()
				held := c.load.work.services[svc].delivered(before, fp, now, hist)
				if before == 0 && held != 0 {
					c.ready++
				}
				c.held[pos].Store(held)
			}
		}
		if err := c.ack(stream, r); err != nil {
			return err
		}
		if r.typeURL == clusterType && !edsAsked {
			edsAsked = true
			if err := c.askEndpoints(stream); err != nil {
				return err
			}
		}
		if !done && clusters == len(c.load.work.services) && c.ready == len(c.subs) {
			done = true
			initial()
		}
	}
}

func (c *client) ack(stream grpc.ClientStream, r *response) error {
	if c.delta {
		return stream.SendMsg(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.typeURL, ResponseNonce: r.nonce})
	}
	names := []string(nil)
	if r.typeURL == endpointType {
		names = c.names()
	}
	return stream.SendMsg(&discoveryv3.DiscoveryRequest{
		TypeUrl: r.typeURL, VersionInfo: r.version, ResponseNonce: r.nonce, ResourceNames: names})
}

func (c *client) askEndpoints(stream grpc.ClientStream) error {
	if c.delta {
		return stream.SendMsg(&discoveryv3.DeltaDiscoveryRequest{
			TypeUrl: endpointType, ResourceNamesSubscribe: c.names()})
	}
	return stream.SendMsg(&discoveryv3.DiscoveryRequest{TypeUrl: endpointType, ResourceNames: c.names()})
}

func (c *client) names() []string {
	names := make([]string, len(c.subs))
	for i, s := range c.subs {
		names[i] = c.load.work.services[s].xds
	}
	return names
}

// converged: the client holds the newest content of every one of its
// clusters.
func (c *client) converged() bool {
	for i, s := range c.subs {
		svc := c.load.work.services[s]
		if c.held[i].Load() != svc.latest() && c.content[i].Load() != svc.newest() {
			return false
		}
	}
	return true
}

// cancelled counts the changes a converged client never needed because
// later edits undid them, and marks it as holding the newest seq.
func (c *client) cancelled() uint64 {
	var n uint64
	for i, s := range c.subs {
		svc := c.load.work.services[s]
		if held := c.held[i].Load(); held != svc.latest() && c.content[i].Load() == svc.newest() {
			n += svc.after(held)
			c.held[i].Store(svc.latest())
		}
	}
	return n
}
