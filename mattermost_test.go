package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logSink collects a logger's output and announces each line, so that a
// test can wait for "the client is now backing off" without sleeping.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func newLogSink() *logSink { return &logSink{lines: make(chan string, 1000)} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf.Write(p)
	s.mu.Unlock()
	select {
	case s.lines <- string(p):
	default:
	}
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitLine waits for the next line containing substr.
func (s *logSink) waitLine(t testing.TB, substr string) string {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l := <-s.lines:
			if strings.Contains(l, substr) {
				return l
			}
		case <-timeout.C:
			t.Fatalf("no log line with %q; log:\n%s", substr, s.String())
		}
	}
}

// newTestClient is a client of url whose backoff is milliseconds, logging
// at DEBUG into the returned sink.
func newTestClient(t testing.TB, url, token string) (*mattermost, *logSink) {
	t.Helper()
	sink := newLogSink()
	log := slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := newMattermost(mattermostConfig{URL: url, Token: token, Concurrency: 4}, log)
	if err != nil {
		t.Fatal(err)
	}
	m.backoffStart = time.Millisecond
	m.backoffCap = 4 * time.Millisecond
	t.Cleanup(m.http.CloseIdleConnections)
	return m, sink
}

// mmWorld is a fake seeded like mattermost/seed.sh seeds a real server.
type mmWorld struct {
	f                                      *fakeMattermost
	m                                      *mattermost
	log                                    *logSink
	team, town, access, private, outsiders string
	alice                                  string
}

func newMMWorld(t testing.TB) mmWorld {
	f := newFakeMattermost(t)
	w := mmWorld{f: f}
	w.team = f.addTeam("myteam", "My Team")
	w.town = f.addChannel("myteam", "town-square", "Town Square", true)
	w.access = f.addChannel("myteam", "access-requests", "Access Requests", true)
	w.private = f.addPrivateChannel("myteam", "private-reviews", "Private Reviews", true)
	w.outsiders = f.addChannel("myteam", "outsiders", "Outsiders", false)
	w.alice = f.addUser("alice@example.com", "alice")
	w.m, w.log = newTestClient(t, f.URL(), f.token)
	return w
}

var mmIDPattern = regexp.MustCompile(`^[a-z0-9]{26}$`)

// asAPIError returns the *apiError in err's chain, failing the test if none.
func asAPIError(t testing.TB, err error) *apiError {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) has no *apiError", err, err)
	}
	return ae
}

func wantErrText(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Fatalf("error\n got: %s\nwant: %s", err, want)
	}
}

// callsTo is the recorded calls of one method and path.
func callsTo(f *fakeMattermost, method, path string) []mmCall {
	var out []mmCall
	for _, c := range f.calls() {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// fakeRaw sends a request to the fake without our client.
func fakeRaw(t testing.TB, f *fakeMattermost, method, path, token string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(data, &m)
	return resp.StatusCode, resp.Header, m
}

func TestFakeMattermostErrorAnswers(t *testing.T) {
	w := newMMWorld(t)
	f := w.f
	if !mmIDPattern.MatchString(f.botID) || !mmIDPattern.MatchString(w.team) || !mmIDPattern.MatchString(w.alice) {
		t.Fatalf("ids not Mattermost-shaped: %q %q %q", f.botID, w.team, w.alice)
	}
	cases := []struct {
		name, method, path, token string
		status                    int
		id                        string
		noRequestID               bool
	}{
		{"no token", "GET", "/api/v4/users/me", "", 401, "api.context.session_expired.app_error", false},
		{"bad token", "GET", "/api/v4/users/me", "wrong", 401, "api.context.session_expired.app_error", false},
		{"unknown team", "GET", "/api/v4/teams/name/nope", f.token, 404, "app.team.get_by_name.missing.app_error", false},
		{"unknown channel", "GET", "/api/v4/teams/name/myteam/channels/name/nope", f.token, 404, "app.channel.get_by_name.missing.app_error", false},
		{"private, not member", "GET", "/api/v4/teams/name/myteam/channels/name/hidden", f.token, 404, "app.channel.get_by_name.missing.app_error", false},
		{"space in name", "GET", "/api/v4/teams/name/myteam/channels/name/Town%20Square", f.token, 404, "api.context.404.app_error", true},
		{"router before auth", "GET", "/api/v4/teams/name/myteam/channels/name/Town%20Square", "", 404, "api.context.404.app_error", true},
		{"unknown email", "GET", "/api/v4/users/email/bob@example.com", f.token, 404, "app.user.missing_account.const", false},
		{"unknown route", "GET", "/api/v4/nothing", f.token, 404, "api.context.404.app_error", true},
		{"malformed post id", "PUT", "/api/v4/posts/abc/patch", f.token, 400, "api.context.invalid_url_param.app_error", false},
		{"unknown post", "PUT", "/api/v4/posts/zzzzzzzzzzzzzzzzzzzzzzzzzz/patch", f.token, 403, "api.context.permissions.app_error", false},
	}
	f.addPrivateChannel("myteam", "hidden", "Hidden", false)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := ""
			if c.method == "PUT" {
				body = `{"message":"x"}`
			}
			status, h, m := fakeRaw(t, f, c.method, c.path, c.token, body)
			if status != c.status || m["id"] != c.id || m["status_code"] != float64(c.status) {
				t.Fatalf("got %d %v, want %d %s", status, m, c.status, c.id)
			}
			if _, ok := m["message"].(string); !ok {
				t.Errorf("no message in %v", m)
			}
			if _, ok := m["detailed_error"]; !ok {
				t.Errorf("no detailed_error in %v", m)
			}
			rid := h.Get("X-Request-Id")
			if !mmIDPattern.MatchString(rid) || !strings.HasPrefix(h.Get("X-Version-Id"), "11.4.0.") {
				t.Errorf("headers: X-Request-Id %q, X-Version-Id %q", rid, h.Get("X-Version-Id"))
			}
			wantRID := rid
			if c.noRequestID {
				wantRID = ""
			}
			if m["request_id"] != wantRID {
				t.Errorf("request_id %v, want %q", m["request_id"], wantRID)
			}
		})
	}
	// Every call is recorded with its status.
	calls := f.calls()
	if len(calls) != len(cases) {
		t.Fatalf("%d calls recorded, want %d", len(calls), len(cases))
	}
	for i, c := range cases {
		if calls[i].Method != c.method || calls[i].Path != c.path || calls[i].Status != c.status {
			t.Errorf("call %d: %+v, want %s %s %d", i, calls[i], c.method, c.path, c.status)
		}
	}
}

