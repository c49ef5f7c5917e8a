// xdsload simulates a fleet of Envoys on one xDS server and measures it.
//
//	xdsload gen -dir D -services 1000 -clusters 3 -endpoints 10 [-service-port]
//	xdsload run -dir D -target 127.0.0.1:PORT -pid PID -clients 2000 \
//	    -subscribe 100 [-delta] [-churn 100,1000] [-churn-seconds 10] [-storm] \
//	    [-name-suffix .bench] [-await-server]
//	xdsload kubeload -dir D -server https://127.0.0.1:PORT -token T \
//	    -ca-file CA [-namespace bench] [-workers 8]
//
// gen writes the catalog as host files (one per service and cluster). run
// connects the clients, each subscribed to -subscribe clusters, waits until
// every client holds its whole initial config, then edits the host files at
// each churn rate and records, for every change and every subscribed client,
// the time from the file's rename to the arrival of a state that contains it.
// It samples the server's CPU and memory from /proc at each phase's end and
// prints one JSON document. kubeload writes the same catalog into a
// kube-apiserver instead, as Services and EndpointSlices (one per service and
// cluster), and prints how long that took.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type loadgen struct {
	work   *workload
	counts counters
	hist   atomic.Pointer[histogram]
	verify bool
}

type phaseResult struct {
	Name      string     `json:"name"`
	Seconds   float64    `json:"seconds"`
	Server    procSample `json:"server"`
	CPU       float64    `json:"server_cpu_s"`
	LoadCPU   float64    `json:"loadgen_cpu_s"`
	Responses uint64     `json:"responses"`
	Bytes     uint64     `json:"bytes"`
	Converged int        `json:"converged_clients"`
	Errors    uint64     `json:"stream_errors"`
	// Churn phases only.
	Rate     float64 `json:"changes_per_s,omitempty"`
	Changes  int     `json:"changes,omitempty"`
	Samples  uint64  `json:"samples,omitempty"`
	Expected uint64  `json:"expected_samples,omitempty"`
	// Changes a client never needed: later edits undid them before it was
	// sent anything (an endpoint flipped unhealthy and back).
	Cancelled uint64  `json:"cancelled_samples,omitempty"`
	P50       float64 `json:"p50_ms,omitempty"`
	P99       float64 `json:"p99_ms,omitempty"`
	Max       float64 `json:"max_ms,omitempty"`
}

