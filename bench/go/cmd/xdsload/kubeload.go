package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// kubeload writes a workload (as gen wrote it) into a kube-apiserver: a
// namespace, one Service per service with one TCP port named "http", and one
// EndpointSlice per service and cluster, labelled kubernetes.io/service-name,
// with that cluster's endpoints (ready unless the host file says otherwise).
// A Service is headless (clusterIP None): the test cluster's Service range
// holds 254 addresses, and no xDS server looks at the cluster IP. Objects that
// already exist are left as they are, so a second run is harmless.
//
// It speaks plain JSON over HTTP/2 with the cluster CA and a bearer token,
// with a few requests in flight, and prints a JSON summary.

type kubeMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type kubeServicePort struct {
	Name       string `json:"name"`
	Protocol   string `json:"protocol"`
	Port       int    `json:"port"`
	TargetPort int    `json:"targetPort"`
}

type kubeService struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   kubeMeta `json:"metadata"`
	Spec       struct {
		ClusterIP string            `json:"clusterIP"`
		Ports     []kubeServicePort `json:"ports"`
	} `json:"spec"`
}

type kubeSlicePort struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
}

type kubeConditions struct {
	Ready       bool `json:"ready"`
	Serving     bool `json:"serving"`
	Terminating bool `json:"terminating"`
}

type kubeSliceEndpoint struct {
	Addresses  []string       `json:"addresses"`
	Conditions kubeConditions `json:"conditions"`
	Zone       string         `json:"zone,omitempty"`
}

type kubeSlice struct {
	APIVersion  string              `json:"apiVersion"`
	Kind        string              `json:"kind"`
	Metadata    kubeMeta            `json:"metadata"`
	AddressType string              `json:"addressType"`
	Ports       []kubeSlicePort     `json:"ports"`
	Endpoints   []kubeSliceEndpoint `json:"endpoints"`
}

type kubeLoadReport struct {
	Namespace string  `json:"namespace"`
	Services  int     `json:"services"`
	Slices    int     `json:"endpoint_slices"`
	Endpoints int     `json:"endpoints"`
	Existing  int64   `json:"already_existing"`
	Retries   int64   `json:"retries"`
	Workers   int     `json:"workers"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"objects_per_s"`
}

type kubeWriter struct {
	server   string
	token    string
	http     *http.Client
	existing atomic.Int64
	retries  atomic.Int64
}

