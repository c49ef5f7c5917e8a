// Command gcpserver is the go-control-plane baseline for the attache
// benchmark: it serves the services of a directory of attache host files
// (*.json) from a go-control-plane v3 snapshot cache over ADS (SotW and
// delta) on one gRPC server, and follows changes to the directory. With
// -kubeconfig it serves the Services and EndpointSlices of one Kubernetes
// namespace instead (kube.go).
//
//	gcpserver -dir DIR [-listen 127.0.0.1:0] [-port-file FILE]
//	          [-debounce 20ms] [-max-delay 20ms] [-ads=true]
//	gcpserver -kubeconfig FILE [-namespace bench] [the same flags]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/fsnotify/fsnotify"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// The gRPC server options of go-control-plane's own example server
// (internal/example/server.go).
const (
	grpcKeepaliveTime        = 30 * time.Second
	grpcKeepaliveTimeout     = 5 * time.Second
	grpcKeepaliveMinTime     = 30 * time.Second
	grpcMaxConcurrentStreams = 1000000
)

// group is the one node group: every client gets the same snapshot.
const group = "all"

// oneGroup is a cache.NodeHash that maps every node to the one group.
type oneGroup struct{}

func (oneGroup) ID(*core.Node) string { return group }

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "xDS gRPC listen address")
	dir := flag.String("dir", "", "directory of attache host files (*.json)")
	kubeconfig := flag.String("kubeconfig", "", "serve a Kubernetes namespace's Services and EndpointSlices instead (this cluster's kubeconfig)")
	namespace := flag.String("namespace", "bench", "with -kubeconfig: the namespace")
	portFile := flag.String("port-file", "", `write {"xds": PORT} here once serving`)
	debounce := flag.Duration("debounce", 20*time.Millisecond, "quiet time after the last change event")
	maxDelay := flag.Duration("max-delay", 20*time.Millisecond, "longest wait after the first change event")
	ads := flag.Bool("ads", true, "snapshot cache ADS mode (hold SotW EDS/RDS answers until every resource of the type is requested)")
	flag.Parse()
	if (*dir == "") == (*kubeconfig == "") || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gcpserver -dir DIR | -kubeconfig FILE [-namespace NS] [-listen ADDR] [-port-file FILE] [-debounce D] [-max-delay D] [-ads=BOOL]")
		os.Exit(2)
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("gcpserver: ")
	var err error
	if *kubeconfig != "" {
		err = runKube(*listen, *kubeconfig, *namespace, *portFile, *debounce, *maxDelay, *ads)
	} else {
		err = run(*listen, filepath.Clean(*dir), *portFile, *debounce, *maxDelay, *ads)
	}
	if err != nil {
		log.Printf("error: %v", err)
		os.Exit(1)
	}
}

func run(listen, dir, portFile string, debounce, maxDelay time.Duration, ads bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Watch before the first read so that no change is lost.
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}

	t0 := time.Now()
	cat := &catalog{dir: dir, files: make(map[string]fileModel)}
	names, err := listDir(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := cat.reload(n); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, n), err)
		}
	}
	model := merge(cat.files)
	snap, nEps, err := buildSnapshot(model)
	if err != nil {
		return err
	}

	snapshots := cache.NewSnapshotCache(ads, oneGroup{}, nil) // nil: the package's no-op logger
	if err := snapshots.SetSnapshot(ctx, group, snap); err != nil {
		return err
	}
	log.Printf("loaded %d files: %d services, %d endpoints in %v (GOMAXPROCS %d, ads %v)",
		len(names), len(model), nEps, time.Since(t0).Round(time.Microsecond), runtime.GOMAXPROCS(0), ads)
	log.Printf("generation 1: %d services, cds %s eds %s",
		len(model), snap.GetVersion(typeURL(types.Cluster)), snap.GetVersion(typeURL(types.Endpoint)))

	gs, serveErr, err := startServer(ctx, snapshots, listen, portFile)
	if err != nil {
		return err
	}

	gen := 1
	cur := snap
	apply := func(changed []string) {
		t := time.Now()
		dirty := false
		for _, n := range changed {
			ok, err := cat.reload(n)
			if err != nil {
				log.Printf("%s: %v (keeping its last good content)", filepath.Join(dir, n), err)
			}
			dirty = dirty || ok
		}
		if !dirty {
			return
		}
		tRead := time.Since(t)
		tb := time.Now()
		m := merge(cat.files)
		s, n, err := buildSnapshot(m)
		if err != nil {
			log.Printf("build: %v", err)
			return
		}
		tBuild := time.Since(tb)
		cv, ev := s.GetVersion(typeURL(types.Cluster)), s.GetVersion(typeURL(types.Endpoint))
		if cv == cur.GetVersion(typeURL(types.Cluster)) && ev == cur.GetVersion(typeURL(types.Endpoint)) {
			log.Printf("%d files changed, content unchanged (read %v, build %v)", len(changed), tRead.Round(time.Microsecond), tBuild.Round(time.Microsecond))
			return
		}
		ts := time.Now()
		if err := snapshots.SetSnapshot(ctx, group, s); err != nil {
			log.Printf("set snapshot: %v", err)
			return
		}
		tSet := time.Since(ts)
		gen++
		cur = s
		log.Printf("generation %d: %d services, %d endpoints, %d files changed; read %v build %v set %v (cds %s eds %s)",
			gen, len(m), n, len(changed), tRead.Round(time.Microsecond), tBuild.Round(time.Microsecond), tSet.Round(time.Microsecond), cv, ev)
	}

	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchLoop(ctx, w, cat, debounce, maxDelay, apply)
	}()

	select {
	case <-ctx.Done():
		log.Printf("signal received, stopping")
	case err := <-serveErr:
		stop()
		<-watchDone
		return fmt.Errorf("serve: %w", err)
	}
	gs.Stop() // ADS streams never end on their own: no graceful drain
	<-watchDone
	return nil
}

// startServer serves ADS (SotW and delta) from snapshots on listen, with
// the gRPC options of go-control-plane's example server, and writes the
// port file. Serve's end is sent on the channel.
func startServer(ctx context.Context, snapshots cache.SnapshotCache, listen, portFile string) (*grpc.Server, <-chan error, error) {
	xds := server.NewServer(ctx, snapshots, nil)
	gs := grpc.NewServer(
		grpc.MaxConcurrentStreams(grpcMaxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    grpcKeepaliveTime,
			Timeout: grpcKeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             grpcKeepaliveMinTime,
			PermitWithoutStream: true,
		}),
	)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, xds)

	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- gs.Serve(lis) }()
	port := lis.Addr().(*net.TCPAddr).Port
	log.Printf("serving ADS (SotW and delta) on %s", lis.Addr())
	if portFile != "" {
		if err := writePortFile(portFile, port); err != nil {
			gs.Stop()
			return nil, nil, err
		}
	}
	return gs, serveErr, nil
}

func typeURL(t types.ResponseType) string {
	u, _ := cache.GetResponseTypeURL(t)
	return u
}

// writePortFile writes {"xds": PORT} atomically (temporary file + rename).
func writePortFile(path string, port int) error {
	data, _ := json.Marshal(map[string]int{"xds": port})
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
