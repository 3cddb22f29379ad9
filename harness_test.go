package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastTuning keep reconnects and retries quick in tests; the identity check
// is long so only the tests that want it trigger it (by SIGHUP).
var fastTuning = tuning{
	reconnectMin: 5 * time.Millisecond, reconnectMax: 50 * time.Millisecond,
	retryMin: 5 * time.Millisecond, retryMax: 50 * time.Millisecond,
	identityCheck: time.Hour,
	stopGrace:     10 * time.Second,
}

// harness is the daemon started the way main starts it (config file,
// identity file, start function), wired to the in-process Teleport auth
// fake over gRPC+mTLS and the Mattermost fake over HTTP.
type harness struct {
	t        testing.TB
	auth     *fakeAuth
	mm       *fakeMattermost
	dir      string
	config   string // config file path
	identity string // identity file path
	logFile  string
	timing   tuning

	// Channels seeded in the Mattermost fake.
	general, dba, reviews, outsiders string
	aliceID, bobID                   string

	reload chan struct{}
	cancel context.CancelFunc
	done   chan error

	reloads chan error // one per finished reload

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every handling
	handled []handling
}

// handling is one pass of the daemon over one request.
type handling struct {
	id  string
	err error
}

// newHarness seeds both fakes, writes an identity file and a config with
// the given extra TOML (the [mattermost] recipients and any other tables).
func newHarness(t testing.TB, extra string) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		auth:    newFakeAuth(t),
		mm:      newFakeMattermost(t),
		dir:     t.TempDir(),
		timing:  fastTuning,
		reload:  make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
	h.timing.handled = h.observe
	h.reloads = make(chan error, 10)
	h.timing.reloaded = func(err error) { h.reloads <- err }
	h.config = filepath.Join(h.dir, "teleport-mattermost.toml")
	h.identity = filepath.Join(h.dir, "identity")
	h.logFile = filepath.Join(h.dir, "daemon.log")
	h.auth.writeIdentity(t, h.identity, "mattermost-plugin")
	h.mm.addTeam("myteam", "My Team")
	h.general = h.mm.addChannel("myteam", "general", "General", true)
	h.dba = h.mm.addChannel("myteam", "dba", "DBA", true)
	h.reviews = h.mm.addChannel("myteam", "town-square", "Town Square", true)
	h.outsiders = h.mm.addChannel("myteam", "outsiders", "Outsiders", false)
	h.aliceID = h.mm.addUser("alice@example.com", "alice")
	h.bobID = h.mm.addUser("bob@example.com", "bob")
	h.writeConfig(extra)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", h.log())
		}
	})
	return h
}

// writeConfig writes the config file: the fixed [teleport], [mattermost]
// and [log] keys, then extra (which may add recipients or tables).
func (h *harness) writeConfig(extra string) {
	h.t.Helper()
	daemonConfig{
		addr: h.auth.addr(), identity: h.identity, url: h.mm.URL(), token: h.mm.token,
		logFile: h.logFile, severity: "DEBUG", mattermost: "concurrency = 4\n" + extra,
	}.write(h.t, h.config)
}

// daemonConfig is a config file as tests write it. mattermost holds more
// [mattermost] keys (recipients, concurrency) and may open further tables.
type daemonConfig struct {
	addr, identity, url, token string
	logFile, severity          string
	mattermost                 string
}

func (c daemonConfig) write(t testing.TB, path string) {
	t.Helper()
	text := fmt.Sprintf(`[teleport]
addr = %q
identity = %q

[mattermost]
url = %q
token = %q
%s

[log]
output = %q
severity = %q
`, c.addr, c.identity, c.url, c.token, c.mattermost, c.logFile, c.severity)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tomlList is a TOML array of strings.
func tomlList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// start runs the daemon and waits until its watcher is open.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	watches := func() int { return countOf(h.auth.rpcs(), "WatchEvents") }
	before := watches()
	go func() { h.done <- startWith(ctx, h.config, true, h.reload, h.timing) }()
	h.auth.waitFor(h.t, "the daemon's watcher", func() bool { return watches() > before && h.auth.watchers() > 0 })
	h.t.Cleanup(h.stop)
}

// stop ends the daemon gracefully and returns what start returned.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("daemon stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("daemon did not stop within 30s")
	}
}

// sighup reloads as SIGHUP does and returns the reload's outcome.
func (h *harness) sighup() error {
	h.t.Helper()
	h.reload <- struct{}{}
	select {
	case err := <-h.reloads:
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatal("reload did not finish within 20s")
		return nil
	}
}

func (h *harness) observe(id string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handled = append(h.handled, handling{id, err})
	close(h.changed)
	h.changed = make(chan struct{})
}

// waitHandled waits until request id was handled without error n times in
// all (counting from the harness's creation).
func (h *harness) waitHandled(id string, n int) {
	h.t.Helper()
	changed := func() <-chan struct{} {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.changed
	}
	waitChanged(h.t, fmt.Sprintf("request %s handled %d time(s)", id, n), 10*time.Second, changed, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		ok := 0
		for _, x := range h.handled {
			if x.id == id && x.err == nil {
				ok++
			}
		}
		return ok >= n
	})
}

// log is what the daemon has logged so far.
func (h *harness) log() string {
	b, _ := os.ReadFile(h.logFile)
	return string(b)
}

// roots are the root posts (not thread replies) in a channel.
func (h *harness) roots(channelID string) []mmPost {
	var out []mmPost
	for _, p := range h.mm.postsIn(channelID) {
		if p.RootID == "" {
			out = append(out, p)
		}
	}
	return out
}

// replies are the thread replies to root, oldest first.
func (h *harness) replies(root string) []mmPost {
	var out []mmPost
	for _, p := range h.mm.posts() {
		if p.RootID == root {
			out = append(out, p)
		}
	}
	return out
}

// dm is the direct channel between the bot and a user ("" before it exists).
func (h *harness) dm(userID string) string {
	ids := []string{h.mm.botID, userID}
	slices.Sort(ids)
	h.mm.mu.Lock()
	defer h.mm.mu.Unlock()
	return h.mm.direct[ids[0]+"__"+ids[1]]
}

// waitRoots waits until channel has n root posts mentioning the request.
func (h *harness) waitRoots(channelID, requestID string, n int) []mmPost {
	h.t.Helper()
	var got []mmPost
	h.mm.waitFor(h.t, fmt.Sprintf("%d root post(s) of %s in %s", n, requestID, channelID), func() bool {
		got = got[:0]
		for _, p := range h.roots(channelID) {
			if strings.Contains(p.Message, requestID) {
				got = append(got, p)
			}
		}
		return len(got) >= n
	})
	return got
}

// waitPluginData waits until the request's stored state satisfies cond.
func (h *harness) waitPluginData(requestID string, cond func(pluginData) bool) pluginData {
	h.t.Helper()
	var d pluginData
	h.auth.waitFor(h.t, "plugin data of "+requestID, func() bool {
		var err error
		d, err = decodePluginData(h.auth.pluginData(requestID))
		return err == nil && cond(d)
	})
	return d
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// waitChanged re-checks cond each time changed() is closed, until cond holds
// or d passes. changed must be taken before cond is checked, under the same
// lock that closes it, so that no change is missed.
func waitChanged(t testing.TB, what string, d time.Duration, changed func() <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ch := changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
