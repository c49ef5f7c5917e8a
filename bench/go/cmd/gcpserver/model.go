package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// hostFile is attache's host-file format (docs/configuration.md, "File
// sources"). The per-service overrides are accepted but not used: the
// benchmark catalog does not set them.
type hostFile struct {
	Services map[string]hostService `json:"services"`
}

type hostService struct {
	ConnectTimeout string         `json:"connect_timeout,omitempty"`
	LbPolicy       string         `json:"lb_policy,omitempty"`
	Failover       string         `json:"failover,omitempty"`
	Endpoints      []hostEndpoint `json:"endpoints"`
}

type hostEndpoint struct {
	Address string  `json:"address"`
	Port    *uint32 `json:"port"`
	Region  string  `json:"region,omitempty"`
	Zone    string  `json:"zone,omitempty"`
	SubZone string  `json:"sub_zone,omitempty"`
	Weight  *uint32 `json:"weight,omitempty"`
	Health  string  `json:"health,omitempty"`
}

// ep is one validated endpoint.
type ep struct {
	Address string
	Port    uint32
	Loc     locality
	Weight  uint32
	Health  core.HealthStatus
}

type locality struct{ Region, Zone, SubZone string }

func (a locality) less(b locality) bool {
	if a.Region != b.Region {
		return a.Region < b.Region
	}
	if a.Zone != b.Zone {
		return a.Zone < b.Zone
	}
	return a.SubZone < b.SubZone
}

// fileModel is the parsed content of one host file: service -> endpoints in
// file order.
type fileModel map[string][]ep

var serviceName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// parseHostFile parses and validates one host file.
func parseHostFile(data []byte) (fileModel, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var hf hostFile
	if err := dec.Decode(&hf); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON document")
	}
	out := make(fileModel, len(hf.Services))
	for name, svc := range hf.Services {
		if !serviceName.MatchString(name) {
			return nil, fmt.Errorf("services.%s: bad service name", name)
		}
		seen := make(map[string]bool, len(svc.Endpoints))
		eps := make([]ep, 0, len(svc.Endpoints))
		for i, he := range svc.Endpoints {
			where := fmt.Sprintf("services.%s.endpoints[%d]", name, i)
			addr, err := netip.ParseAddr(he.Address)
			if err != nil || addr.Zone() != "" {
				return nil, fmt.Errorf("%s.address: %q is not an IP literal", where, he.Address)
			}
			if he.Port == nil || *he.Port < 1 || *he.Port > 65535 {
				return nil, fmt.Errorf("%s.port: missing or not in 1..65535", where)
			}
			w := uint32(1)
			if he.Weight != nil {
				w = *he.Weight
				if w < 1 || w > 1000000 {
					return nil, fmt.Errorf("%s.weight: not in 1..1000000", where)
				}
			}
			var hs core.HealthStatus
			switch he.Health {
			case "", "healthy":
				hs = core.HealthStatus_HEALTHY
			case "unhealthy":
				hs = core.HealthStatus_UNHEALTHY
			case "draining":
				hs = core.HealthStatus_DRAINING
			default:
				return nil, fmt.Errorf("%s.health: %q is not healthy|draining|unhealthy", where, he.Health)
			}
			key := netip.AddrPortFrom(addr, uint16(*he.Port)).String()
			if seen[key] {
				return nil, fmt.Errorf("%s: %s listed twice", where, key)
			}
			seen[key] = true
			eps = append(eps, ep{
				Address: he.Address,
				Port:    *he.Port,
				Loc:     locality{he.Region, he.Zone, he.SubZone},
				Weight:  w,
				Health:  hs,
			})
		}
		out[name] = eps
	}
	return out, nil
}