func TestFakeMattermostPosts(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	props := map[string]any{"attachments": []any{map[string]any{"color": "#ffcc00", "text": "t"}}}
	before := time.Now().UnixMilli()
	root, err := w.m.createPost(ctx, mmPost{ChannelID: w.access, Message: "hello", Props: props})
	if err != nil {
		t.Fatal(err)
	}
	if !mmIDPattern.MatchString(root.ID) || root.CreateAt < before || root.UpdateAt != root.CreateAt || root.EditAt != 0 {
		t.Fatalf("created post %+v", root)
	}
	if root.Props["from_bot"] != "true" || root.Props["attachments"] == nil || root.Message != "hello" {
		t.Fatalf("created post props/message %+v", root)
	}
	if c := callsTo(w.f, "POST", "/api/v4/posts"); len(c) != 1 || c[0].Status != 201 {
		t.Fatalf("calls %+v", c)
	}

	// Thread replies grow the root's reply_count; an unknown root is a 400.
	for i := 1; i <= 2; i++ {
		reply, err := w.m.createPost(ctx, mmPost{ChannelID: w.access, RootID: root.ID, Message: fmt.Sprint("reply ", i)})
		if err != nil {
			t.Fatal(err)
		}
		if reply.RootID != root.ID || w.f.replyCount(root.ID) != int64(i) {
			t.Fatalf("reply %d: %+v, root reply_count %d", i, reply, w.f.replyCount(root.ID))
		}
	}
	_, err = w.m.createPost(ctx, mmPost{ChannelID: w.access, RootID: "nosuchpost", Message: "x"})
	if ae := asAPIError(t, err); ae.Status != 400 || ae.ID != "api.post.create_post.root_id.app_error" {
		t.Fatalf("unknown root: %v", err)
	}

	// A patch with only a message keeps the props and marks the edit.
	edited, err := w.m.patchPost(ctx, root.ID, "edited", nil)
	if err != nil {
		t.Fatal(err)
	}
	if edited.Message != "edited" || edited.Props["attachments"] == nil || edited.EditAt == 0 || edited.UpdateAt <= root.UpdateAt {
		t.Fatalf("patched message only: %+v (was %+v)", edited, root)
	}
	// A patch with props replaces them.
	again, err := w.m.patchPost(ctx, root.ID, "again", map[string]any{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Props["k"] != "v" || again.Props["attachments"] != nil || again.UpdateAt <= edited.UpdateAt {
		t.Fatalf("patched props: %+v", again)
	}
	posts := w.f.postsIn(w.access)
	if len(posts) != 3 || posts[0].ID != root.ID || posts[0].Message != "again" || posts[1].Message != "reply 1" {
		t.Fatalf("postsIn: %+v", posts)
	}
	if all := w.f.posts(); len(all) != 3 {
		t.Fatalf("posts: %+v", all)
	}

	// 16383 characters (counted as runes, not bytes) is the limit.
	if _, err := w.m.createPost(ctx, mmPost{ChannelID: w.town, Message: strings.Repeat("é", 16383)}); err != nil {
		t.Fatalf("16383 runes: %v", err)
	}
	_, err = w.m.createPost(ctx, mmPost{ChannelID: w.town, Message: strings.Repeat("é", 16384)})
	wantErrText(t, err, "mattermost: POST /api/v4/posts: 400 Bad Request: Post Message property is longer than the maximum permitted length. (model.post.is_valid.message_length.app_error, request_id="+asAPIError(t, err).RequestID+")")
	_, err = w.m.patchPost(ctx, root.ID, strings.Repeat("x", 16384), nil)
	if ae := asAPIError(t, err); ae.ID != "model.post.is_valid.message_length.app_error" {
		t.Fatalf("long patch: %v", err)
	}

	// Not a member: 403, and nothing is posted.
	_, err = w.m.createPost(ctx, mmPost{ChannelID: w.outsiders, Message: "x"})
	wantErrText(t, err, "mattermost: POST /api/v4/posts: 403 Forbidden: You do not have the appropriate permissions. (api.context.permissions.app_error, request_id="+asAPIError(t, err).RequestID+")")
	if !isForbidden(err) || isNotFound(err) || isUnauthorized(err) {
		t.Fatalf("status helpers on %v", err)
	}
	if len(w.f.postsIn(w.outsiders)) != 0 || len(w.f.posts()) != 4 {
		t.Fatalf("posts after failures: %+v", w.f.posts())
	}
}

func TestFakeMattermostDirectChannel(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	c, err := w.m.directChannel(ctx, w.f.botID, w.alice)
	if err != nil {
		t.Fatal(err)
	}
	a, b := w.f.botID, w.alice
	if b < a {
		a, b = b, a
	}
	if c.Type != "D" || c.Name != a+"__"+b || !mmIDPattern.MatchString(c.ID) {
		t.Fatalf("direct channel %+v", c)
	}
	again, err := w.m.directChannel(ctx, w.alice, w.f.botID)
	if err != nil || again.ID != c.ID {
		t.Fatalf("repeat: %+v, %v; want id %s", again, err, c.ID)
	}
	for _, call := range callsTo(w.f, "POST", "/api/v4/channels/direct") {
		if call.Status != 201 {
			t.Fatalf("direct channel answered %d, want 201", call.Status)
		}
	}
	// The bot is a member of its direct channels.
	if _, err := w.m.createPost(ctx, mmPost{ChannelID: c.ID, Message: "dm"}); err != nil {
		t.Fatal(err)
	}
	bob := w.f.addUser("bob@example.com", "bob")
	_, err = w.m.directChannel(ctx, w.alice, bob)
	if !isForbidden(err) {
		t.Fatalf("direct channel between others: %v", err)
	}
	_, err = w.m.directChannel(ctx, w.f.botID, "zzzzzzzzzzzzzzzzzzzzzzzzzz")
	if ae := asAPIError(t, err); ae.Status != 400 || ae.ID != "api.channel.create_direct_channel.invalid_user.app_error" {
		t.Fatalf("unknown user: %v", err)
	}
	_, err = w.m.directChannel(ctx, w.f.botID, "nosuchuser")
	if ae := asAPIError(t, err); ae.Status != 400 || ae.ID != "api.context.invalid_body_param.app_error" {
		t.Fatalf("malformed user id: %v", err)
	}
}

func TestFakeMattermostSearchChannels(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	w.f.addChannel("myteam", "q3", "Quarterly Review", true)
	w.f.addPrivateChannel("myteam", "secret-review", "Secret Review", false)
	names := func(term string) string {
		t.Helper()
		cs, err := w.m.searchChannels(ctx, w.team, term)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, c := range cs {
			n = append(n, c.Name)
		}
		return strings.Join(n, ",")
	}
	for term, want := range map[string]string{
		"town":        "town-square",
		"Town Square": "town-square",
		"REQUEST":     "access-requests",
		"quarterly":   "q3", // display name only
		"review":      "q3", // public channels only, as on a real server
		"zzz":         "",
	} {
		if got := names(term); got != want {
			t.Errorf("search %q: %q, want %q", term, got, want)
		}
	}
	_, err := w.m.searchChannels(ctx, "zzzzzzzzzzzzzzzzzzzzzzzzzz", "x")
	if !isNotFound(err) {
		t.Fatalf("unknown team id: %v", err)
	}
	_, err = w.m.searchChannels(ctx, "nosuchteam", "x")
	if ae := asAPIError(t, err); ae.Status != 400 || ae.ID != "api.context.invalid_url_param.app_error" {
		t.Fatalf("malformed team id: %v", err)
	}
}

func TestFakeMattermostFault(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	w.m.maxAttempts = 1
	w.f.setFault(func(r *http.Request) (int, http.Header) {
		if r.URL.Path == "/api/v4/posts" {
			return 500, nil
		}
		return 0, nil
	})
	_, err := w.m.createPost(ctx, mmPost{ChannelID: w.access, Message: "x"})
	if ae := asAPIError(t, err); ae.Status != 500 || ae.ID != "fake.injected_fault.app_error" {
		t.Fatalf("fault: %v", err)
	}
	if len(w.f.posts()) != 0 {
		t.Fatal("a fault answer created a post")
	}
	if _, err := w.m.me(ctx); err != nil {
		t.Fatalf("fault on other paths: %v", err)
	}
	// 429 comes in plain text with the given headers, like Mattermost's limiter.
	w.f.setFault(func(r *http.Request) (int, http.Header) {
		return 429, http.Header{"X-Ratelimit-Reset": {"0.001"}, "X-Ratelimit-Limit": {"10"}}
	})
	_, err = w.m.me(ctx)
	wantErrText(t, err, "mattermost: GET /api/v4/users/me: 429 Too Many Requests: limit exceeded")
	// The fault sees the body.
	var seen atomic.Value
	w.f.setFault(func(r *http.Request) (int, http.Header) {
		b, _ := io.ReadAll(r.Body)
		seen.Store(string(b))
		return 0, nil
	})
	if _, err := w.m.createPost(ctx, mmPost{ChannelID: w.access, Message: "after"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := seen.Load().(string); !strings.Contains(s, `"message":"after"`) {
		t.Fatalf("fault saw body %q", s)
	}
	w.f.setFault(nil)
	if p := w.f.posts(); len(p) != 1 || p[0].Message != "after" {
		t.Fatalf("posts %+v", p)
	}
	calls := callsTo(w.f, "POST", "/api/v4/posts")
	if len(calls) != 2 || calls[0].Status != 500 || !bytes.Contains(calls[0].Body, []byte(`"message":"x"`)) {
		t.Fatalf("recorded calls %+v", calls)
	}
}

func TestFakeMattermostWaitFor(t *testing.T) {
	w := newMMWorld(t)
	go func() {
		for i := 0; i < 3; i++ {
			w.m.createPost(context.Background(), mmPost{ChannelID: w.access, Message: "x"})
		}
	}()
	w.f.waitFor(t, "three posts", func() bool { return len(w.f.posts()) == 3 })
}

// TestFakeMattermostManyPosts is the daemon's load: 1000 requests to 3
// recipients, by 8 workers.
func TestFakeMattermostManyPosts(t *testing.T) {
	w := newMMWorld(t)
	dm, err := w.m.resolveRecipient(context.Background(), recipient{Email: "alice@example.com"}, w.f.botID)
	if err != nil {
		t.Fatal(err)
	}
	channels := []string{w.access, w.town, dm}
	const requests = 1000
	work := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				for _, c := range channels {
					if _, err := w.m.createPost(context.Background(), mmPost{ChannelID: c, Message: "req"}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for i := range requests {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(w.f.posts()); n != 3*requests {
		t.Fatalf("%d posts", n)
	}
	for _, c := range channels {
		if n := len(w.f.postsIn(c)); n != requests {
			t.Fatalf("%d posts in %s", n, c)
		}
	}
}

func BenchmarkFakeMattermostCreatePost(b *testing.B) {
	w := newMMWorld(b)
	channels := []string{w.access, w.town, w.private}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := w.m.createPost(context.Background(), mmPost{ChannelID: channels[i%3], Message: "req"}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func TestMattermostCalls(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	me, err := w.m.me(ctx)
	if err != nil || me.ID != w.f.botID || me.Username != "teleport" {
		t.Fatalf("me: %+v, %v", me, err)
	}
	team, err := w.m.teamByName(ctx, "myteam")
	if err != nil || team.ID != w.team || team.DisplayName != "My Team" {
		t.Fatalf("teamByName: %+v, %v", team, err)
	}
	c, err := w.m.channelByName(ctx, "myteam", "access-requests")
	if err != nil || c.ID != w.access || c.TeamID != w.team || c.Type != "O" || c.DisplayName != "Access Requests" {
		t.Fatalf("channelByName: %+v, %v", c, err)
	}
	u, err := w.m.userByEmail(ctx, "alice@example.com")
	if err != nil || u.ID != w.alice || u.Username != "alice" {
		t.Fatalf("userByEmail: %+v, %v", u, err)
	}
	cs, err := w.m.searchChannels(ctx, w.team, "Town Square")
	if err != nil || len(cs) != 1 || cs[0].ID != w.town {
		t.Fatalf("searchChannels: %+v, %v", cs, err)
	}
	if _, err := w.m.directChannel(ctx, w.f.botID, w.alice); err != nil {
		t.Fatal(err)
	}
	// Path segments are escaped: a space reaches the router as %20.
	_, err = w.m.channelByName(ctx, "myteam", "Town Square")
	wantErrText(t, err, "mattermost: GET /api/v4/teams/name/myteam/channels/name/Town%20Square: 404 Not Found: Sorry, we could not find the page. (api.context.404.app_error)")
	_, err = w.m.teamByName(ctx, "a/b")
	if !isNotFound(err) || len(callsTo(w.f, "GET", "/api/v4/teams/name/a%2Fb")) != 1 {
		t.Fatalf("escaped team name: %v; calls %+v", err, w.f.calls())
	}
	// Each error, with its exact text.
	_, err = w.m.teamByName(ctx, "nope")
	wantErrText(t, err, "mattermost: GET /api/v4/teams/name/nope: 404 Not Found: Unable to find the existing team. (app.team.get_by_name.missing.app_error, request_id="+asAPIError(t, err).RequestID+")")
	_, err = w.m.channelByName(ctx, "myteam", "nope")
	wantErrText(t, err, "mattermost: GET /api/v4/teams/name/myteam/channels/name/nope: 404 Not Found: Channel does not exist. (app.channel.get_by_name.missing.app_error, request_id="+asAPIError(t, err).RequestID+")")
	_, err = w.m.userByEmail(ctx, "bob@example.com")
	wantErrText(t, err, "mattermost: GET /api/v4/users/email/bob@example.com: 404 Not Found: Unable to find the user. (app.user.missing_account.const, request_id="+asAPIError(t, err).RequestID+")")
	if rid := asAPIError(t, err).RequestID; !mmIDPattern.MatchString(rid) {
		t.Fatalf("request id %q", rid)
	}

	bad, _ := newTestClient(t, w.f.URL(), "wrong-token")
	_, err = bad.me(ctx)
	wantErrText(t, err, "mattermost: GET /api/v4/users/me: 401 Unauthorized: Invalid or expired session, please login again. (api.context.session_expired.app_error, request_id="+asAPIError(t, err).RequestID+")")
	if !isUnauthorized(err) || isForbidden(err) || isNotFound(err) {
		t.Fatalf("status helpers on %v", err)
	}
	if isNotFound(nil) || isNotFound(errors.New("404")) {
		t.Fatal("isNotFound without an *apiError")
	}
}

func TestMattermostRequestShape(t *testing.T) {
	type seen struct {
		method, path, auth, agent, ctype, body string
	}
	got := make(chan seen, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("User-Agent"), r.Header.Get("Content-Type"), string(b)}
		io.WriteString(w, `{"id":"p1","message":"m"}`)
	}))
	defer srv.Close()
	m, _ := newTestClient(t, srv.URL+"/mm/", "tok")
	ctx := context.Background()

	if _, err := m.patchPost(ctx, "p1", "m", nil); err != nil {
		t.Fatal(err)
	}
	s := <-got
	want := seen{"PUT", "/mm/api/v4/posts/p1/patch", "Bearer tok", "teleport-mattermost", "application/json", `{"message":"m"}`}
	if s != want {
		t.Fatalf("patch without props:\n got %+v\nwant %+v", s, want)
	}
	if _, err := m.patchPost(ctx, "p1", "m", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.body != `{"message":"m","props":{}}` {
		t.Fatalf("patch with empty props sent %s", s.body)
	}
	if _, err := m.directChannel(ctx, "bot", "user"); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.method != "POST" || s.path != "/mm/api/v4/channels/direct" || s.body != `["bot","user"]` {
		t.Fatalf("direct: %+v", s)
	}
	if _, err := m.searchChannels(ctx, "t1", "Town Square"); err == nil {
		t.Fatal("decoding an object as a channel list succeeded")
	} else if !strings.HasPrefix(err.Error(), "mattermost: POST /api/v4/teams/t1/channels/search: decode answer: ") {
		t.Fatalf("decode error: %v", err)
	}
	if s := <-got; s.body != `{"term":"Town Square"}` {
		t.Fatalf("search body %s", s.body)
	}
	if _, err := m.me(ctx); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.method != "GET" || s.ctype != "" || s.body != "" {
		t.Fatalf("GET with a body: %+v", s)
	}
}

func TestMattermostNonJSONError(t *testing.T) {
	page := "<html>\r\n<head><title>403 Forbidden</title></head>\n<body>\t\x01" + strings.Repeat("x", 300) + "</body></html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(403)
		io.WriteString(w, page)
	}))
	defer srv.Close()
	m, _ := newTestClient(t, srv.URL, "tok")
	_, err := m.me(context.Background())
	collapsed := strings.Join(strings.Fields(strings.ReplaceAll(page, "\x01", " ")), " ")
	wantErrText(t, err, "mattermost: GET /api/v4/users/me: 403 Forbidden: "+collapsed[:200]+"...")
	if !isForbidden(err) {
		t.Fatalf("isForbidden(%v)", err)
	}
}

func TestRetryOn500ThenOK(t *testing.T) {
	w := newMMWorld(t)
	var n atomic.Int32
	w.f.setFault(func(r *http.Request) (int, http.Header) {
		if r.URL.Path == "/api/v4/posts" && n.Add(1) <= 2 {
			return 500, nil
		}
		return 0, nil
	})
	p, err := w.m.createPost(context.Background(), mmPost{ChannelID: w.access, Message: "once"})
	if err != nil {
		t.Fatal(err)
	}
	if posts := w.f.posts(); len(posts) != 1 || posts[0].ID != p.ID {
		t.Fatalf("delivered %d times: %+v", len(posts), posts)
	}
	var statuses []int
	for _, c := range callsTo(w.f, "POST", "/api/v4/posts") {
		statuses = append(statuses, c.Status)
	}
	if fmt.Sprint(statuses) != "[500 500 201]" {
		t.Fatalf("statuses %v", statuses)
	}
	logs := w.log.String()
	for _, want := range []string{"level=WARN", "method=POST", "path=/api/v4/posts", "attempt=1", "attempt=2", "wait=", "500 Internal Server Error"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Count(logs, "level=WARN") != 2 {
		t.Errorf("want 2 WARN lines:\n%s", logs)
	}
}

func TestRetryGivesUp(t *testing.T) {
	w := newMMWorld(t)
	w.f.setFault(func(r *http.Request) (int, http.Header) { return 503, nil })
	_, err := w.m.me(context.Background())
	wantErrText(t, err, "mattermost: GET /api/v4/users/me: 503 Service Unavailable: Service Unavailable (fake.injected_fault.app_error, request_id="+asAPIError(t, err).RequestID+") (gave up after 5 attempts)")
	if n := len(w.f.calls()); n != 5 {
		t.Fatalf("%d attempts, want 5", n)
	}
}

func TestRetryNotOn4xx(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	_, err := w.m.createPost(ctx, mmPost{ChannelID: w.town, Message: strings.Repeat("x", 20000)}) // 400
	if asAPIError(t, err).Status != 400 {
		t.Fatal(err)
	}
	_, err = w.m.createPost(ctx, mmPost{ChannelID: w.outsiders, Message: "x"}) // 403
	if !isForbidden(err) {
		t.Fatal(err)
	}
	_, err = w.m.teamByName(ctx, "nope") // 404
	if !isNotFound(err) {
		t.Fatal(err)
	}
	w.f.setFault(func(r *http.Request) (int, http.Header) { return 409, nil })
	_, err = w.m.me(ctx)
	if asAPIError(t, err).Status != 409 {
		t.Fatal(err)
	}
	if n := len(w.f.calls()); n != 4 {
		t.Fatalf("%d calls for 4 client errors: %v", n, w.f.calls())
	}
	if strings.Contains(w.log.String(), "level=WARN") {
		t.Fatalf("retried a 4xx:\n%s", w.log.String())
	}
}

func TestRetryHonours429(t *testing.T) {
	for _, c := range []struct {
		name    string
		header  http.Header
		max     time.Duration
		atLeast time.Duration
	}{
		{"Retry-After", http.Header{"Retry-After": {"0.08"}}, time.Minute, 80 * time.Millisecond},
		{"X-Ratelimit-Reset", http.Header{"X-Ratelimit-Reset": {"0.06"}, "X-Ratelimit-Remaining": {"0"}}, time.Minute, 60 * time.Millisecond},
		{"capped", http.Header{"Retry-After": {"3600"}}, 50 * time.Millisecond, 50 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newMMWorld(t)
			w.m.rateLimitMax = c.max
			var once sync.Once
			w.f.setFault(func(r *http.Request) (status int, h http.Header) {
				once.Do(func() { status, h = 429, c.header })
				return status, h
			})
			if _, err := w.m.me(context.Background()); err != nil {
				t.Fatal(err)
			}
			calls := w.f.calls()
			if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
				t.Fatalf("calls %+v", calls)
			}
			if gap := calls[1].At.Sub(calls[0].At); gap < c.atLeast || gap > 5*time.Second {
				t.Fatalf("retried %s after the 429, want at least %s", gap, c.atLeast)
			}
			if l := w.log.String(); !strings.Contains(l, "wait="+c.atLeast.String()) || !strings.Contains(l, "429 Too Many Requests") {
				t.Fatalf("log:\n%s", l)
			}
		})
	}
}

func TestRetry429PausesAllCalls(t *testing.T) {
	w := newMMWorld(t)
	const pause = 200 * time.Millisecond
	var once sync.Once
	w.f.setFault(func(r *http.Request) (status int, h http.Header) {
		once.Do(func() { status, h = 429, http.Header{"X-Ratelimit-Reset": {"0.2"}} })
		return status, h
	})
	ctx := context.Background()
	errs := make(chan error, 4)
	go func() { _, err := w.m.me(ctx); errs <- err }()
	// The first call got its 429 and is backing off: others must wait too.
	w.log.waitLine(t, "retrying")
	for range 3 {
		go func() { _, err := w.m.teamByName(ctx, "myteam"); errs <- err }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	calls := w.f.calls()
	if len(calls) != 5 || calls[0].Status != 429 {
		t.Fatalf("calls %+v", calls)
	}
	for _, c := range calls[1:] {
		if gap := c.At.Sub(calls[0].At); gap < pause {
			t.Errorf("%s %s sent %s after the 429, inside the %s pause", c.Method, c.Path, gap, pause)
		}
	}

	// A caller whose context ends during the pause gives up without a call.
	w.f.setFault(func(r *http.Request) (int, http.Header) {
		return 429, http.Header{"Retry-After": {"30"}}
	})
	first, cancelFirst := context.WithCancel(ctx)
	defer cancelFirst()
	go func() { _, err := w.m.me(first); errs <- err }()
	w.log.waitLine(t, "retrying")
	n := len(w.f.calls())
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := w.m.teamByName(short, "myteam")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for the rate limit to reset") {
		t.Fatalf("call during the pause: %v", err)
	}
	if len(w.f.calls()) != n {
		t.Fatal("a call was sent during the pause")
	}
	cancelFirst()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first call: %v", err)
	}
}

func TestRetryStopsOnContextCancel(t *testing.T) {
	w := newMMWorld(t)
	w.m.backoffStart, w.m.backoffCap = time.Hour, time.Hour
	w.m.jitter = func(d time.Duration) time.Duration { return d }
	w.f.setFault(func(r *http.Request) (int, http.Header) { return 500, nil })
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() { _, err := w.m.createPost(ctx, mmPost{ChannelID: w.access, Message: "x"}); errs <- err }()
	if l := w.log.waitLine(t, "retrying"); !strings.Contains(l, "wait=1h0m0s") {
		t.Fatalf("log line %s", l)
	}
	cancel()
	err := <-errs
	if !errors.Is(err, context.Canceled) || asAPIError(t, err).Status != 500 {
		t.Fatalf("error %v", err)
	}
	if !strings.HasSuffix(err.Error(), "; stopped retrying: context canceled") {
		t.Fatalf("error %v", err)
	}
	if n := len(w.f.calls()); n != 1 {
		t.Fatalf("%d attempts after cancel", n)
	}
}

func TestRetryBackoffSchedule(t *testing.T) {
	m, _ := newTestClient(t, "http://127.0.0.1:1", "tok")
	m.backoffStart, m.backoffCap = mmBackoffStart, mmBackoffCap
	var got []time.Duration
	m.jitter = func(d time.Duration) time.Duration { got = append(got, d); return d / 2 }
	for attempt := 1; attempt <= 8; attempt++ {
		if b := m.backoff(attempt); b != got[len(got)-1]/2 {
			t.Fatalf("backoff(%d) = %s, not the jittered value", attempt, b)
		}
	}
	if fmt.Sprint(got) != "[250ms 500ms 1s 2s 4s 8s 10s 10s]" {
		t.Fatalf("backoff bounds %v", got)
	}
	if b := m.backoff(100); b != 5*time.Second {
		t.Fatalf("backoff(100) = %s", b)
	}
	// The default jitter is full: within [0, d).
	m2, _ := newTestClient(t, "http://127.0.0.1:1", "tok")
	for range 100 {
		if b := m2.jitter(time.Second); b < 0 || b >= time.Second {
			t.Fatalf("jitter %s", b)
		}
	}
}

func TestRetryConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	m, sink := newTestClient(t, url, "tok")
	_, err := m.me(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection refused") ||
		!strings.HasPrefix(err.Error(), "mattermost: GET /api/v4/users/me: ") ||
		!strings.HasSuffix(err.Error(), "(gave up after 5 attempts)") {
		t.Fatalf("error %v", err)
	}
	if n := strings.Count(sink.String(), "level=WARN"); n != 4 {
		t.Fatalf("%d retries logged, want 4:\n%s", n, sink.String())
	}
}

func TestRetryAttemptTimeout(t *testing.T) {
	w := newMMWorld(t)
	w.f.setDelay(time.Second)
	w.m.attemptTimeout = 30 * time.Millisecond
	w.m.maxAttempts = 2
	_, err := w.m.createPost(context.Background(), mmPost{ChannelID: w.access, Message: "x"})
	if err == nil || !strings.Contains(err.Error(), "mattermost: POST /api/v4/posts: no answer within 30ms") ||
		!strings.HasSuffix(err.Error(), "(gave up after 2 attempts)") {
		t.Fatalf("error %v", err)
	}
	w.f.waitFor(t, "two abandoned calls", func() bool { return len(w.f.calls()) == 2 })
	for _, c := range w.f.calls() {
		if c.Status != 0 {
			t.Fatalf("call %+v answered", c)
		}
	}
	if len(w.f.posts()) != 0 {
		t.Fatal("an abandoned call posted")
	}
}

func TestMattermostTokenNeverLeaks(t *testing.T) {
	const token = "s3cr3t-T0KEN-zz9"
	ctx := context.Background()
	me := func(m *mattermost) error { _, err := m.me(ctx); return err }
	// check runs call, which must fail, and checks its error and the log for
	// secret; wantWarn says whether the call was retried (so logged).
	check := func(name, secret string, m *mattermost, sink *logSink, wantWarn bool, call func(*mattermost) error) error {
		t.Helper()
		err := call(m)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error has the token: %v", name, err)
		}
		logs := sink.String()
		if strings.Contains(logs, secret) {
			t.Errorf("%s: log has the token:\n%s", name, logs)
		}
		if strings.Contains(logs, "level=WARN") != wantWarn {
			t.Errorf("%s: want WARN lines %v:\n%s", name, wantWarn, logs)
		}
		return err
	}

	// A proxy that echoes the request, token included, in an HTML error page.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		fmt.Fprintf(w, "<html>bad gateway for %s %s</html>", r.URL, r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	m, sink := newTestClient(t, echo.URL, token)
	if err := check("echo", token, m, sink, true, me); !strings.Contains(err.Error(), "Bearer [redacted]") {
		t.Fatalf("echo error %v", err)
	}

	// A redirect whose target carries the token: not followed, not printed.
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/api/v4/users/me?access_token="+token, http.StatusFound)
	}))
	defer redirect.Close()
	m, sink = newTestClient(t, redirect.URL, token)
	if err := check("redirect", token, m, sink, false, me); !strings.Contains(err.Error(), "302 Found") ||
		!strings.Contains(err.Error(), "redirected to https://elsewhere.example/") {
		t.Fatalf("redirect error %v", err)
	}

	// A transport error (*url.Error carries the URL), with the token in the
	// configured URL's path.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	m, sink = newTestClient(t, closed.URL+"/"+token, token)
	check("transport", token, m, sink, true, me)

	// The fake, with its token, failing calls and a failed resolution.
	w := newMMWorld(t)
	w.f.setFault(func(r *http.Request) (int, http.Header) {
		if r.Method == "POST" {
			return 500, nil
		}
		return 0, nil
	})
	check("fake 500", w.f.token, w.m, w.log, true, func(m *mattermost) error {
		_, err := m.createPost(ctx, mmPost{ChannelID: w.access})
		return err
	})
	check("fake resolve", w.f.token, w.m, w.log, true, func(m *mattermost) error {
		_, err := m.resolveRecipient(ctx, recipient{Team: "myteam", Channel: "nope"}, w.f.botID)
		return err
	})
	if !strings.Contains(w.log.String(), "level=DEBUG") {
		t.Fatal("DEBUG lines not captured: the check above proves little")
	}
}

func TestMattermostCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"botid","username":"teleport"}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)

	m, err := newMattermost(mattermostConfig{URL: srv.URL, Token: "tok", CAFile: caFile}, log)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := m.me(context.Background()); err != nil || u.ID != "botid" {
		t.Fatalf("with ca_file: %+v, %v", u, err)
	}

	m, sink := newTestClient(t, srv.URL, "tok")
	_, err = m.me(context.Background())
	if err == nil || !strings.Contains(err.Error(), "x509: certificate signed by unknown authority") ||
		!strings.Contains(err.Error(), "set ca_file") {
		t.Fatalf("without ca_file: %v", err)
	}
	if strings.Contains(sink.String(), "level=WARN") {
		t.Fatalf("retried an untrusted certificate:\n%s", sink.String())
	}

	missing := filepath.Join(dir, "missing.pem")
	_, err = newMattermost(mattermostConfig{URL: srv.URL, Token: "tok", CAFile: missing}, log)
	if err == nil || !strings.Contains(err.Error(), `mattermost ca_file "`+missing+`"`) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing ca_file: %v", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	_, err = newMattermost(mattermostConfig{URL: srv.URL, Token: "tok", CAFile: junk}, log)
	wantErrText(t, err, `mattermost ca_file "`+junk+`": no PEM certificate in it`)
}