type report struct {
	Clients   int           `json:"clients"`
	Subscribe int           `json:"subscribe"`
	Delta     bool          `json:"delta"`
	Services  int           `json:"services"`
	Idle      procSample    `json:"server_before_clients"`
	Phases    []phaseResult `json:"phases"`
	Mismatch  uint64        `json:"verify_mismatches"`
	// The initial phase is timed from the server's launch (-await-server), and
	// its server CPU is all the process used since.
	FromLaunch bool `json:"timed_from_launch,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: xdsload gen|run|kubeload [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		fs := flag.NewFlagSet("gen", flag.ExitOnError)
		dir := fs.String("dir", "", "folder for the host files")
		services := fs.Int("services", 1000, "services")
		clusters := fs.Int("clusters", 3, "clusters per service")
		endpoints := fs.Int("endpoints", 10, "endpoints per service per cluster")
		servicePort := fs.Bool("service-port", false, "all endpoints of a service on one port, each on an address of its own (as in an EndpointSlice)")
		_ = fs.Parse(os.Args[2:])
		err = generate(*dir, *services, *clusters, *endpoints, *servicePort)
	case "run":
		err = run(os.Args[2:])
	case "kubeload":
		err = kubeload(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdsload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	dir := fs.String("dir", "", "the host files (as written by gen)")
	target := fs.String("target", "", "the xDS server, host:port")
	pid := fs.Int("pid", 0, "the server's pid, for CPU and memory")
	nClients := fs.Int("clients", 100, "simulated Envoys")
	subscribe := fs.Int("subscribe", 100, "clusters whose endpoints each client asks for")
	delta := fs.Bool("delta", false, "delta xDS instead of state of the world")
	churn := fs.String("churn", "", "comma-separated change rates per second")
	churnSeconds := fs.Float64("churn-seconds", 10, "length of each churn phase")
	storm := fs.Bool("storm", false, "then reconnect every client at once")
	timeout := fs.Duration("timeout", 5*time.Minute, "limit for each convergence")
	verify := fs.Bool("verify", false, "decode every response with the official types too")
	seedFlag := fs.Int64("seed", 1, "random seed")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's CPU profile here")
	suffix := fs.String("name-suffix", "", `the servers name a service's cluster after it plus this (".bench" for Kubernetes namespace bench)`)
	await := fs.Bool("await-server", false, `once set up, print "ready" and read "PID HOST:PORT LAUNCH_UNIX_NS" from stdin (the runner launches the server then); the initial phase is timed from the launch and counts all the server's CPU`)
	_ = fs.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	debug.SetGCPercent(400) // the generator's own GC must not steal its core
	work, err := loadWorkload(*dir, *suffix)
	if err != nil {
		return err
	}
	if len(work.services) == 0 {
		return fmt.Errorf("%s holds no services", *dir)
	}
	load := &loadgen{work: work, verify: *verify}
	rng := rand.New(rand.NewSource(*seedFlag))
	k := min(*subscribe, len(work.services))
	subscribers := make([]uint64, len(work.services))
	clients := make([]*client, *nClients)
	for i := range clients {
		subs := rng.Perm(len(work.services))[:k]
		sort.Ints(subs)
		for _, s := range subs {
			subscribers[s]++
		}
		clients[i] = &client{id: i, delta: *delta, subs: subs, held: make([]atomic.Uint32, k), content: make([]atomic.Uint64, k), load: load}
	}
	var launched time.Time
	if *await {
		// Everything above (30,000 host files take most of a second) is done
		// before the server starts: the clients connect as soon as it listens.
		fmt.Println("ready")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return fmt.Errorf("-await-server: %v", err)
		}
		var ns int64
		if _, err := fmt.Sscanf(line, "%d %s %d", pid, target, &ns); err != nil {
			return fmt.Errorf("-await-server: %q: %v", line, err)
		}
		launched = time.Unix(0, ns)
	}
	rep := report{FromLaunch: *await, Clients: *nClients, Subscribe: k, Delta: *delta, Services: len(work.services), Idle: sampleProc(*pid)}

	selfBefore := selfCPU()
	phase := func(name string, started time.Time, before procSample, r0, b0 uint64) phaseResult {
		after := sampleProc(*pid)
		self := selfCPU()
		p := phaseResult{
			Name: name, Seconds: time.Since(started).Seconds(), Server: after,
			LoadCPU: self - selfBefore,
			CPU:     after.CPUSeconds - before.CPUSeconds, Errors: load.counts.errors.Load(),
			Responses: load.counts.responses.Load() - r0, Bytes: load.counts.bytes.Load() - b0,
		}
		for _, c := range clients {
			if c.converged() {
				p.Converged++
			}
		}
		selfBefore = self
		logf("%s: %.2fs, server cpu %.2fs, load generator cpu %.2fs, %d responses, %d bytes, %d/%d clients converged, rss %d KiB",
			name, p.Seconds, p.CPU, p.LoadCPU, p.Responses, p.Bytes, p.Converged, len(clients), after.RSSKiB)
		return p
	}

	// Initial: every client connects at once.
	ctx, stop := context.WithCancel(context.Background())
	before, started := sampleProc(*pid), time.Now()
	if *await {
		before, started = procSample{}, launched
	}
	wg := startClients(ctx, clients, *target, load)
	if !waitFor(&wg.initial, *timeout) {
		logf("initial: not every client got its config within %v", *timeout)
	}
	rep.Phases = append(rep.Phases, phase("initial", started, before, 0, 0))

	for _, field := range strings.Split(*churn, ",") {
		if field == "" {
			continue
		}
		rate, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return fmt.Errorf("-churn: %v", err)
		}
		h := &histogram{}
		load.hist.Store(h)
		before, started = sampleProc(*pid), time.Now()
		r0, b0 := load.counts.responses.Load(), load.counts.bytes.Load()
		changes, expected := 0, uint64(0)
		deadline := started.Add(time.Duration(*churnSeconds * float64(time.Second)))
		tick := time.NewTicker(5 * time.Millisecond)
		for now := range tick.C {
			if now.After(deadline) {
				break
			}
			due := int(rate * now.Sub(started).Seconds())
			for ; changes < due; changes++ {
				if err := work.apply(rng); err != nil {
					return err
				}
			}
		}
		tick.Stop()
		expected = 0
		for s, svc := range work.services {
			svc.mu.RLock()
			expected += uint64(len(svc.history)-1) * subscribers[s]
			svc.mu.RUnlock()
		}
		if !pollUntil(*timeout, func() bool { return allConverged(clients) }) {
			reportLagging(clients)
		}
		p := phase(fmt.Sprintf("churn %g/s", rate), started, before, r0, b0)
		p.Rate, p.Changes = float64(changes)/(*churnSeconds), changes
		var cancelled uint64
		for _, c := range clients {
			cancelled += c.cancelled()
		}
		p.Samples, p.Expected = h.count.Load(), expected-rep.sampledBefore()
		p.Cancelled = cancelled
		p.P50, p.P99, p.Max = h.quantile(0.50), h.quantile(0.99), h.maxMillis()
		logf("  %d changes, latency p50 %.1f ms p99 %.1f ms max %.1f ms (%d of %d samples, %d cancelled out)",
			changes, p.P50, p.P99, p.Max, p.Samples, p.Expected, p.Cancelled)
		rep.Phases = append(rep.Phases, p)
		load.hist.Store(nil)
	}

	if *storm {
		stop()
		wg.running.Wait()
		ctx, stop = context.WithCancel(context.Background())
		before, started = sampleProc(*pid), time.Now()
		r0, b0 := load.counts.responses.Load(), load.counts.bytes.Load()
		wg = startClients(ctx, clients, *target, load)
		if !waitFor(&wg.initial, *timeout) {
			logf("storm: not every client got its config within %v", *timeout)
		}
		rep.Phases = append(rep.Phases, phase("reconnect storm", started, before, r0, b0))
	}
	stop()
	wg.running.Wait()
	rep.Mismatch = load.counts.mismatch.Load()
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	return nil
}

