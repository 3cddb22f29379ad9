package main

// The burst benchmark: the real daemon, as its own process, against the
// in-process Teleport auth fake (gRPC+mTLS) and the Mattermost fake with a
// per-call delay, next to a baseline client that makes only the bare HTTP
// posts of the same work. Run it with
//
//	go test -run '^$' -bench Burst -benchtime 1x .
//
// It prints a table (latency, throughput, Mattermost calls per request,
// memory and goroutines of the daemon process, daemon/baseline ratios) and
// reports the key figures as benchmark metrics. README-bench.md explains the
// figures and the numbers measured.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The knobs, as test flags with environment fallbacks (handy under CI
// wrappers that do not pass flags through).
var (
	burstRequests    = flag.Int("burst.requests", envInt("TM_BURST_REQUESTS", 1000), "access requests filed at once")
	burstRecipients  = flag.Int("burst.recipients", envInt("TM_BURST_RECIPIENTS", 3), "recipients per request (channels, DMs and display-name channels in turn)")
	burstDelay       = flag.Duration("burst.delay", envDuration("TM_BURST_DELAY", 2*time.Millisecond), "Mattermost fake latency per call")
	burstConcurrency = flag.Int("burst.concurrency", envInt("TM_BURST_CONCURRENCY", 8), "mattermost.concurrency of the daemon, and the baseline's workers")
	burstSettle      = flag.Duration("burst.settle", envDuration("TM_BURST_SETTLE", 5*time.Second), "how long the open requests are held after the burst before steady memory is read")
	burstTimeout     = flag.Duration("burst.timeout", envDuration("TM_BURST_TIMEOUT", 5*time.Minute), "longest a burst may take to be posted")
	burstRateBudget  = flag.Int("burst.ratelimit", envInt("TM_BURST_RATELIMIT", 100), "calls per second the rate-limited Mattermost allows (BenchmarkBurstRateLimited)")
	burstRateReqs    = flag.Int("burst.ratelimit.requests", envInt("TM_BURST_RATELIMIT_REQUESTS", 200), "access requests in the rate-limited burst")
	burstBinary      = flag.String("burst.binary", os.Getenv("TM_BURST_BINARY"), "run this teleport-mattermost binary as the daemon instead of the test binary (RSS of the real artifact; no heap or goroutine figures then)")
	burstDaemonEnv   = flag.String("burst.daemonenv", os.Getenv("TM_BURST_DAEMONENV"), "extra environment of the daemon process only, space-separated (e.g. GOMEMLIMIT=16MiB GOGC=50)")
	burstHeap        = flag.String("burst.daemonheap", os.Getenv("TM_BURST_DAEMONHEAP"), "write a heap profile of the daemon process to this file at the end of the settle period (sampling finely: the heap figures grow)")
	burstProfile     = flag.String("burst.daemonprofile", os.Getenv("TM_BURST_DAEMONPROFILE"), "write a CPU profile of the daemon process to this file (-cpuprofile profiles only the fakes)")
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// The benchmark runs the daemon as the test binary re-executed as main
// (main_test.go's TestMain, mainEnv), so its memory and goroutines are the
// daemon's alone while the fakes and the measuring stay in the benchmark
// process. These variables switch on the probes below in that process.
const (
	benchStatsEnv   = "TM_BENCH_STATS"       // file the daemon process samples its runtime into
	benchProfileEnv = "TM_BENCH_CPUPROFILE"  // optional CPU profile of the daemon
	benchHeapEnv    = "TM_BENCH_HEAPPROFILE" // optional heap profile of the daemon
	benchStatsEvery = 10 * time.Millisecond
	// benchProbesDone is the stderr line that says the profiles are written
	// (after SIGUSR1), so the benchmark may stop the daemon.
	benchProbesDone = "bench probes: profiles written"
)

// init starts the probes in a daemon started by the benchmark, before main
// runs. They live as long as the process: main ends it with os.Exit, so
// the samples are written as they are taken and the profiles on SIGUSR1.
// In any other run of the test binary this does nothing.
func init() {
	if os.Getenv(mainEnv) != "1" || os.Getenv(benchStatsEnv) == "" {
		return
	}
	if err := startBenchProbes(); err != nil {
		fmt.Fprintf(os.Stderr, "bench probes: %v\n", err)
		os.Exit(1)
	}
}

func startBenchProbes() error {
	stats, err := os.Create(os.Getenv(benchStatsEnv))
	if err != nil {
		return err
	}
	var cpu *os.File
	if path := os.Getenv(benchProfileEnv); path != "" {
		if cpu, err = os.Create(path); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			return err
		}
	}
	heap := os.Getenv(benchHeapEnv)
	if heap != "" {
		runtime.MemProfileRate = 4096 // fine-grained: the heap is small
	}
	go sampleRuntime(stats)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if heap != "" {
			if err := writeHeapProfile(heap); err != nil {
				fmt.Fprintf(os.Stderr, "bench probes: heap profile: %v\n", err)
			}
		}
		fmt.Fprintln(os.Stderr, benchProbesDone)
	}()
	return nil
}