func kubeload(args []string) error {
	fs := flag.NewFlagSet("kubeload", flag.ExitOnError)
	dir := fs.String("dir", "", "the host files (as written by gen -service-port)")
	server := fs.String("server", "", "the kube-apiserver, https://127.0.0.1:PORT")
	token := fs.String("token", "", "bearer token")
	caFile := fs.String("ca-file", "", "the apiserver's CA certificate (PEM)")
	namespace := fs.String("namespace", "bench", "namespace for the Services and EndpointSlices")
	workers := fs.Int("workers", 8, "requests in flight")
	_ = fs.Parse(args)
	if *dir == "" || *server == "" || *token == "" || *caFile == "" {
		return errors.New("kubeload needs -dir, -server, -token and -ca-file")
	}
	work, err := loadWorkload(*dir, "")
	if err != nil {
		return err
	}
	if len(work.services) == 0 {
		return fmt.Errorf("%s holds no services", *dir)
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no certificate", *caFile)
	}
	w := &kubeWriter{server: *server, token: *token, http: &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: *workers,
		},
	}}

	started := time.Now()
	rep := kubeLoadReport{Namespace: *namespace, Workers: *workers}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": kubeMeta{Name: *namespace}}
	if err := w.create("/api/v1/namespaces", ns); err != nil {
		return err
	}
	// The objects, built first so that every worker only sends.
	type job struct {
		service kubeService
		slices  []kubeSlice
	}
	jobs := make([]job, len(work.services))
	for i, s := range work.services {
		j := &jobs[i]
		port := 0
		for c, eps := range s.clusters {
			slice := kubeSlice{
				APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice",
				Metadata: kubeMeta{Name: fmt.Sprintf("%s-c%d", s.name, c), Namespace: *namespace, Labels: map[string]string{
					"kubernetes.io/service-name":             s.name,
					"endpointslice.kubernetes.io/managed-by": "xdsload",
				}},
				AddressType: "IPv4",
			}
			for _, e := range eps {
				if port == 0 {
					port = e.Port
				}
				if e.Port != port {
					return fmt.Errorf("%s: endpoints on ports %d and %d; an EndpointSlice has one port for all (gen -service-port)", s.name, port, e.Port)
				}
				ready := e.Health == "" || e.Health == "healthy"
				draining := e.Health == "draining"
				slice.Endpoints = append(slice.Endpoints, kubeSliceEndpoint{
					Addresses:  []string{e.Address},
					Conditions: kubeConditions{Ready: ready, Serving: ready || draining, Terminating: draining},
					Zone:       e.Zone,
				})
			}
			rep.Endpoints += len(eps)
			j.slices = append(j.slices, slice)
		}
		if port == 0 {
			port = 8080 // no endpoints at all: any port will do
		}
		for c := range j.slices {
			j.slices[c].Ports = []kubeSlicePort{{Name: "http", Protocol: "TCP", Port: port}}
		}
		j.service = kubeService{APIVersion: "v1", Kind: "Service", Metadata: kubeMeta{Name: s.name, Namespace: *namespace}}
		j.service.Spec.ClusterIP = "None"
		j.service.Spec.Ports = []kubeServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: port}}
		rep.Services++
		rep.Slices += len(j.slices)
	}

	servicesPath := "/api/v1/namespaces/" + *namespace + "/services"
	slicesPath := "/apis/discovery.k8s.io/v1/namespaces/" + *namespace + "/endpointslices"
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	stopProgress := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				logf("kubeload: %d of %d services with their slices written (%.0f s)", done.Load(), len(jobs), time.Since(started).Seconds())
			}
		}
	}()
	for range max(1, *workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				err := w.create(servicesPath, jobs[i].service)
				for c := 0; err == nil && c < len(jobs[i].slices); c++ {
					err = w.create(slicesPath, jobs[i].slices[c])
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(len(jobs))) // the others stop too
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	if firstErr != nil {
		return firstErr
	}
	rep.Seconds = time.Since(started).Seconds()
	rep.PerSecond = float64(rep.Services+rep.Slices) / rep.Seconds
	rep.Existing, rep.Retries = w.existing.Load(), w.retries.Load()
	logf("kubeload: %d Services and %d EndpointSlices (%d endpoints) in namespace %s in %.1f s (%.0f objects/s, %d already there, %d retries)",
		rep.Services, rep.Slices, rep.Endpoints, rep.Namespace, rep.Seconds, rep.PerSecond, rep.Existing, rep.Retries)
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	return nil
}

// create POSTs one object; 409 (it exists) is fine. Throttling (429),
// server errors and failed connections are retried with a growing pause.
func (w *kubeWriter) create(path string, object any) error {
	body, err := json.Marshal(object)
	if err != nil {
		return err
	}
	pause := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		status, text, err := w.post(path, body)
		switch {
		case err == nil && (status == http.StatusCreated || status == http.StatusOK):
			return nil
		case err == nil && status == http.StatusConflict:
			w.existing.Add(1)
			return nil
		case attempt < 10 && (err != nil || status == http.StatusTooManyRequests || status >= 500):
			w.retries.Add(1)
			time.Sleep(pause)
			pause = min(2*pause, 5*time.Second)
		case err != nil:
			return fmt.Errorf("POST %s: %v", path, err)
		default:
			return fmt.Errorf("POST %s: HTTP %d: %s", path, status, text)
		}
	}
}

func (w *kubeWriter) post(path string, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, w.server+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			time.Sleep(time.Duration(min(s, 5)) * time.Second)
		}
	}
	return resp.StatusCode, string(text), nil
}