// merge unions the files' services; files are taken in name order and, for
// one service, the first file to list an address:port wins.
func merge(files map[string]fileModel) map[string][]ep {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	type apKey struct {
		addr string
		port uint32
	}
	merged := make(map[string][]ep)
	seen := make(map[string]map[apKey]bool)
	for _, fn := range names {
		for svc, eps := range files[fn] {
			s, ok := seen[svc]
			if !ok {
				s = make(map[apKey]bool, len(eps))
				seen[svc] = s
				merged[svc] = make([]ep, 0, len(eps))
			}
			for _, e := range eps {
				k := apKey{e.Address, e.Port}
				if s[k] {
					continue
				}
				s[k] = true
				merged[svc] = append(merged[svc], e)
			}
		}
	}
	return merged
}

func makeCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		ConnectTimeout:       durationpb.New(time.Second),
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			EdsConfig: &core.ConfigSource{
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
				ResourceApiVersion:    core.ApiVersion_V3,
			},
		},
	}
}

func makeCLA(name string, eps []ep) *endpoint.ClusterLoadAssignment {
	byLoc := make(map[locality][]*endpoint.LbEndpoint)
	var locs []locality
	for _, e := range eps {
		if _, ok := byLoc[e.Loc]; !ok {
			locs = append(locs, e.Loc)
		}
		byLoc[e.Loc] = append(byLoc[e.Loc], &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Address:       e.Address,
					PortSpecifier: &core.SocketAddress_PortValue{PortValue: e.Port},
				}}},
			}},
			HealthStatus:        e.Health,
			LoadBalancingWeight: wrapperspb.UInt32(e.Weight),
		})
	}
	sort.Slice(locs, func(i, j int) bool { return locs[i].less(locs[j]) })
	cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
	for _, l := range locs {
		cla.Endpoints = append(cla.Endpoints, &endpoint.LocalityLbEndpoints{
			Locality:            &core.Locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone},
			LbEndpoints:         byLoc[l],
			LoadBalancingWeight: wrapperspb.UInt32(1),
		})
	}
	return cla
}

// typeVersion is a content hash of one type's resources, given in a fixed
// (name) order: sha256 over length-prefixed deterministic encodings,
// hex-truncated to 16 characters.
func typeVersion(rs []types.Resource) (string, error) {
	h := sha256.New()
	var n [8]byte
	opts := proto.MarshalOptions{Deterministic: true}
	var buf []byte
	for _, r := range rs {
		var err error
		buf, err = opts.MarshalAppend(buf[:0], r)
		if err != nil {
			return "", err
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(buf)))
		h.Write(n[:])
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildSnapshot turns the merged model into a snapshot with one version per
// resource type. cache.NewSnapshot takes a single version for all types, so
// the snapshot is assembled from cache.NewResources per type (Snapshot.Resources
// is an exported array indexed by types.ResponseType).
func buildSnapshot(model map[string][]ep) (*cache.Snapshot, int, error) {
	names := make([]string, 0, len(model))
	for n := range model {
		names = append(names, n)
	}
	sort.Strings(names)
	clusters := make([]types.Resource, 0, len(names))
	clas := make([]types.Resource, 0, len(names))
	nEps := 0
	for _, n := range names {
		clusters = append(clusters, makeCluster(n))
		clas = append(clas, makeCLA(n, model[n]))
		nEps += len(model[n])
	}
	cv, err := typeVersion(clusters)
	if err != nil {
		return nil, 0, err
	}
	ev, err := typeVersion(clas)
	if err != nil {
		return nil, 0, err
	}
	empty, _ := typeVersion(nil)
	snap := &cache.Snapshot{}
	snap.Resources[types.Cluster] = cache.NewResources(cv, clusters)
	snap.Resources[types.Endpoint] = cache.NewResources(ev, clas)
	// Empty LDS/RDS with a real version: a wildcard LDS request (version "")
	// then gets an empty answer instead of being held forever.
	snap.Resources[types.Listener] = cache.NewResources(empty, nil)
	snap.Resources[types.Route] = cache.NewResources(empty, nil)
	if err := snap.Consistent(); err != nil {
		return nil, 0, err
	}
	return snap, nEps, nil
}