func writeHeapProfile(path string) error {
	// A profile is as of the GC before the last one: two make it current.
	runtime.GC()
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

// runtimeSample is one line of the daemon's stats file.
type runtimeSample struct {
	at         time.Time
	goroutines int
	heap       uint64 // bytes in heap objects, live and not yet swept (HeapAlloc)
	heapLive   uint64 // live heap as of the last GC
	mapped     uint64 // all memory the Go runtime has mapped, released pages included
	released   uint64 // heap pages returned to the OS (mapped, not resident)
	stacks     uint64 // goroutine stacks
	free       uint64 // free heap pages the runtime keeps resident for reuse
}

// resident is what the runtime holds in RAM (mapped less released).
func (s runtimeSample) resident() uint64 { return s.mapped - s.released }

// runtimeMetricNames are read with runtime/metrics, which does not stop the
// world (ReadMemStats would, every sample, and disturb the latencies).
var runtimeMetricNames = []string{
	"/sched/goroutines:goroutines",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/heap/free:bytes",
}

// sampleRuntime writes a line "unixnano" followed by the runtimeMetricNames
// values every benchStatsEvery, each line as it is taken.
func sampleRuntime(out io.Writer) {
	samples := make([]metrics.Sample, len(runtimeMetricNames))
	for i, n := range runtimeMetricNames {
		samples[i].Name = n
	}
	tick := time.NewTicker(benchStatsEvery)
	defer tick.Stop()
	var line []byte
	for range tick.C {
		metrics.Read(samples)
		line = strconv.AppendInt(line[:0], time.Now().UnixNano(), 10)
		for _, s := range samples {
			line = append(line, ' ')
			line = strconv.AppendUint(line, s.Value.Uint64(), 10)
		}
		line = append(line, '\n')
		if _, err := out.Write(line); err != nil {
			return
		}
	}
}

func readRuntimeSamples(path string) ([]runtimeSample, error) {
	if path == "" {
		return nil, nil // not our test binary: nothing sampled
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("daemon stats: %w", err)
	}
	var out []runtimeSample
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ns int64
		var s runtimeSample
		if _, err := fmt.Sscan(line, &ns, &s.goroutines, &s.heap, &s.heapLive, &s.mapped, &s.released, &s.stacks, &s.free); err != nil {
			continue // a line cut by the process's end
		}
		s.at = time.Unix(0, ns)
		out = append(out, s)
	}
	return out, nil
}

// rssSample is the daemon's resident memory at one instant, from /proc.
type rssSample struct {
	at         time.Time
	rss, hwm   uint64 // VmRSS and VmHWM, bytes
	anon, file uint64 // RssAnon (heap, stacks) and RssFile (the binary's pages), bytes
}

func readRSS(pid int) (rssSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssSample{}, err
	}
	s := rssSample{at: time.Now()}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		var dst *uint64
		switch k {
		case "VmRSS":
			dst = &s.rss
		case "VmHWM":
			dst = &s.hwm
		case "RssAnon":
			dst = &s.anon
		case "RssFile":
			dst = &s.file
		default:
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return rssSample{}, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		*dst = kb << 10
	}
	return s, nil
}

// benchDaemon is one daemon process and what is known about it.
type benchDaemon struct {
	cmd    *exec.Cmd
	dir    string
	stats  string // its runtime samples file
	log    string // its log file
	output string // its stdout and stderr
	exited chan struct{}
	err    error         // of the process, once exited is closed
	probed chan struct{} // closed when the probes wrote their profiles

	probedOnce sync.Once

	stopSampling context.CancelFunc
	sampling     sync.WaitGroup
	mu           sync.Mutex
	rss          []rssSample
}

// benchWorld is one pair of fakes, seeded with the burst's recipients.
type benchWorld struct {
	auth       *fakeAuth
	mm         *fakeMattermost
	recipients []string
}

