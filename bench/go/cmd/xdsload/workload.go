package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The catalog both servers read: one host file per (service, cluster), so a
// change rewrites one small file, as config management does for legacy hosts.

type endpoint struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
	Region  string `json:"region,omitempty"`
	Zone    string `json:"zone,omitempty"`
	Health  string `json:"health,omitempty"`
}

type hostFile struct {
	Services map[string]struct {
		Endpoints []endpoint `json:"endpoints"`
	} `json:"services"`
}

// change is one edit of a service, as the clients should come to see it.
type change struct {
	seq         uint32
	at          time.Time
	fingerprint uint64
}

type service struct {
	name     string       // as in the host files
	xds      string       // the Envoy cluster name the servers give it
	clusters [][]endpoint // per simulated cluster

	mu      sync.RWMutex
	history []change // ascending seq; history[0] (seq 1) is the initial state
}

type workload struct {
	dir       string
	services  []*service
	byName    map[string]int // by Envoy cluster name (xds)
	nextPort  int
	nextSeq   uint32
	endpoints int // per service per cluster, the steady-state count
}

func fileName(svc string, cluster int) string {
	return fmt.Sprintf("%s.c%d.json", svc, cluster)
}

// generate writes the initial catalog into dir. By default a service's
// endpoints in one cluster share an address and differ by port. With
// servicePort, as Kubernetes requires of the endpoints of one EndpointSlice,
// they share the service's port and each has an address of its own
// (10.128.0.1 onwards, outside the test cluster's Service range).
func generate(dir string, services, clusters, endpoints int, servicePort bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for s := 0; s < services; s++ {
		name := fmt.Sprintf("svc%d", s)
		for c := 0; c < clusters; c++ {
			eps := make([]endpoint, endpoints)
			for e := range eps {
				eps[e] = endpoint{
					Address: fmt.Sprintf("10.%d.%d.%d", c, s/250, s%250+1),
					Port:    8000 + e, Region: "r1", Zone: fmt.Sprintf("z%d", c),
				}
				if servicePort {
					i := (s*clusters+c)*endpoints + e + 1
					eps[e].Address = fmt.Sprintf("10.%d.%d.%d", 128+i>>16, i>>8&255, i&255)
					eps[e].Port = 1024 + s%60000
				}
			}
			if err := writeHostFile(dir, name, c, eps); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeHostFile(dir, svc string, cluster int, eps []endpoint) error {
	var doc hostFile
	doc.Services = map[string]struct {
		Endpoints []endpoint `json:"endpoints"`
	}{svc: {Endpoints: eps}}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	// A name without .json, renamed into place: readers never see half a file.
	tmp := filepath.Join(dir, "."+fileName(svc, cluster)+".tmp")
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, fileName(svc, cluster)))
}

// loadWorkload reads back what generate wrote. The servers name each
// service's Envoy cluster after it plus suffix (".bench": a Kubernetes
// Service svc12 in namespace bench is served as svc12.bench).
func loadWorkload(dir, suffix string) (*workload, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	w := &workload{dir: dir, byName: map[string]int{}, nextPort: 20000}
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		dot := strings.LastIndex(base, ".c")
		var cluster int
		if _, err := fmt.Sscanf(base[dot+2:], "%d", &cluster); err != nil || dot < 0 {
			return nil, fmt.Errorf("%s: not a workload file name", f)
		}
		body, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc hostFile
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		for name, svc := range doc.Services {
			i, ok := w.byName[name]
			if !ok {
				i = len(w.services)
				w.byName[name] = i
				w.services = append(w.services, &service{name: name})
			}
			s := w.services[i]
			for len(s.clusters) <= cluster {
				s.clusters = append(s.clusters, nil)
			}
			s.clusters[cluster] = svc.Endpoints
			if len(svc.Endpoints) > w.endpoints {
				w.endpoints = len(svc.Endpoints)
			}
		}
	}
	// Service index order is the name order, so every run numbers alike.
	sort.Slice(w.services, func(a, b int) bool { return w.services[a].name < w.services[b].name })
	clear(w.byName)
	for i, s := range w.services {
		s.xds = s.name + suffix
		w.byName[s.xds] = i
		s.history = []change{{seq: 1, fingerprint: s.fingerprint()}}
	}
	w.nextSeq = 1
	return w, nil
}

func (s *service) fingerprint() uint64 {
	var fp fingerprint
	for _, eps := range s.clusters {
		for _, e := range eps {
			fp.add(e.Address, uint32(e.Port), e.Health != "unhealthy")
		}
	}
	return fp.value()
}

// apply makes one random edit (add, remove or a health flip), writes its file
// and records it before the rename so that no client can see it unrecorded.
func (w *workload) apply(rng *rand.Rand) error {
	s := w.services[rng.Intn(len(w.services))]
	c := rng.Intn(len(s.clusters))
	eps := append([]endpoint(nil), s.clusters[c]...)
	op := rng.Intn(3)
	if len(eps) < w.endpoints {
		op = 0
	} else if len(eps) > w.endpoints {
		op = 1
	}
	switch op {
	case 0:
		w.nextPort++
		eps = append(eps, endpoint{
			Address: fmt.Sprintf("10.%d.250.%d", c, w.nextPort%250+1),
			Port:    w.nextPort, Region: "r1", Zone: fmt.Sprintf("z%d", c),
		})
	case 1:
		i := rng.Intn(len(eps))
		eps = append(eps[:i], eps[i+1:]...)
	default:
		i := rng.Intn(len(eps))
		if eps[i].Health == "unhealthy" {
			eps[i].Health = ""
		} else {
			eps[i].Health = "unhealthy"
		}
	}
	s.clusters[c] = eps
	w.nextSeq++
	s.mu.Lock()
	s.history = append(s.history, change{seq: w.nextSeq, at: time.Now(), fingerprint: s.fingerprint()})
	s.mu.Unlock()
	return writeHostFile(w.dir, s.name, c, eps)
}

// latest is the seq of the state a converged client holds.
func (s *service) latest() uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.history[len(s.history)-1].seq
}

// newest is the fingerprint of the newest state.
func (s *service) newest() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.history[len(s.history)-1].fingerprint
}

// after counts the changes newer than seq.
func (s *service) after(seq uint32) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n uint64
	for i := len(s.history) - 1; i >= 0 && s.history[i].seq > seq; i-- {
		n++
	}
	return n
}

// delivered records that a client holding `held` (a seq) now holds the state
// with fingerprint fp; it returns the new seq and feeds every change in
// between to the histogram. A fingerprint of no newer state changes nothing.
func (s *service) delivered(held uint32, fp uint64, now time.Time, h *histogram) uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := len(s.history) - 1; i >= 0 && s.history[i].seq > held; i-- {
		if s.history[i].fingerprint != fp {
			continue
		}
		for j := i; j >= 0 && s.history[j].seq > held; j-- {
			if h != nil && !s.history[j].at.IsZero() {
				h.record(now.Sub(s.history[j].at))
			}
		}
		return s.history[i].seq
	}
	return held
}
