package main

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os/signal"
	"sort"
	"syscall"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	k8scache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Kubernetes mode (-kubeconfig): Services and EndpointSlices of one
// namespace, through client-go shared informers, as a go-control-plane user
// would write it. The gRPC server serves at once (requests wait in the
// snapshot cache); the first snapshot is set when both informers have
// synced, and later events are coalesced with the same window as the file
// mode's (-debounce, -max-delay) before the snapshot is rebuilt.
//
// The services are the ones attache's kubernetes source makes of the same
// objects (docs/kubernetes.md): a Service NAME with one TCP port is
// NAME.NAMESPACE (with several, NAME.NAMESPACE:PORTNAME); its endpoints come
// from the EndpointSlices labelled kubernetes.io/service-name=NAME, taking
// the slice port of the same name; ready endpoints are HEALTHY, not ready
// but serving and terminating ones DRAINING, other not-ready ones left out.
func runKube(listen, kubeconfig, namespace, portFile string, debounce, maxDelay time.Duration, ads bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	// Protobuf rather than JSON for the built-in types: what Kubernetes'
	// own components do, and cheaper to decode.
	config.ContentType = "application/vnd.kubernetes.protobuf"
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}

	snapshots := cache.NewSnapshotCache(ads, oneGroup{}, nil) // nil: the package's no-op logger
	gs, serveErr, err := startServer(ctx, snapshots, listen, portFile)
	if err != nil {
		return err
	}
	defer gs.Stop() // ADS streams never end on their own: no graceful drain

	t0 := time.Now()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	services := factory.Core().V1().Services()
	slices := factory.Discovery().V1().EndpointSlices()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := k8scache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	var handlersSynced []k8scache.InformerSynced
	for _, informer := range []k8scache.SharedIndexInformer{services.Informer(), slices.Informer()} {
		registration, err := informer.AddEventHandler(handler)
		if err != nil {
			return err
		}
		handlersSynced = append(handlersSynced, registration.HasSynced)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	// Synced stores, and the handler has seen every object of the initial
	// lists: those events are in the first snapshot.
	if !k8scache.WaitForCacheSync(ctx.Done(), handlersSynced...) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("informers did not sync")
	}
	select {
	case <-changed:
	default:
	}

	pub := &publisher{snapshots: snapshots}
	build := func(what string) {
		t := time.Now()
		svcs, err := services.Lister().Services(namespace).List(labels.Everything())
		if err != nil {
			log.Printf("list services: %v", err)
			return
		}
		sls, err := slices.Lister().EndpointSlices(namespace).List(labels.Everything())
		if err != nil {
			log.Printf("list endpointslices: %v", err)
			return
		}
		model := kubeModel(svcs, sls)
		pub.publish(ctx, model, fmt.Sprintf("%s: %d Services, %d EndpointSlices, model %v", what,
			len(svcs), len(sls), time.Since(t).Round(time.Microsecond)))
	}
	build(fmt.Sprintf("informers synced in %v", time.Since(t0).Round(time.Millisecond)))

	coalesceDone := make(chan struct{})
	go func() {
		defer close(coalesceDone)
		coalesce(ctx, changed, debounce, maxDelay, func() { build("changed") })
	}()
	defer func() { <-coalesceDone }()

	select {
	case <-ctx.Done():
		log.Printf("signal received, stopping")
		return nil
	case err := <-serveErr:
		stop()
		return fmt.Errorf("serve: %w", err)
	}
}

// publisher sets a snapshot of each new model, unless it holds what the
// current one does (versions are content hashes).
type publisher struct {
	snapshots cache.SnapshotCache
	gen       int
	cur       *cache.Snapshot
}