// newBenchWorld seeds m recipients: a channel by name, a user by email (a
// DM) and a channel by display name in turn, so every lookup path is used.
func newBenchWorld(b *testing.B, m int) *benchWorld {
	w := &benchWorld{auth: newFakeAuth(b), mm: newFakeMattermost(b)}
	w.mm.addTeam("bench", "Bench")
	for i := range m {
		switch i % 3 {
		case 0:
			name := fmt.Sprintf("requests-%d", i)
			w.mm.addChannel("bench", name, fmt.Sprintf("Requests %d", i), true)
			w.recipients = append(w.recipients, "bench/"+name)
		case 1:
			email := fmt.Sprintf("reviewer%d@example.com", i)
			w.mm.addUser(email, fmt.Sprintf("reviewer%d", i))
			w.recipients = append(w.recipients, email)
		case 2:
			display := fmt.Sprintf("Access Requests %d", i)
			w.mm.addChannel("bench", fmt.Sprintf("access-requests-%d", i), display, true)
			w.recipients = append(w.recipients, "bench/"+display)
		}
	}
	return w
}

// startDaemon writes the config and identity and starts the daemon process;
// it returns once the daemon watches access requests.
func (w *benchWorld) startDaemon(b *testing.B, concurrency int, profile string) *benchDaemon {
	b.Helper()
	dir := b.TempDir()
	d := &benchDaemon{
		dir:    dir,
		stats:  filepath.Join(dir, "runtime.stats"),
		log:    filepath.Join(dir, "daemon.log"),
		output: filepath.Join(dir, "daemon.out"),
		exited: make(chan struct{}),
		probed: make(chan struct{}),
	}
	identity := filepath.Join(dir, "identity")
	w.auth.writeIdentity(b, identity, "mattermost-plugin")
	config := filepath.Join(dir, "teleport-mattermost.toml")
	daemonConfig{
		addr: w.auth.addr(), identity: identity, url: w.mm.URL(), token: w.mm.token,
		logFile: d.log, severity: "INFO",
		mattermost: fmt.Sprintf("concurrency = %d\nrecipients = %s", concurrency, tomlList(w.recipients)),
	}.write(b, config)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	out, err := os.Create(d.output)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { out.Close() })
	if *burstBinary != "" {
		d.cmd = exec.Command(*burstBinary, "start", "--config", config)
		d.cmd.Env = os.Environ()
		d.stats = ""
	} else {
		d.cmd = exec.Command(self, "start", "--config", config)
		d.cmd.Env = append(os.Environ(), mainEnv+"=1", benchStatsEnv+"="+d.stats)
		if profile != "" {
			d.cmd.Env = append(d.cmd.Env, benchProfileEnv+"="+profile)
		}
		if *burstHeap != "" {
			d.cmd.Env = append(d.cmd.Env, benchHeapEnv+"="+*burstHeap)
		}
	}
	d.cmd.Env = append(d.cmd.Env, strings.Fields(*burstDaemonEnv)...)
	d.cmd.Stdout = out
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	before := w.auth.watchers()
	if err := d.cmd.Start(); err != nil {
		b.Fatalf("start daemon: %v", err)
	}
	go func() {
		// Wait only after stderr is drained, as exec requires.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(out, sc.Text())
			if sc.Text() == benchProbesDone {
				d.probedOnce.Do(func() { close(d.probed) })
			}
		}
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	b.Cleanup(func() { d.stop(b) })

	ctx, cancel := context.WithCancel(context.Background())
	d.stopSampling = cancel
	d.sampling.Add(1)
	go func() { defer d.sampling.Done(); d.sampleRSS(ctx) }()

	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	if err := d.wait(w.authChanged, func() bool { return w.auth.watchers() > before }, deadline.C); err != nil {
		b.Fatalf("daemon did not start watching: %v\n%s", err, d.tail())
	}
	return d
}

func (w *benchWorld) authChanged() <-chan struct{} {
	w.auth.mu.Lock()
	defer w.auth.mu.Unlock()
	return w.auth.changed
}

func (w *benchWorld) mmChanged() <-chan struct{} {
	w.mm.mu.Lock()
	defer w.mm.mu.Unlock()
	return w.mm.changed
}

// postCount is how many posts the Mattermost fake holds.
func (w *benchWorld) postCount() int {
	w.mm.mu.Lock()
	defer w.mm.mu.Unlock()
	return len(w.mm.postList)
}

// wait re-checks cond after each change signalled by changed, until it holds,
// the deadline passes or the daemon (when there is one) exits.
func (d *benchDaemon) wait(changed func() <-chan struct{}, cond func() bool, deadline <-chan time.Time) error {
	var exited <-chan struct{}
	if d != nil {
		exited = d.exited
	}
	for {
		ch := changed() // before cond: a change after the check closes ch
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return errors.New("timed out")
		case <-exited:
			return fmt.Errorf("daemon exited: %v", d.err)
		}
	}
}

