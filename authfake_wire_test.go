package main

// connectTeleport and the fake Auth Service, through the real api client
// over the wire: these pin down both the production connection code and
// the fake's fidelity (what the daemon's tests build on).

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/client"
	"github.com/gravitational/teleport/api/client/proto"
	"github.com/gravitational/teleport/api/types"
	"github.com/gravitational/trace"
	"google.golang.org/grpc/codes"
)

// eventWait bounds how long a test waits for one watch event.
const eventWait = 5 * time.Second

// connectFake writes an identity for user and connects to fa with it.
func connectFake(t *testing.T, fa *fakeAuth, user string) (*client.Client, proto.PingResponse) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "identity")
	fa.writeIdentity(t, path, user)
	clt, pong, err := connectTeleport(context.Background(), teleportConfig{Addr: fa.addr(), Identity: path})
	if err != nil {
		t.Fatalf("connectTeleport: %v", err)
	}
	t.Cleanup(func() { clt.Close() })
	return clt, pong
}

func watchRequests(t *testing.T, clt *client.Client) types.Watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := clt.NewWatcher(ctx, types.Watch{Kinds: []types.WatchKind{{Kind: types.KindAccessRequest}}})
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func nextEvent(t *testing.T, w types.Watcher) types.Event {
	t.Helper()
	timeout := time.NewTimer(eventWait)
	defer timeout.Stop()
	select {
	case ev := <-w.Events():
		return ev
	case <-w.Done():
		t.Fatalf("watcher closed: %v", w.Error())
	case <-timeout.C:
		t.Fatalf("no watch event within %s", eventWait)
	}
	return types.Event{}
}

func TestTeleportPingIdentity(t *testing.T) {
	fa := newFakeAuth(t)
	_, pong := connectFake(t, fa, "mattermost-plugin")
	if pong.ClusterName != "example.com" || pong.ServerVersion != "17.0.0" || pong.ProxyPublicAddr != "teleport.example.com:443" {
		t.Errorf("ping = cluster %q version %q proxy %q", pong.ClusterName, pong.ServerVersion, pong.ProxyPublicAddr)
	}
	if users := fa.clientUsers(); !slices.Equal(users, []string{"mattermost-plugin"}) {
		t.Errorf("clientUsers = %q, want one Ping by mattermost-plugin", users)
	}
	if rpcs := fa.rpcs(); !slices.Equal(rpcs, []string{"Ping"}) {
		t.Errorf("rpcs = %q", rpcs)
	}
}

func TestTeleportKeyPair(t *testing.T) {
	fa := newFakeAuth(t)
	dir := t.TempDir()
	cfg := teleportConfig{
		Addr:      fa.addr(),
		ClientKey: filepath.Join(dir, "auth.key"),
		ClientCrt: filepath.Join(dir, "auth.crt"),
		RootCAs:   filepath.Join(dir, "auth.cas"),
	}
	fa.writeKeyPair(t, cfg.ClientKey, cfg.ClientCrt, cfg.RootCAs, "trio-user")
	clt, pong, err := connectTeleport(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connectTeleport: %v", err)
	}
	defer clt.Close()
	if pong.ClusterName != "example.com" {
		t.Errorf("cluster = %q", pong.ClusterName)
	}
	if users := fa.clientUsers(); !slices.Equal(users, []string{"trio-user"}) {
		t.Errorf("clientUsers = %q", users)
	}

	if err := os.Remove(cfg.RootCAs); err != nil {
		t.Fatal(err)
	}
	_, _, err = connectTeleport(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "root_cas") || !strings.Contains(err.Error(), cfg.RootCAs) {
		t.Errorf("missing root_cas: err = %v, want it named", err)
	}
}