func TestMattermostNewValidation(t *testing.T) {
	for _, c := range []struct{ url, token, want string }{
		{"ftp://host", "tok", "mattermost url: must be http(s)://host[:port][/path]"},
		{"https://", "tok", "mattermost url: must be http(s)://host[:port][/path]"},
		{"https://user:s3cret@host", "tok", "mattermost url: must not contain a user name or password; the bot token authenticates"},
		{"https://host", "", "mattermost: no token"},
	} {
		_, err := newMattermost(mattermostConfig{URL: c.url, Token: c.token}, nil)
		wantErrText(t, err, c.want)
	}
	_, err := newMattermost(mattermostConfig{URL: "https://s3cret@host%zz", Token: "tok"}, nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad url: %v", err)
	}
}

func TestResolveRecipient(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	w.f.addChannel("myteam", "ops-a", "Ops", true)
	w.f.addChannel("myteam", "ops-b", "Ops", true)
	w.f.addChannel("myteam", "alerts-1", "Alerts", true)
	w.f.addChannel("myteam", "alerts-2", "ALERTS", true)
	alerts := w.f.addChannel("myteam", "alerts-3", "alerts", true)
	if _, err := w.m.me(ctx); err != nil { // learns the bot's username for hints
		t.Fatal(err)
	}
	resolve := func(r recipient) (string, error) { return w.m.resolveRecipient(ctx, r, w.f.botID) }

	// The display-name fallback's calls: by name (the router's 404 for a
	// space), the team, a search.
	n := len(w.f.calls())
	if got, err := resolve(recipient{Team: "myteam", Channel: "Town Square"}); err != nil || got != w.town {
		t.Fatalf("Town Square: %q, %v", got, err)
	}
	var paths []string
	for _, c := range w.f.calls()[n:] {
		paths = append(paths, fmt.Sprint(c.Method, " ", c.Path, " ", c.Status))
	}
	if want := "[GET /api/v4/teams/name/myteam/channels/name/Town%20Square 404 GET /api/v4/teams/name/myteam 200 POST /api/v4/teams/" + w.team + "/channels/search 200]"; fmt.Sprint(paths) != want {
		t.Errorf("fallback calls\n got %v\nwant %s", paths, want)
	}

	for _, c := range []struct {
		r    recipient
		want string
	}{
		{recipient{Team: "myteam", Channel: "access-requests"}, w.access},
		{recipient{Team: "myteam", Channel: "private-reviews"}, w.private},
		{recipient{Team: "myteam", Channel: "Town Square"}, w.town}, // display name, via search
		{recipient{Team: "myteam", Channel: "town square"}, w.town}, // case-insensitive fallback
		{recipient{Team: "myteam", Channel: "Access Requests"}, w.access},
		{recipient{Team: "myteam", Channel: "alerts"}, alerts}, // exact beats case-insensitive
	} {
		got, err := resolve(c.r)
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.r, got, err, c.want)
		}
	}
	// Email: a direct channel, the same one each time.
	dm, err := resolve(recipient{Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := resolve(recipient{Email: "Alice@Example.com"}); err != nil || again != dm {
		t.Fatalf("again: %q, %v; want %q", again, err, dm)
	}
	if _, err := w.m.createPost(ctx, mmPost{ChannelID: dm, Message: "hi"}); err != nil {
		t.Fatalf("post to the direct channel: %v", err)
	}

	// Errors name the recipient, hint at the fix, and keep the *apiError.
	_, err = resolve(recipient{Team: "noteam", Channel: "general"})
	wantErrText(t, err, `recipient noteam/general: team "noteam" not found (check the team name in the URL: /TEAM/channels/...): mattermost: GET /api/v4/teams/name/noteam: 404 Not Found: Unable to find the existing team. (app.team.get_by_name.missing.app_error, request_id=`+asAPIError(t, err).RequestID+")")
	if !isNotFound(err) {
		t.Fatal("isNotFound lost")
	}
	_, err = resolve(recipient{Team: "myteam", Channel: "nope"})
	wantErrText(t, err, `recipient myteam/nope: channel "nope" not found in team "myteam"; if it is private, invite the bot: /invite @teleport: mattermost: GET /api/v4/teams/name/myteam/channels/name/nope: 404 Not Found: Channel does not exist. (app.channel.get_by_name.missing.app_error, request_id=`+asAPIError(t, err).RequestID+")")
	w.f.addPrivateChannel("myteam", "hidden", "Hidden", false)
	_, err = resolve(recipient{Team: "myteam", Channel: "hidden"})
	if !isNotFound(err) || !strings.Contains(err.Error(), "invite the bot: /invite @teleport") {
		t.Fatalf("private channel without the bot: %v", err)
	}
	_, err = resolve(recipient{Team: "myteam", Channel: "No Such Channel"})
	if !isNotFound(err) || !strings.HasPrefix(err.Error(), `recipient myteam/No Such Channel: channel "No Such Channel" not found in team "myteam"`) {
		t.Fatalf("unknown display name: %v", err)
	}
	_, err = resolve(recipient{Team: "myteam", Channel: "Ops"})
	wantErrText(t, err, `recipient myteam/Ops: display name "Ops" matches 2 channels in team "myteam" (ops-a, ops-b); write the channel's name instead`)
	_, err = resolve(recipient{Team: "myteam", Channel: "ALERTS"}) // exact: alerts-2 only
	if err != nil {
		t.Fatal(err)
	}
	_, err = resolve(recipient{Team: "myteam", Channel: "Alerts"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = resolve(recipient{Team: "myteam", Channel: "aLeRtS"}) // no exact: three case-insensitive
	if err == nil || !strings.Contains(err.Error(), "matches 3 channels") {
		t.Fatalf("case-insensitive ambiguity: %v", err)
	}
	_, err = resolve(recipient{Email: "bob@example.com"})
	wantErrText(t, err, `recipient bob@example.com: no Mattermost user with email "bob@example.com": mattermost: GET /api/v4/users/email/bob@example.com: 404 Not Found: Unable to find the user. (app.user.missing_account.const, request_id=`+asAPIError(t, err).RequestID+")")
	if !isNotFound(err) {
		t.Fatal("isNotFound lost")
	}

	// Other failures are passed on, named.
	bad, _ := newTestClient(t, w.f.URL(), "wrong")
	_, err = bad.resolveRecipient(ctx, recipient{Team: "myteam", Channel: "town-square"}, w.f.botID)
	if !isUnauthorized(err) || !strings.HasPrefix(err.Error(), "recipient myteam/town-square: mattermost: GET ") {
		t.Fatalf("bad token: %v", err)
	}
	_, err = bad.resolveRecipient(ctx, recipient{Email: "alice@example.com"}, w.f.botID)
	if !isUnauthorized(err) || !strings.HasPrefix(err.Error(), "recipient alice@example.com: mattermost: GET ") {
		t.Fatalf("bad token: %v", err)
	}
	_, err = w.m.resolveRecipient(ctx, recipient{Email: "alice@example.com"}, "notthebot")
	if asAPIError(t, err).Status != 400 {
		t.Fatalf("direct channel failure: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "recipient alice@example.com: direct channel with @alice: ") {
		t.Fatalf("direct channel failure: %v", err)
	}
}

func TestResolveRecipientHintBeforeMe(t *testing.T) {
	w := newMMWorld(t)
	_, err := w.m.resolveRecipient(context.Background(), recipient{Team: "myteam", Channel: "nope"}, w.f.botID)
	if err == nil || !strings.Contains(err.Error(), "/invite @<bot username>") {
		t.Fatalf("hint without the bot's name: %v", err)
	}
}

func TestResolvePrivateChannelByDisplayName(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	id, err := w.m.resolveRecipient(ctx, recipient{Team: "myteam", Channel: "Private Reviews"}, w.f.botID)
	if err != nil || id != w.private {
		t.Fatalf("resolve myteam/Private Reviews = %q, %v; want %q (search leaves private channels out; autocomplete has them)", id, err, w.private)
	}
	if n := len(callsTo(w.f, "GET", "/api/v4/teams/"+w.team+"/channels/autocomplete")); n != 1 {
		t.Errorf("%d autocomplete calls, want 1", n)
	}
}

func TestIsChannelMember(t *testing.T) {
	w := newMMWorld(t)
	ctx := context.Background()
	for ch, want := range map[string]bool{w.access: true, w.private: true, w.outsiders: false} {
		got, err := w.m.isChannelMember(ctx, ch, w.f.botID)
		if err != nil || got != want {
			t.Errorf("isChannelMember(%s) = %v, %v; want %v", ch, got, err, want)
		}
	}
}