func (d *benchDaemon) sampleRSS(ctx context.Context) {
	tick := time.NewTicker(benchStatsEvery)
	defer tick.Stop()
	for {
		if s, err := readRSS(d.cmd.Process.Pid); err == nil {
			d.mu.Lock()
			d.rss = append(d.rss, s)
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-d.exited:
			return
		case <-tick.C:
		}
	}
}

// writeProfiles has the daemon's probes write their profiles and waits.
func (d *benchDaemon) writeProfiles(b *testing.B) {
	_ = d.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case <-d.probed:
	case <-d.exited:
		b.Errorf("daemon exited before writing its profiles: %v\n%s", d.err, d.tail())
	case <-time.After(30 * time.Second):
		b.Errorf("daemon did not write its profiles within 30s\n%s", d.tail())
	}
}

// stop ends the daemon as systemd does (SIGTERM) and waits for it.
func (d *benchDaemon) stop(b *testing.B) {
	d.stopSampling()
	d.sampling.Wait()
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.err != nil {
			b.Errorf("daemon exited with %v\n%s", d.err, d.tail())
		}
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		b.Errorf("daemon did not stop within 30s of SIGTERM\n%s", d.tail())
	}
}

func (d *benchDaemon) rssSamples() []rssSample {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.rss)
}

// tail is the end of the daemon's output and log, for failure messages.
func (d *benchDaemon) tail() string {
	var b strings.Builder
	for _, p := range []string{d.output, d.log} {
		data, _ := os.ReadFile(p)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(p), data)
	}
	return b.String()
}

// logCount is how many lines of the daemon's log contain s.
func (d *benchDaemon) logCount(s string) int {
	data, _ := os.ReadFile(d.log)
	return strings.Count(string(data), s)
}

// postedRoot is one root post's creation call, as the fake saw it.
type postedRoot struct {
	request string // teleport_request_id in its props
	body    []byte
	at      time.Time // when the fake answered
}

// rootPosts are the successful root-post creations among calls.
func rootPosts(calls []mmCall) []postedRoot {
	var out []postedRoot
	for _, c := range calls {
		if c.Method != http.MethodPost || c.Path != "/api/v4/posts" || c.Status != http.StatusCreated {
			continue
		}
		var p struct {
			RootID string `json:"root_id"`
			Props  struct {
				Request string `json:"teleport_request_id"`
			} `json:"props"`
		}
		if json.Unmarshal(c.Body, &p) != nil || p.RootID != "" || p.Props.Request == "" {
			continue
		}
		out = append(out, postedRoot{request: p.Props.Request, body: c.Body, at: c.At})
	}
	return out
}

// burstResult is what one side (daemon or baseline) achieved.
type burstResult struct {
	p50, p99, max time.Duration // event to the last of the request's root posts
	wall          time.Duration // first event to the last post
	postsPerSec   float64
}

// measure computes latencies from arrivals (per request id) and the root
// posts; every request must have exactly m root posts.
func measure(arrivals map[string]time.Time, start time.Time, posts []postedRoot, m int) (burstResult, error) {
	last := make(map[string]time.Time, len(arrivals))
	count := make(map[string]int, len(arrivals))
	var end time.Time
	for _, p := range posts {
		if _, ok := arrivals[p.request]; !ok {
			continue
		}
		count[p.request]++
		if p.at.After(last[p.request]) {
			last[p.request] = p.at
		}
		if p.at.After(end) {
			end = p.at
		}
	}
	lat := make([]time.Duration, 0, len(arrivals))
	for id, at := range arrivals {
		if count[id] != m {
			return burstResult{}, fmt.Errorf("request %s has %d root posts, want %d", id, count[id], m)
		}
		lat = append(lat, last[id].Sub(at))
	}
	slices.Sort(lat)
	r := burstResult{
		p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[len(lat)-1],
		wall: end.Sub(start),
	}
	r.postsPerSec = float64(len(arrivals)*m) / r.wall.Seconds()
	return r, nil
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i, 1)-1]
}

// callKind sorts Mattermost calls: the posts themselves, recipient lookups
// (which must be cached), edits and the rest.
func callKind(c mmCall) string {
	switch {
	case c.Method == http.MethodPost && c.Path == "/api/v4/posts":
		return "post"
	case c.Method == http.MethodPut && strings.HasSuffix(c.Path, "/patch"):
		return "edit"
	case strings.HasPrefix(c.Path, "/api/v4/users/email/"), c.Path == "/api/v4/channels/direct",
		strings.HasPrefix(c.Path, "/api/v4/teams/"):
		return "lookup"
	}
	return "other"
}

func countKinds(calls []mmCall) map[string]int {
	n := map[string]int{}
	for _, c := range calls {
		n[callKind(c)]++
	}
	return n
}