// sampledBefore: samples counted in earlier churn phases are in `expected`
// too (history is cumulative); subtract them.
func (r *report) sampledBefore() uint64 {
	var n uint64
	for _, p := range r.Phases {
		n += p.Expected
	}
	return n
}

type clientGroup struct {
	running sync.WaitGroup
	initial sync.WaitGroup
}

// startClients runs every client until ctx ends, reconnecting after errors as
// Envoy does; initial is done once each has held its whole config once.
func startClients(ctx context.Context, clients []*client, target string, load *loadgen) *clientGroup {
	g := &clientGroup{}
	g.initial.Add(len(clients))
	g.running.Add(len(clients))
	for _, c := range clients {
		go func() {
			defer g.running.Done()
			var once sync.Once
			initial := func() { once.Do(g.initial.Done) }
			for ctx.Err() == nil {
				if err := c.run(ctx, target, initial); err != nil && ctx.Err() == nil {
					if n := load.counts.errors.Add(1); n <= 5 {
						logf("client %d: %v", c.id, err)
					}
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}()
	}
	return g
}

// reportLagging names a few clients that do not hold the newest state.
func reportLagging(clients []*client) {
	shown := 0
	for _, c := range clients {
		for i, s := range c.subs {
			svc := c.load.work.services[s]
			if held, latest := c.held[i].Load(), svc.latest(); held != latest && shown < 10 {
				shown++
				logf("client %d holds %s at seq %d (content %x), newest is %d (content %x)",
					c.id, svc.name, held, c.content[i].Load(), latest, svc.newest())
			}
		}
	}
}

func allConverged(clients []*client) bool {
	for _, c := range clients {
		if !c.converged() {
			return false
		}
	}
	return true
}

func waitFor(wg *sync.WaitGroup, limit time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}

func pollUntil(limit time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}