func (p *publisher) publish(ctx context.Context, model map[string][]ep, what string) {
	tb := time.Now()
	s, n, err := buildSnapshot(model)
	if err != nil {
		log.Printf("build: %v", err)
		return
	}
	tBuild := time.Since(tb)
	cv, ev := s.GetVersion(typeURL(types.Cluster)), s.GetVersion(typeURL(types.Endpoint))
	if p.cur != nil && cv == p.cur.GetVersion(typeURL(types.Cluster)) && ev == p.cur.GetVersion(typeURL(types.Endpoint)) {
		log.Printf("%s; content unchanged (build %v)", what, tBuild.Round(time.Microsecond))
		return
	}
	ts := time.Now()
	if err := p.snapshots.SetSnapshot(ctx, group, s); err != nil {
		log.Printf("set snapshot: %v", err)
		return
	}
	p.gen++
	p.cur = s
	log.Printf("generation %d: %d services, %d endpoints; %s; build %v set %v (cds %s eds %s)",
		p.gen, len(model), n, what, tBuild.Round(time.Microsecond), time.Since(ts).Round(time.Microsecond), cv, ev)
}

// coalesce calls fire once events have stopped for debounce, and at most
// maxDelay after the first event of a burst: the file mode's window.
func coalesce(ctx context.Context, events <-chan struct{}, debounce, maxDelay time.Duration, fire func()) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-events:
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			at := now.Add(debounce)
			if hard := first.Add(maxDelay); hard.Before(at) {
				at = hard
			}
			timer.Reset(time.Until(at))
		case <-timer.C:
			first = time.Time{}
			fire()
		}
	}
}

// kubeModel turns Services and EndpointSlices into services, as attache's
// kubernetes source does.
func kubeModel(services []*corev1.Service, slices []*discoveryv1.EndpointSlice) map[string][]ep {
	slicesOf := make(map[string][]*discoveryv1.EndpointSlice)
	for _, s := range slices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name != "" && (s.AddressType == discoveryv1.AddressTypeIPv4 || s.AddressType == discoveryv1.AddressTypeIPv6) {
			slicesOf[name] = append(slicesOf[name], s)
		}
	}
	model := make(map[string][]ep, len(services))
	for _, svc := range services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Annotations["attache.io/export"] == "false" {
			continue
		}
		var ports []corev1.ServicePort
		for _, p := range svc.Spec.Ports {
			if (p.Protocol == corev1.ProtocolTCP || p.Protocol == "") && p.Port != 0 {
				ports = append(ports, p)
			}
		}
		matching := slicesOf[svc.Name]
		// Slices in name order, so that a model is the same whatever order
		// the informer's store hands them out in.
		sort.Slice(matching, func(i, j int) bool { return matching[i].Name < matching[j].Name })
		base := svc.Name + "." + svc.Namespace
		for _, port := range ports {
			name := base
			if len(ports) > 1 {
				key := port.Name
				if key == "" {
					key = fmt.Sprint(port.Port)
				}
				name = base + ":" + key
			}
			eps := []ep{}
			seen := make(map[netip.AddrPort]bool)
			for _, slice := range matching {
				var target *int32
				for _, sp := range slice.Ports {
					protocol := corev1.ProtocolTCP
					if sp.Protocol != nil {
						protocol = *sp.Protocol
					}
					spName := ""
					if sp.Name != nil {
						spName = *sp.Name
					}
					if spName == port.Name && protocol == corev1.ProtocolTCP {
						target = sp.Port
					}
				}
				if target == nil || *target < 1 || *target > 65535 {
					continue
				}
				for _, e := range slice.Endpoints {
					if len(e.Addresses) == 0 {
						continue
					}
					addr, err := netip.ParseAddr(e.Addresses[0])
					if err != nil {
						continue
					}
					// A missing condition means "ready" (the API's default).
					ready := e.Conditions.Ready == nil || *e.Conditions.Ready
					serving := ready
					if e.Conditions.Serving != nil {
						serving = *e.Conditions.Serving
					}
					terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
					health := core.HealthStatus_HEALTHY
					switch {
					case ready:
					case serving && terminating:
						health = core.HealthStatus_DRAINING
					default:
						continue
					}
					key := netip.AddrPortFrom(addr, uint16(*target))
					if seen[key] {
						continue
					}
					seen[key] = true
					zone := ""
					if e.Zone != nil {
						zone = *e.Zone
					}
					eps = append(eps, ep{
						Address: e.Addresses[0], Port: uint32(*target),
						Loc:    locality{Zone: zone, SubZone: "kubernetes"},
						Weight: 1, Health: health,
					})
				}
			}
			model[name] = eps
		}
	}
	return model
}