func TestTeleportVersionRefused(t *testing.T) {
	fa := newFakeAuth(t)
	fa.setVersion("6.0.0")
	path := filepath.Join(t.TempDir(), "identity")
	fa.writeIdentity(t, path, "plugin")
	clt, _, err := connectTeleport(context.Background(), teleportConfig{Addr: fa.addr(), Identity: path})
	if err == nil {
		clt.Close()
		t.Fatal("connected to Teleport 6.0.0")
	}
	for _, want := range []string{fa.addr(), "6.0.0", "too old", "6.1.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	fa.setVersion("6.1.0-dev")
	clt, _, err = connectTeleport(context.Background(), teleportConfig{Addr: fa.addr(), Identity: path})
	if err != nil {
		t.Fatalf("6.1.0-dev refused: %v", err)
	}
	clt.Close()
}

func TestParseTeleportVersion(t *testing.T) {
	for in, want := range map[string]teleportVersion{
		"17.0.0": {17, 0, 0}, "v16.4.2": {16, 4, 2}, "17.0.0-dev": {17, 0, 0},
		"6.1.0+build.5": {6, 1, 0}, " 6.10.1 ": {6, 10, 1},
	} {
		got, err := parseTeleportVersion(in)
		if err != nil || got != want {
			t.Errorf("parseTeleportVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "17", "17.0", "17.0.0.1", "a.b.c", "17.-1.0", "17..0", "17.+1.0"} {
		if _, err := parseTeleportVersion(in); err == nil {
			t.Errorf("parseTeleportVersion(%q) accepted", in)
		}
	}
	for v, ok := range map[string]bool{"6.1.0": true, "6.0.9": false, "5.9.9": false, "7.0.0": true, "6.2.0": true, "bogus": false} {
		if err := checkTeleportVersion(v); (err == nil) != ok {
			t.Errorf("checkTeleportVersion(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

func TestTeleportIdentityErrors(t *testing.T) {
	fa := newFakeAuth(t)
	dir := t.TempDir()
	expired := filepath.Join(dir, "expired")
	now := time.Now()
	fa.writeIdentityValid(t, expired, "plugin", now.Add(-2*time.Hour), now.Add(-time.Hour))
	malformed := filepath.Join(dir, "malformed")
	if err := os.WriteFile(malformed, []byte("this is not an identity\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fragment := filepath.Join(dir, "fragment")
	if err := os.WriteFile(fragment, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"missing", missing, []string{missing, "no such file"}},
		{"malformed", malformed, []string{malformed, "not a Teleport identity file"}},
		{"fragment", fragment, []string{fragment, "not a Teleport identity file", "fragment"}},
		{"expired", expired, []string{expired, "expired at", "tctl auth sign"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clt, _, err := connectTeleport(context.Background(), teleportConfig{Addr: fa.addr(), Identity: tc.path})
			if err == nil {
				clt.Close()
				t.Fatal("connected")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
	if rpcs := fa.rpcs(); len(rpcs) != 0 {
		t.Errorf("bad identities reached the server: %q", rpcs)
	}
}

func TestTeleportIdentityExpiry(t *testing.T) {
	fa := newFakeAuth(t)
	path := filepath.Join(t.TempDir(), "identity")
	notAfter := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	fa.writeIdentityValid(t, path, "plugin", time.Now().Add(-time.Minute), notAfter)
	got, err := identityExpiry(path)
	if err != nil || !got.Equal(notAfter) {
		t.Errorf("identityExpiry = %v, %v; want %v", got, err, notAfter)
	}
}

func TestTeleportIdentityRotation(t *testing.T) {
	fa := newFakeAuth(t)
	path := filepath.Join(t.TempDir(), "identity")
	cfg := teleportConfig{Addr: fa.addr(), Identity: path}
	for _, user := range []string{"plugin-a", "plugin-b"} {
		fa.writeIdentity(t, path, user)
		clt, _, err := connectTeleport(context.Background(), cfg)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		clt.Close()
	}
	if users := fa.clientUsers(); !slices.Equal(users, []string{"plugin-a", "plugin-b"}) {
		t.Errorf("clientUsers = %q, want the rotated user second", users)
	}
}

func TestTeleportWatchEvents(t *testing.T) {
	fa := newFakeAuth(t)
	clt, _ := connectFake(t, fa, "plugin")
	w := watchRequests(t, clt)
	if ev := nextEvent(t, w); ev.Type != types.OpInit {
		t.Fatalf("first event = %v, want OpInit", ev.Type)
	}
	if n := fa.watchers(); n != 1 {
		t.Fatalf("watchers = %d after OpInit", n)
	}

	req := fa.createRequest("alice@example.com", []string{"dbadmin"}, "prod incident", "bob@example.com")
	ev := nextEvent(t, w)
	got, ok := ev.Resource.(types.AccessRequest)
	if ev.Type != types.OpPut || !ok {
		t.Fatalf("event = %v %T, want OpPut of an access request", ev.Type, ev.Resource)
	}
	if got.GetName() != req.GetName() || got.GetUser() != "alice@example.com" || !got.GetState().IsPending() ||
		got.GetRequestReason() != "prod incident" || !slices.Equal(got.GetRoles(), []string{"dbadmin"}) ||
		!slices.Equal(got.GetSuggestedReviewers(), []string{"bob@example.com"}) {
		t.Errorf("put request = %v", got)
	}
	if len(req.GetName()) != 36 || strings.Count(req.GetName(), "-") != 4 {
		t.Errorf("request id %q is not a UUID", req.GetName())
	}

	fa.addReview(req.GetName(), "bob@example.com", true, "ok")
	ev = nextEvent(t, w)
	got = ev.Resource.(types.AccessRequest)
	reviews := got.GetReviews()
	if ev.Type != types.OpPut || !got.GetState().IsPending() || len(reviews) != 1 ||
		reviews[0].Author != "bob@example.com" || reviews[0].ProposedState != types.RequestState_APPROVED || reviews[0].Reason != "ok" {
		t.Errorf("review event = %v %v %+v", ev.Type, got.GetState(), reviews)
	}

	fa.resolve(req.GetName(), types.RequestState_APPROVED, "approved by bob")
	ev = nextEvent(t, w)
	got = ev.Resource.(types.AccessRequest)
	if ev.Type != types.OpPut || !got.GetState().IsApproved() || got.GetResolveReason() != "approved by bob" {
		t.Errorf("resolve event = %v %v %q", ev.Type, got.GetState(), got.GetResolveReason())
	}

	fa.deleteRequest(req.GetName())
	ev = nextEvent(t, w)
	if ev.Type != types.OpDelete || ev.Resource.GetKind() != types.KindAccessRequest || ev.Resource.GetName() != req.GetName() {
		t.Errorf("delete event = %v %s/%s", ev.Type, ev.Resource.GetKind(), ev.Resource.GetName())
	}
	if fa.request(req.GetName()) != nil {
		t.Error("request still stored after deleteRequest")
	}
}

func TestTeleportWatchersEachGetAllEvents(t *testing.T) {
	fa := newFakeAuth(t)
	clt, _ := connectFake(t, fa, "plugin")
	w1, w2 := watchRequests(t, clt), watchRequests(t, clt)
	for _, w := range []types.Watcher{w1, w2} {
		if ev := nextEvent(t, w); ev.Type != types.OpInit {
			t.Fatalf("first event = %v", ev.Type)
		}
	}
	a := fa.createRequest("alice", []string{"r"}, "")
	b := fa.createRequest("bob", []string{"r"}, "")
	for _, w := range []types.Watcher{w1, w2} {
		for _, want := range []string{a.GetName(), b.GetName()} {
			if ev := nextEvent(t, w); ev.Resource.GetName() != want {
				t.Errorf("event for %s, want %s", ev.Resource.GetName(), want)
			}
		}
	}
	w1.Close()
	fa.waitWatchers(t, 1)
}

func TestTeleportDropWatchers(t *testing.T) {
	fa := newFakeAuth(t)
	clt, _ := connectFake(t, fa, "plugin")
	w := watchRequests(t, clt)
	nextEvent(t, w) // OpInit
	fa.dropWatchers()
	if n := fa.watchers(); n != 0 {
		t.Errorf("watchers = %d after dropWatchers", n)
	}
	timeout := time.NewTimer(eventWait)
	defer timeout.Stop()
	select {
	case <-w.Done():
	case <-timeout.C:
		t.Fatal("watcher not done after dropWatchers")
	}
	if err := w.Error(); !trace.IsConnectionProblem(err) {
		t.Errorf("watcher error = %v (%T), want a connection problem", err, err)
	}

	// A new watcher on the same client works: the connection is fine.
	w2 := watchRequests(t, clt)
	if ev := nextEvent(t, w2); ev.Type != types.OpInit {
		t.Errorf("event after re-watch = %v", ev.Type)
	}
	fa.waitWatchers(t, 1)
}

func TestTeleportWatchOtherKindRefused(t *testing.T) {
	fa := newFakeAuth(t)
	clt, _ := connectFake(t, fa, "plugin")
	w, err := clt.NewWatcher(context.Background(), types.Watch{Kinds: []types.WatchKind{{Kind: types.KindNode}}})
	if err != nil {
		t.Fatalf("NewWatcher: %v", err) // the error arrives on the stream
	}
	defer w.Close()
	timeout := time.NewTimer(eventWait)
	defer timeout.Stop()
	select {
	case ev := <-w.Events():
		t.Fatalf("got event %v for a refused watch", ev.Type)
	case <-w.Done():
	case <-timeout.C:
		t.Fatal("refused watch not done")
	}
	if !trace.IsBadParameter(w.Error()) {
		t.Errorf("error = %v, want bad parameter", w.Error())
	}
}

func TestTeleportGetAccessRequests(t *testing.T) {
	fa := newFakeAuth(t)
	clt, _ := connectFake(t, fa, "plugin")
	ctx := context.Background()
	a := fa.createRequest("alice", []string{"r"}, "")
	b := fa.createRequest("bob", []string{"r"}, "")
	c := fa.createRequest("alice", []string{"r"}, "")
	fa.resolve(b.GetName(), types.RequestState_DENIED, "no")

	names := func(reqs []types.AccessRequest) []string {
		var out []string
		for _, r := range reqs {
			out = append(out, r.GetName())
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		filter types.AccessRequestFilter
		want   []string
	}{
		{"pending", types.AccessRequestFilter{State: types.RequestState_PENDING}, []string{a.GetName(), c.GetName()}},
		{"denied", types.AccessRequestFilter{State: types.RequestState_DENIED}, []string{b.GetName()}},
		{"id", types.AccessRequestFilter{ID: c.GetName()}, []string{c.GetName()}},
		{"user", types.AccessRequestFilter{User: "bob"}, []string{b.GetName()}},
		{"all", types.AccessRequestFilter{}, []string{a.GetName(), b.GetName(), c.GetName()}},
	} {
		got, err := clt.GetAccessRequests(ctx, tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(names(got), tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, names(got), tc.want)
		}
	}

	// Pagination: one per page, every request once, in order.
	var paged []string
	req := &proto.ListAccessRequestsRequest{Limit: 1}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		resp, err := clt.ListAccessRequests(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.AccessRequests {
			paged = append(paged, r.GetName())
		}
		if resp.NextKey == "" {
			break
		}
		req.StartKey = resp.NextKey
	}
	if want := []string{a.GetName(), b.GetName(), c.GetName()}; !slices.Equal(paged, want) {
		t.Errorf("paged = %q, want %q", paged, want)
	}

	// An Auth Service without ListAccessRequests: the client falls back.
	fa.failNextCode("ListAccessRequests", 1, codes.Unimplemented)
	got, err := clt.GetAccessRequests(ctx, types.AccessRequestFilter{State: types.RequestState_PENDING})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a.GetName(), c.GetName()}; !slices.Equal(names(got), want) {
		t.Errorf("fallback: got %q, want %q", names(got), want)
	}
	if rpcs := fa.rpcs(); rpcs[len(rpcs)-1] != "GetAccessRequestsV2" {
		t.Errorf("last rpc = %q, want the GetAccessRequestsV2 fallback", rpcs[len(rpcs)-1])
	}
}

func TestTeleportPluginDataCAS(t *testing.T) {
	fa := newFakeAuth(t)
	clt, _ := connectFake(t, fa, "plugin")
	ctx := context.Background()
	req := fa.createRequest("alice", []string{"r"}, "")
	id := req.GetName()
	update := func(set, expect map[string]string) error {
		return clt.UpdatePluginData(ctx, types.PluginDataUpdateParams{
			Kind: types.KindAccessRequest, Resource: id, Plugin: "mattermost", Set: set, Expect: expect,
		})
	}
	get := func() map[string]string {
		t.Helper()
		data, err := clt.GetPluginData(ctx, types.PluginDataFilter{Kind: types.KindAccessRequest, Resource: id, Plugin: "mattermost"})
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			return nil
		}
		if len(data) > 1 {
			t.Fatalf("%d plugin data entries for one request", len(data))
		}
		return data[0].Entries()["mattermost"].Data
	}

	if got := get(); got != nil {
		t.Fatalf("fresh request has plugin data %v", got)
	}
	// Absent-expected: "" means the key must not exist.
	if err := update(map[string]string{"posts": "c1/p1", "state": "PENDING"}, map[string]string{"posts": ""}); err != nil {
		t.Fatalf("first write: %v", err)
	}
	if got := get(); got["posts"] != "c1/p1" || got["state"] != "PENDING" {
		t.Errorf("after first write: %v", got)
	}
	if err := update(map[string]string{"posts": "c2/p2"}, map[string]string{"posts": ""}); !trace.IsCompareFailed(err) {
		t.Errorf("second create-if-absent: err = %v, want compare failed", err)
	}
	if err := update(map[string]string{"state": "APPROVED"}, map[string]string{"posts": "c9/p9"}); !trace.IsCompareFailed(err) {
		t.Errorf("mismatch: err = %v, want compare failed", err)
	}
	if got := fa.pluginData(id); got["posts"] != "c1/p1" || got["state"] != "PENDING" {
		t.Errorf("failed updates changed data: %v", got)
	}
	if err := update(map[string]string{"state": "APPROVED", "reviews": "1"}, map[string]string{"posts": "c1/p1", "state": "PENDING"}); err != nil {
		t.Fatalf("matching update: %v", err)
	}
	// Empty Set value deletes the key.
	if err := update(map[string]string{"reviews": ""}, map[string]string{"reviews": "1"}); err != nil {
		t.Fatalf("delete key: %v", err)
	}
	if got := fa.pluginData(id); len(got) != 2 || got["state"] != "APPROVED" {
		t.Errorf("after delete: %v", got)
	}
	// Other plugins' data is invisible through a plugin filter.
	if err := clt.UpdatePluginData(ctx, types.PluginDataUpdateParams{
		Kind: types.KindAccessRequest, Resource: id, Plugin: "slack", Set: map[string]string{"x": "y"},
	}); err != nil {
		t.Fatal(err)
	}
	if got := get(); got["x"] != "" || len(got) != 2 {
		t.Errorf("mattermost data = %v", got)
	}

	// Unknown request: NotFound on update, empty on get.
	if err := clt.UpdatePluginData(ctx, types.PluginDataUpdateParams{
		Kind: types.KindAccessRequest, Resource: newFakeRequestID(), Plugin: "mattermost", Set: map[string]string{"a": "b"},
	}); !trace.IsNotFound(err) {
		t.Errorf("update of unknown request: %v, want not found", err)
	}
	// Plugin data goes with its request.
	fa.deleteRequest(id)
	if got := get(); got != nil {
		t.Errorf("plugin data of deleted request = %v", got)
	}
	if got := fa.pluginData(id); got != nil {
		t.Errorf("fake kept plugin data of deleted request: %v", got)
	}
}

func TestTeleportFaultsAndRestart(t *testing.T) {
	fa := newFakeAuth(t)
	clt, _ := connectFake(t, fa, "plugin")
	ctx := context.Background()

	fa.failNext("Ping", 1)
	if _, err := clt.Ping(ctx); !trace.IsConnectionProblem(err) {
		t.Errorf("injected fault: err = %v, want connection problem", err)
	}
	if _, err := clt.Ping(ctx); err != nil {
		t.Errorf("after the fault: %v", err)
	}

	w := watchRequests(t, clt)
	nextEvent(t, w) // OpInit
	req := fa.createRequest("alice", []string{"r"}, "")
	nextEvent(t, w)
	fa.restart(t)
	timeout := time.NewTimer(eventWait)
	defer timeout.Stop()
	select {
	case <-w.Done():
	case <-timeout.C:
		t.Fatal("watcher survived an Auth Service restart")
	}
	fa.waitWatchers(t, 0)

	// State survives, and the same client reconnects on its own.
	w2 := watchRequests(t, clt)
	if ev := nextEvent(t, w2); ev.Type != types.OpInit {
		t.Fatalf("after restart: %v", ev.Type)
	}
	got, err := clt.GetAccessRequests(ctx, types.AccessRequestFilter{ID: req.GetName()})
	if err != nil || len(got) != 1 {
		t.Errorf("after restart: %d requests, %v", len(got), err)
	}
}

func TestFakeAuthWaitFor(t *testing.T) {
	fa := newFakeAuth(t)
	req := fa.createRequest("alice", []string{"r"}, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		fa.setPluginData(req.GetName(), map[string]string{"posts": "c/p"})
	}()
	fa.waitFor(t, "plugin data", func() bool { return fa.pluginData(req.GetName())["posts"] == "c/p" })
	<-done
}

func TestTeleportIdentitySeparateSSHCert(t *testing.T) {
	// Older identity files keep the SSH certificate in <path>-cert.pub.
	fa := newFakeAuth(t)
	path := filepath.Join(t.TempDir(), "identity")
	fa.writeIdentity(t, path, "plugin")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rest, sshCert []string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(line, "ecdsa-sha2-nistp256-cert-v01@openssh.com ") {
			sshCert = append(sshCert, line)
		} else {
			rest = append(rest, line)
		}
	}
	if len(sshCert) != 1 {
		t.Fatalf("identity has %d SSH certificates", len(sshCert))
	}
	if err := os.WriteFile(path, []byte(strings.Join(rest, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-cert.pub", []byte(sshCert[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	clt, _, err := connectTeleport(context.Background(), teleportConfig{Addr: fa.addr(), Identity: path})
	if err != nil {
		t.Fatalf("connectTeleport: %v", err)
	}
	clt.Close()
}