func countStrings(ss []string) map[string]int {
	n := map[string]int{}
	for _, s := range ss {
		n[s]++
	}
	return n
}

// baseline is the same root posts as the daemon made (the very bodies, so
// the same message size), sent by `concurrency` workers with bare HTTP, each
// request's posts in turn, each request released at the same offset from
// the start as its event was in the daemon's run.
func baseline(b *testing.B, w *benchWorld, concurrency int, offsets []time.Duration, bodies [][][]byte) time.Time {
	transport := &http.Transport{MaxIdleConns: 2 * concurrency, MaxIdleConnsPerHost: concurrency}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	url := w.mm.URL() + "/api/v4/posts"
	jobs := make(chan int, len(offsets))
	var workers sync.WaitGroup
	var failures sync.Map
	for range concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range jobs {
				for _, body := range bodies[i] {
					if err := benchPost(client, url, w.mm.token, body); err != nil {
						failures.Store(i, err)
					}
				}
			}
		}()
	}
	start := time.Now()
	for i, off := range offsets {
		if d := time.Until(start.Add(off)); d > 0 {
			time.Sleep(d) // replaying the arrival instants, not synchronising
		}
		jobs <- i
	}
	close(jobs)
	workers.Wait()
	failures.Range(func(k, v any) bool {
		b.Errorf("baseline request %d: %v", k, v)
		return false
	})
	return start
}

func benchPost(client *http.Client, url, token string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// processCPU is the user+system CPU seconds process pid has used so far.
func processCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// machineBusy is the CPU seconds all processes have used so far (every
// CPU's non-idle time in /proc/stat): what is not ours of it during the
// burst is other load on the machine, which disturbs the figures.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	busy := 0.0
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i != 3 && i != 4 && i < 8 { // not idle, not iowait, not guest time (counted in user)
			busy += n
		}
	}
	return busy / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTicks = 100

// selfCPU is the user+system CPU seconds of this (the benchmark's) process.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Targets of the issue.
const (
	targetP99Ratio        = 1.2
	targetThroughputRatio = 0.9
	targetSteadyRSS       = 40 << 20
)

// quietness warns when other processes used a noticeable share of the CPU
// while the figures were taken.
func quietness(load float64) string {
	if load < 0.1 {
		return "(quiet: the figures stand)"
	}
	return "WARNING: the machine was busy with other work; the ratios are disturbed, run again"
}

func targetVerdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// BenchmarkBurst files -burst.requests access requests at once, each for
// -burst.recipients recipients, and measures the daemon against a baseline
// making only the posts. The whole burst is one operation: b.N is ignored,
// so run it with -benchtime 1x.
func BenchmarkBurst(b *testing.B) {
	n, m, conc, delay := *burstRequests, *burstRecipients, *burstConcurrency, *burstDelay
	if n < 1 || m < 1 || conc < 1 {
		b.Fatalf("need -burst.requests, -burst.recipients and -burst.concurrency >= 1")
	}
	w := newBenchWorld(b, m)
	w.mm.setDelay(delay)
	d := w.startDaemon(b, conc, *burstProfile)
	startupCalls := len(w.mm.calls())
	startupLookups := countKinds(w.mm.calls())["lookup"]
	rpcsBefore := len(w.auth.rpcs())
	reason := "Investigating the latency alert on the payments database; need read access for an hour, ticket OPS-1234."

	// The burst: every request filed as fast as the fake can take them.
	daemonCPU, benchCPU, machineCPU := processCPU(d.cmd.Process.Pid), selfCPU(), machineBusy()
	arrivals := make(map[string]time.Time, n)
	offsets := make([]time.Duration, n)
	ids := make([]string, n)
	start := time.Now()
	for i := range n {
		at := time.Now()
		req := w.auth.createRequest(fmt.Sprintf("user%d@example.com", i), []string{"editor"}, reason)
		ids[i] = req.GetName()
		arrivals[ids[i]] = at
		offsets[i] = at.Sub(start)
	}
	deadline := time.NewTimer(*burstTimeout)
	defer deadline.Stop()
	if err := d.wait(w.mmChanged, func() bool { return w.postCount() >= n*m }, deadline.C); err != nil {
		b.Fatalf("waiting for %d root posts (have %d): %v\n%s", n*m, w.postCount(), err, d.tail())
	}
	burstEnd := time.Now()
	daemonCPU, benchCPU, machineCPU = processCPU(d.cmd.Process.Pid)-daemonCPU, selfCPU()-benchCPU, machineBusy()-machineCPU

	// Settle with every request still open (PENDING), then read steady memory.
	settle := time.NewTimer(*burstSettle)
	select {
	case <-settle.C:
	case <-d.exited:
		b.Fatalf("daemon exited during the settle period: %v\n%s", d.err, d.tail())
	}
	stopAt := time.Now()
	if (*burstHeap != "" || *burstProfile != "") && *burstBinary == "" {
		// After stopAt: the GC it forces is not part of the steady figures.
		d.writeProfiles(b)
	}
	calls := w.mm.calls()[startupCalls:]
	rpcs := countStrings(w.auth.rpcs()[rpcsBefore:])
	rss := d.rssSamples()
	d.stop(b)
	samples, err := readRuntimeSamples(d.stats)
	if err != nil {
		b.Fatal(err)
	}

	daemonPosts := rootPosts(calls)
	dr, err := measure(arrivals, start, daemonPosts, m)
	if err != nil {
		b.Fatalf("daemon: %v", err)
	}
	kinds := countKinds(calls)
	open := 0
	for _, id := range ids {
		if data, err := decodePluginData(w.auth.pluginData(id)); err == nil && data.State == statePending && len(data.Posts) == m && !data.Done {
			open++
		}
	}

	// Memory and goroutines: before, peak during the burst, steady at the end.
	var idle, peak, steady runtimeSample
	var peakResident uint64
	for _, s := range samples {
		switch {
		case s.at.Before(start):
			idle = s
		case !s.at.After(burstEnd):
			peak.goroutines = max(peak.goroutines, s.goroutines)
			peak.heap = max(peak.heap, s.heap)
			peak.stacks = max(peak.stacks, s.stacks)
			peakResident = max(peakResident, s.resident())
		}
		if !s.at.After(stopAt) {
			steady = s
		}
	}
	var rssIdle, rssPeak, rssSteady rssSample
	for _, s := range rss {
		if s.at.Before(start) {
			rssIdle = s
		} else if !s.at.After(burstEnd) && s.rss > rssPeak.rss {
			rssPeak = s
		}
		if !s.at.After(stopAt) {
			rssSteady = s
		}
	}

	// The baseline: the daemon's own root-post bodies, per request in order.
	byRequest := map[string][][]byte{}
	for _, p := range daemonPosts {
		byRequest[p.request] = append(byRequest[p.request], p.body)
	}
	bodies := make([][][]byte, n)
	for i, id := range ids {
		bodies[i] = byRequest[id]
	}
	before := len(w.mm.calls())
	benchCPUBase, machineCPUBase := selfCPU(), machineBusy()
	baseStart := baseline(b, w, conc, offsets, bodies)
	benchCPUBase, machineCPUBase = selfCPU()-benchCPUBase, machineBusy()-machineCPUBase
	baseArrivals := make(map[string]time.Time, n)
	for i, id := range ids {
		baseArrivals[id] = baseStart.Add(offsets[i])
	}
	br, err := measure(baseArrivals, baseStart, rootPosts(w.mm.calls()[before:]), m)
	if err != nil {
		b.Fatalf("baseline: %v", err)
	}

	p99Ratio := ms(dr.p99) / ms(br.p99)
	tputRatio := dr.postsPerSec / br.postsPerSec
	out := &strings.Builder{}
	row := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	row("\nburst: %d requests x %d recipients, Mattermost delay %v per call, concurrency %d, GOMAXPROCS %d, %s/%s %s",
		n, m, delay, conc, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, *burstDaemonEnv)
	row("%-34s %10s %10s %8s   %s", "", "daemon", "baseline", "ratio", "target")
	row("%-34s %10.1f %10.1f %8.2f", "event -> last post  p50 (ms)", ms(dr.p50), ms(br.p50), ms(dr.p50)/ms(br.p50))
	row("%-34s %10.1f %10.1f %8.2f   <= %.1f %s", "                    p99 (ms)", ms(dr.p99), ms(br.p99), p99Ratio,
		targetP99Ratio, targetVerdict(p99Ratio <= targetP99Ratio))
	row("%-34s %10.1f %10.1f %8.2f", "                    max (ms)", ms(dr.max), ms(br.max), ms(dr.max)/ms(br.max))
	row("%-34s %10.0f %10.0f %8.2f   >= %.1f %s", "posts per second", dr.postsPerSec, br.postsPerSec, tputRatio,
		targetThroughputRatio, targetVerdict(tputRatio >= targetThroughputRatio))
	row("%-34s %10.2f %10.2f", "burst wall time (s)", dr.wall.Seconds(), br.wall.Seconds())
	row("%-34s %10.2f %10.2f   (daemon process %.2f + fakes %.2f)", "CPU seconds in the burst",
		daemonCPU+benchCPU, benchCPUBase, daemonCPU, benchCPU)
	otherLoad := max(0, machineCPU-daemonCPU-benchCPU) / dr.wall.Seconds()
	otherLoadBase := max(0, machineCPUBase-benchCPUBase) / br.wall.Seconds()
	row("%-34s %10.2f %10.2f   %s", "other load on the machine (cores)", otherLoad, otherLoadBase,
		quietness(max(otherLoad, otherLoadBase)))
	row("%-34s %10.2f %10d   (burst: %d posts, %d lookups, %d edits, %d other)", "Mattermost calls per request",
		float64(len(calls))/float64(n), m, kinds["post"], kinds["lookup"], kinds["edit"], kinds["other"])
	row("%-34s %d at start-up for %d recipients, %d during the burst: O(recipients)", "recipient lookups",
		startupLookups, m, kinds["lookup"])
	row("%-34s %10.2f %10s   (GetPluginData %.2f, UpdatePluginData %.2f)", "Teleport RPCs per request",
		float64(sumCounts(rpcs))/float64(n), "-", float64(rpcs["GetPluginData"])/float64(n), float64(rpcs["UpdatePluginData"])/float64(n))
	row("%-34s %10d", "requests open (PENDING) after", open)
	row("daemon process memory               RSS   (anon + binary pages)")
	rssRow := func(what string, s rssSample, extra string) {
		row("  %-32s %6.1f MB (%5.1f + %4.1f)%s", what, mb(s.rss), mb(s.anon), mb(s.file), extra)
	}
	rssRow("idle, before the burst", rssIdle, "")
	rssRow("peak during the burst", rssPeak, fmt.Sprintf("   VmHWM %.1f MB", mb(rssSteady.hwm)))
	rssRow(fmt.Sprintf("steady, %d open, +%v", open, *burstSettle), rssSteady,
		fmt.Sprintf("   <= %d MB %s", targetSteadyRSS>>20, targetVerdict(rssSteady.rss <= targetSteadyRSS)))
	if len(samples) == 0 {
		row("Go runtime figures                 n/a (-burst.binary: not the test binary)")
	} else {
		row("Go runtime (MB)                          idle     peak   steady")
		row("  %-36s %6.1f %8.1f %8.1f", "heap objects (live + garbage)", mb(idle.heap), mb(peak.heap), mb(steady.heap))
		row("  %-36s %6.1f %8s %8.1f", "live heap after the last GC", mb(idle.heapLive), "", mb(steady.heapLive))
		row("  %-36s %6.1f %8.1f %8.1f", "goroutine stacks", mb(idle.stacks), mb(peak.stacks), mb(steady.stacks))
		row("  %-36s %6.1f %8s %8.1f", "free heap pages kept resident", mb(idle.free), "", mb(steady.free))
		other := func(s runtimeSample) float64 { return mb(s.resident() - s.heap - s.stacks - s.free) }
		row("  %-36s %6.1f %8s %8.1f", "other (GC metadata, fragmentation)", other(idle), "", other(steady))
		row("  %-36s %6.1f %8.1f %8.1f", "all resident runtime memory", mb(idle.resident()), mb(peakResident), mb(steady.resident()))
		row("  %-36s %6d %8d %8d", "goroutines", idle.goroutines, peak.goroutines, steady.goroutines)
	}
	fmt.Print(out.String())

	b.ReportMetric(ms(dr.p50), "p50-ms")
	b.ReportMetric(ms(dr.p99), "p99-ms")
	b.ReportMetric(ms(dr.max), "max-ms")
	b.ReportMetric(dr.postsPerSec, "posts/s")
	b.ReportMetric(p99Ratio, "p99-ratio")
	b.ReportMetric(tputRatio, "tput-ratio")
	b.ReportMetric(float64(len(calls))/float64(n), "mm-calls/req")
	b.ReportMetric(float64(kinds["lookup"])/float64(n), "lookups/req")
	b.ReportMetric(mb(rssSteady.rss), "rss-steady-MB")
	b.ReportMetric(mb(rssSteady.hwm), "rss-peak-MB")
	b.ReportMetric(mb(peak.heap), "heap-peak-MB")
	b.ReportMetric(float64(peak.goroutines), "goroutines-peak")

	// What must hold whatever the machine: every request posted once per
	// recipient, and no lookup per request.
	if kinds["lookup"] > 0 {
		b.Errorf("%d recipient lookups during the burst; they must be cached", kinds["lookup"])
	}
	if kinds["post"] != n*m {
		b.Errorf("%d posts for %d requests x %d recipients", kinds["post"], n, m)
	}
	if open != n {
		b.Errorf("%d of %d requests open with all posts in plugin data", open, n)
	}
}

func sumCounts(n map[string]int) int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}

// BenchmarkBurstRateLimited files a smaller burst against a Mattermost that
// allows -burst.ratelimit calls per one-second window and answers 429 with
// X-Ratelimit-Reset: 1 beyond that, and reports that every request was still
// posted and how many 429s the daemon drew: the client pauses all calls on a
// 429, so at most about one per worker per window.
func BenchmarkBurstRateLimited(b *testing.B) {
	n, m, conc, budget := *burstRateReqs, *burstRecipients, *burstConcurrency, *burstRateBudget
	if n < 1 || budget < 1 {
		b.Skip("-burst.ratelimit.requests or -burst.ratelimit is 0")
	}
	w := newBenchWorld(b, m)
	w.mm.setDelay(*burstDelay)
	d := w.startDaemon(b, conc, "")
	startupCalls := len(w.mm.calls())

	// A fixed one-second window, as the header promises: the count resets a
	// second after the window's first call.
	var mu sync.Mutex
	var windowStart time.Time
	windowCalls, windows := 0, 0
	limited := map[int]int{} // window number -> 429s answered in it
	w.mm.setFault(func(r *http.Request) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if now.Sub(windowStart) >= time.Second {
			windowStart, windowCalls = now, 0
			windows++
		}
		windowCalls++
		if windowCalls <= budget {
			return 0, nil
		}
		limited[windows]++
		reset := max(1, int((time.Second-now.Sub(windowStart)+time.Second-1)/time.Second))
		return http.StatusTooManyRequests, http.Header{
			"X-Ratelimit-Limit":     {strconv.Itoa(budget)},
			"X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Reset":     {strconv.Itoa(reset)},
		}
	})

	start := time.Now()
	ids := make([]string, n)
	for i := range n {
		ids[i] = w.auth.createRequest(fmt.Sprintf("user%d@example.com", i), []string{"editor"}, "rate limit burst").GetName()
	}
	deadline := time.NewTimer(*burstTimeout)
	defer deadline.Stop()
	if err := d.wait(w.mmChanged, func() bool { return w.postCount() >= n*m }, deadline.C); err != nil {
		b.Fatalf("waiting for %d root posts (have %d): %v\n%s", n*m, w.postCount(), err, d.tail())
	}
	wall := time.Since(start)
	calls := w.mm.calls()[startupCalls:]
	d.stop(b)

	tooMany, ok := 0, 0
	for _, c := range calls {
		switch c.Status {
		case http.StatusTooManyRequests:
			tooMany++
		case http.StatusCreated:
			ok++
		}
	}
	perRequest := map[string]int{}
	for _, p := range rootPosts(calls) {
		perRequest[p.request]++
	}
	complete := 0
	for _, id := range ids {
		if perRequest[id] == m {
			complete++
		}
	}
	mu.Lock()
	maxPerWindow, windowsLimited, windowsAll := 0, len(limited), windows
	for _, v := range limited {
		maxPerWindow = max(maxPerWindow, v)
	}
	mu.Unlock()
	retried := d.logCount("request not fully delivered")

	fmt.Printf(`
rate-limited burst: %d requests x %d recipients, budget %d calls/s (429 + X-Ratelimit-Reset beyond), concurrency %d
requests fully posted           %d of %d (%d posts, each root post once: %v)
calls made / answered 429       %d / %d (%.1f%%)
429s per limited window         max %d, in %d of %d one-second windows (<= concurrency %d: the client paused instead of hammering)
requests re-queued by daemon    %d
posts per second                %.0f (budget %d calls per window), wall %.1fs
`,
		n, m, budget, conc,
		complete, n, ok, len(rootPosts(calls)) == n*m,
		len(calls), tooMany, 100*float64(tooMany)/float64(max(len(calls), 1)),
		maxPerWindow, windowsLimited, windowsAll, conc,
		retried,
		float64(ok)/wall.Seconds(), budget, wall.Seconds(),
	)
	b.ReportMetric(float64(complete), "requests-posted")
	b.ReportMetric(float64(tooMany), "429s")
	b.ReportMetric(float64(len(calls)), "calls")
	b.ReportMetric(float64(maxPerWindow), "max-429/window")

	if complete != n {
		b.Errorf("%d of %d requests fully posted", complete, n)
	}
	if len(rootPosts(calls)) != n*m {
		b.Errorf("%d root posts for %d x %d", len(rootPosts(calls)), n, m)
	}
	if maxPerWindow > conc {
		b.Errorf("%d 429s in one window with %d workers: the client kept calling while rate-limited", maxPerWindow, conc)
	}
}
