//go:build e2e

package main

// End-to-end tests against a real Mattermost server. `bash .ci/e2e.sh`
// starts one on 127.0.0.1 (PostgreSQL + Mattermost Team Edition, see
// ../shared/mattermost), seeds it with seed.sh and runs these tests with the
// seed's MM_* variables in the environment. Without MM_URL they skip.
//
// TestE2EParityWithFake keeps the httptest fake honest: it replays one
// sequence of client calls against the fake and against the real server and
// compares what we read. The daemon tests run the whole daemon against the
// real server and the in-process fake Teleport.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/types"
)

// e2eEnv is the seeded server, as seed.sh prints it.
type e2eEnv struct {
	url, adminToken, botToken, botID string
	team, teamID                     string
	town, access, private, outsiders string // channel ids
	userEmail, userID                string
}

// e2eEnvironment reads the seed's variables; without MM_URL the test skips.
func e2eEnvironment(t *testing.T) e2eEnv {
	t.Helper()
	if os.Getenv("MM_URL") == "" {
		t.Skip("MM_URL is not set: run `bash .ci/e2e.sh`, which starts a real Mattermost on 127.0.0.1 and sets MM_URL and the other MM_* variables")
	}
	get := func(key string) string {
		v := os.Getenv(key)
		if v == "" {
			t.Fatalf("MM_URL is set but %s is not: export every KEY=value line that seed.sh prints", key)
		}
		return v
	}
	return e2eEnv{
		url: get("MM_URL"), adminToken: get("MM_ADMIN_TOKEN"), botToken: get("MM_BOT_TOKEN"), botID: get("MM_BOT_ID"),
		team: get("MM_TEAM"), teamID: get("MM_TEAM_ID"),
		town: get("MM_CHANNEL_TOWN_SQUARE"), access: get("MM_CHANNEL_ACCESS_REQUESTS"),
		private: get("MM_CHANNEL_PRIVATE"), outsiders: get("MM_CHANNEL_BOT_NOT_MEMBER"),
		userEmail: get("MM_USER_EMAIL"), userID: get("MM_USER_ID"),
	}
}

// Bounds for waiting on the real server, a separate process that offers no
// change notification: its answers are polled, briefly and for a bounded time.
const (
	e2ePoll = 100 * time.Millisecond
	e2eWait = 45 * time.Second
)

// e2eMissingID is well-formed (26 alphanumerics) but names nothing.
const e2eMissingID = "zzzzzzzzzzzzzzzzzzzzzzzzzz"

// ---------------------------------------------------------------------------
// Parity: the fake against the real server.

// statusRecorder remembers the HTTP status of the last exchange, so that a
// success shows as 200 or 201 as the server sent it. Calls are sequential.
type statusRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	last int
}

func (s *statusRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = 0
	if err == nil {
		s.last = resp.StatusCode
	}
	return resp, err
}

func (s *statusRecorder) take() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.last
	s.last = 0
	return st
}

// parityWorld is one backend (fake or real) seeded like seed.sh, and what
// the steps learnt from it so far (posts they made, the direct channel).
type parityWorld struct {
	m      *mattermost
	bad    *mattermost // same server, a token it never issued
	status *statusRecorder
	env    e2eEnv // ids of the seeded objects on this backend

	root, reply, dm string
}

// parityClient is a client that makes exactly one attempt per call, so a
// 5xx or 429 is observed rather than retried away; rec sees its statuses.
func parityClient(t *testing.T, url, token string, rec *statusRecorder) *mattermost {
	t.Helper()
	m, err := newMattermost(mattermostConfig{URL: url, Token: token}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.maxAttempts = 1
	t.Cleanup(m.http.CloseIdleConnections)
	rec.next = m.http.Transport
	m.http.Transport = rec
	return m
}

func newParityWorld(t *testing.T, env e2eEnv) *parityWorld {
	w := &parityWorld{status: &statusRecorder{}, env: env}
	w.m = parityClient(t, env.url, env.botToken, w.status)
	// Both clients' transports are equivalent, so one recorder serves both.
	w.bad = parityClient(t, env.url, "e2ewrongtoken0000000000000", w.status)
	return w
}

// fakeParityEnv seeds the fake exactly as seed.sh seeds the real server.
func fakeParityEnv(f *fakeMattermost) e2eEnv {
	env := e2eEnv{url: f.URL(), botToken: f.token, botID: f.botID, team: "myteam", userEmail: "alice@example.com"}
	env.teamID = f.addTeam("myteam", "My Team")
	env.town = f.addChannel("myteam", "town-square", "Town Square", true)
	env.access = f.addChannel("myteam", "access-requests", "Access Requests", true)
	env.private = f.addPrivateChannel("myteam", "private-reviews", "Private Reviews", true)
	env.outsiders = f.addChannel("myteam", "outsiders", "Outsiders", false)
	env.userID = f.addUser("alice@example.com", "alice")
	return env
}

// observation is what one call showed: the status, the error id, and the
// fields the daemon reads, normalised so two servers' answers compare
// (ids by shape or by which seeded object they are).
type observation struct {
	Status int
	ErrID  string
	Fields map[string]string
}

func (o observation) String() string {
	keys := slices.Sorted(maps.Keys(o.Fields))
	var b strings.Builder
	fmt.Fprintf(&b, "%d", o.Status)
	if o.ErrID != "" {
		b.WriteString(" " + o.ErrID)
	}
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, o.Fields[k])
	}
	return b.String()
}

// paritySteps is the sequence replayed on both backends. want is the status
// a real Mattermost 11.4 answers (shared/mattermost-api.md, and what these
// steps observed), so that the fake and the server drifting together from
// the documented behaviour still fails.
var paritySteps = []struct {
	name string
	want int
	run  func(ctx context.Context, w *parityWorld) (map[string]string, error)
}{
	{"me", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		u, err := w.m.me(ctx)
		return map[string]string{"id": idShape(u.ID), "is_bot": is(u.ID == w.env.botID), "username": u.Username}, err
	}},
	{"team by name", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		tm, err := w.m.teamByName(ctx, "myteam")
		return map[string]string{"is_team": is(tm.ID == w.env.teamID), "name": tm.Name, "display_name": tm.DisplayName}, err
	}},
	{"unknown team", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.teamByName(ctx, "noteam")
		return nil, err
	}},
	{"channel by name", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		c, err := w.m.channelByName(ctx, "myteam", "access-requests")
		return channelFields(w, c, w.env.access), err
	}},
	{"private channel, bot a member", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		c, err := w.m.channelByName(ctx, "myteam", "private-reviews")
		return channelFields(w, c, w.env.private), err
	}},
	{"public channel, bot not a member", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		c, err := w.m.channelByName(ctx, "myteam", "outsiders")
		return channelFields(w, c, w.env.outsiders), err
	}},
	{"unknown channel", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.channelByName(ctx, "myteam", "nope")
		return nil, err
	}},
	{"channel of an unknown team", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.channelByName(ctx, "noteam", "access-requests")
		return nil, err
	}},
	{"display name in the path", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.channelByName(ctx, "myteam", "Town Square")
		return nil, err
	}},
	{"search by display name", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		cs, err := w.m.searchChannels(ctx, w.env.teamID, "Town Square")
		return searchFields(w, cs, "Town Square"), err
	}},
	{"search leaves out private channels", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		cs, err := w.m.searchChannels(ctx, w.env.teamID, "Private Reviews")
		return searchFields(w, cs, "Private Reviews"), err
	}},
	{"search finds a channel the bot is not in", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		cs, err := w.m.searchChannels(ctx, w.env.teamID, "Outsiders")
		return searchFields(w, cs, "Outsiders"), err
	}},
	{"search in an unknown team", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.searchChannels(ctx, e2eMissingID, "Town Square")
		return nil, err
	}},
	{"search with a malformed team id", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.searchChannels(ctx, "noteam", "Town Square")
		return nil, err
	}},
	{"autocomplete has private channels the bot is in", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		cs, err := w.m.autocompleteChannels(ctx, w.env.teamID, "Private Reviews")
		return searchFields(w, cs, "Private Reviews"), err
	}},
	{"autocomplete by display name", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		cs, err := w.m.autocompleteChannels(ctx, w.env.teamID, "Town Square")
		return searchFields(w, cs, "Town Square"), err
	}},
	{"bot is a member of access-requests", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		in, err := w.m.isChannelMember(ctx, w.env.access, w.env.botID)
		return map[string]string{"member": is(in)}, err
	}},
	{"bot is not a member of outsiders", 403, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		in, err := w.m.isChannelMember(ctx, w.env.outsiders, w.env.botID)
		return map[string]string{"member": is(in)}, err
	}},
	{"private channel by display name resolves", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		id, err := w.m.resolveRecipient(ctx, recipient{Team: "myteam", Channel: "Private Reviews"}, w.env.botID)
		return map[string]string{"is_private_reviews": is(id == w.env.private)}, err
	}},
	{"user by email", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		u, err := w.m.userByEmail(ctx, w.env.userEmail)
		return map[string]string{"is_user": is(u.ID == w.env.userID), "username": u.Username, "email": u.Email}, err
	}},
	{"user by email, other case", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		u, err := w.m.userByEmail(ctx, "Alice@Example.COM")
		return map[string]string{"is_user": is(u.ID == w.env.userID)}, err
	}},
	{"unknown email", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.userByEmail(ctx, "nobody@example.com")
		return nil, err
	}},
	{"direct channel", 201, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		c, err := w.m.directChannel(ctx, w.env.botID, w.env.userID)
		w.dm = c.ID
		pair := []string{w.env.botID, w.env.userID}
		sort.Strings(pair)
		return map[string]string{"id": idShape(c.ID), "type": c.Type, "name_is_pair": is(c.Name == pair[0]+"__"+pair[1])}, err
	}},
	{"direct channel again, reversed", 201, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		c, err := w.m.directChannel(ctx, w.env.userID, w.env.botID)
		return map[string]string{"same_id": is(c.ID == w.dm && c.ID != "")}, err
	}},
	{"direct channel with an unknown user", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.directChannel(ctx, w.env.botID, e2eMissingID)
		return nil, err
	}},
	{"direct channel with a malformed user id", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.directChannel(ctx, w.env.botID, "nobody")
		return nil, err
	}},
	{"direct channel between others", 403, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.directChannel(ctx, w.env.userID, e2eMissingID)
		return nil, err
	}},
	{"direct channel, one user twice", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.directChannel(ctx, w.env.userID, w.env.userID)
		return nil, err
	}},
	{"create post with an attachment", 201, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		p, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.access, Message: "parity root", Props: parityProps("first")})
		w.root = p.ID
		f := postFields(p)
		f["in_channel"] = is(p.ChannelID == w.env.access)
		f["update_is_create"] = is(p.UpdateAt == p.CreateAt)
		return f, err
	}},
	{"post to a channel the bot is not in", 403, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.outsiders, Message: "must not appear"})
		return nil, err
	}},
	{"post to an unknown channel", 403, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.createPost(ctx, mmPost{ChannelID: e2eMissingID, Message: "must not appear"})
		return nil, err
	}},
	{"post to the direct channel", 201, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		p, err := w.m.createPost(ctx, mmPost{ChannelID: w.dm, Message: "parity dm"})
		return map[string]string{"id": idShape(p.ID), "in_channel": is(p.ChannelID == w.dm && p.ChannelID != "")}, err
	}},
	{"thread reply", 201, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		p, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.access, RootID: w.root, Message: "parity reply"})
		w.reply = p.ID
		f := postFields(p)
		f["root_is_root"] = is(p.RootID == w.root && p.RootID != "")
		return f, err
	}},
	{"root reply_count after one reply", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		n, err := replyCount(ctx, w.m, w.root)
		return map[string]string{"reply_count": strconv.FormatInt(n, 10)}, err
	}},
	{"second thread reply", 201, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		p, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.access, RootID: w.root, Message: "parity reply 2"})
		return map[string]string{"root_is_root": is(p.RootID == w.root && p.RootID != "")}, err
	}},
	{"root reply_count after two replies", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		n, err := replyCount(ctx, w.m, w.root)
		return map[string]string{"reply_count": strconv.FormatInt(n, 10)}, err
	}},
	{"reply to a reply", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.access, RootID: w.reply, Message: "nested"})
		return nil, err
	}},
	{"reply in another channel than its root", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.private, RootID: w.root, Message: "elsewhere"})
		return nil, err
	}},
	{"patch the message only", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		p, err := w.m.patchPost(ctx, w.root, "parity edited", nil)
		f := postFields(p)
		f["same_post"] = is(p.ID == w.root && p.ID != "")
		f["edit_is_update"] = is(p.EditAt == p.UpdateAt)
		f["updated_after_create"] = is(p.UpdateAt > p.CreateAt)
		return f, err
	}},
	{"patch message and props", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		p, err := w.m.patchPost(ctx, w.root, "parity edited again", parityProps("second"))
		return postFields(p), err
	}},
	{"read the post back", 200, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		var p mmPost
		err := w.m.call(ctx, http.MethodGet, "/posts/"+w.root, nil, &p)
		return postFields(p), err
	}},
	{"read an unknown post", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		var p mmPost
		return nil, w.m.call(ctx, http.MethodGet, "/posts/"+e2eMissingID, nil, &p)
	}},
	{"patch an unknown post", 403, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.patchPost(ctx, e2eMissingID, "x", nil)
		return nil, err
	}},
	{"patch a malformed post id", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.patchPost(ctx, "nopost", "x", nil)
		return nil, err
	}},
	{"message at the limit (16383 characters, 2 bytes each)", 201, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		p, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.access, Message: strings.Repeat("é", 16383)})
		return map[string]string{"kept": is(p.Message == strings.Repeat("é", 16383))}, err
	}},
	{"message over the limit", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.createPost(ctx, mmPost{ChannelID: w.env.access, Message: strings.Repeat("x", 16384)})
		return nil, err
	}},
	{"patch over the limit", 400, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.m.patchPost(ctx, w.root, strings.Repeat("x", 16384), nil)
		return nil, err
	}},
	{"bad token", 401, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.bad.me(ctx)
		return nil, err
	}},
	{"bad token, path the router rejects", 404, func(ctx context.Context, w *parityWorld) (map[string]string, error) {
		_, err := w.bad.channelByName(ctx, "myteam", "Town Square")
		return nil, err
	}},
}

func is(b bool) string { return strconv.FormatBool(b) }

// idShape is "id" for a Mattermost-shaped id, else the value itself.
func idShape(s string) string {
	if mmIDPattern.MatchString(s) {
		return "id"
	}
	return strconv.Quote(s)
}

func channelFields(w *parityWorld, c mmChannel, want string) map[string]string {
	return map[string]string{
		"is_seeded": is(c.ID == want), "team": is(c.TeamID == w.env.teamID),
		"type": c.Type, "name": c.Name, "display_name": c.DisplayName,
	}
}

// searchFields keeps what resolveRecipient reads from a search: the
// channels whose display name is exactly the term.
func searchFields(w *parityWorld, cs []mmChannel, displayName string) map[string]string {
	var exact []string
	for _, c := range cs {
		if c.DisplayName == displayName {
			exact = append(exact, c.Name+"/"+c.Type+"/team="+is(c.TeamID == w.env.teamID))
		}
	}
	return map[string]string{"exact": strings.Join(exact, ",")}
}

// parityProps is a post's props as the renderer makes them: one attachment.
func parityProps(text string) map[string]any {
	return map[string]any{"attachments": []any{map[string]any{
		"color": "#2f81f7", "text": text,
		"fields": []any{map[string]any{"title": "Reviews", "value": "0", "short": true}},
	}}}
}

// postFields are the fields of a post the daemon and these tests rely on.
func postFields(p mmPost) map[string]string {
	f := map[string]string{
		"id": idShape(p.ID), "root_id": idShape(p.RootID), "message": p.Message,
		"from_bot":    fmt.Sprint(p.Props["from_bot"]),
		"attachments": attachmentTexts(p.Props),
		"created":     is(p.CreateAt > 0),
		"edited":      is(p.EditAt > 0),
	}
	if p.RootID == "" {
		f["root_id"] = `""`
	}
	return f
}

// attachmentTexts lists the text of each attachment in props, or "none".
func attachmentTexts(props map[string]any) string {
	list, ok := props["attachments"].([]any)
	if !ok {
		return "none"
	}
	var texts []string
	for _, a := range list {
		m, _ := a.(map[string]any)
		texts = append(texts, fmt.Sprint(m["text"]))
	}
	return "[" + strings.Join(texts, "|") + "]"
}

// replyCount reads a root post's reply_count with GET /posts/{id}.
func replyCount(ctx context.Context, m *mattermost, id string) (int64, error) {
	var p struct {
		ReplyCount int64 `json:"reply_count"`
	}
	err := m.call(ctx, http.MethodGet, "/posts/"+id, nil, &p)
	return p.ReplyCount, err
}

// observe runs every step on w.
func observe(t *testing.T, w *parityWorld) []observation {
	t.Helper()
	out := make([]observation, len(paritySteps))
	for i, s := range paritySteps {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		w.status.take()
		fields, err := s.run(ctx, w)
		cancel()
		o := observation{Status: w.status.take(), Fields: fields}
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			o.Status, o.ErrID, o.Fields = ae.Status, ae.ID, nil // a failed call has no fields
		case err != nil:
			t.Fatalf("step %q: not an answer from the server: %v", s.name, err)
		}
		out[i] = o
	}
	return out
}

func TestE2EParityWithFake(t *testing.T) {
	live := newParityWorld(t, e2eEnvironment(t))
	fake := newParityWorld(t, fakeParityEnv(newFakeMattermost(t)))

	fakeSeen, liveSeen := observe(t, fake), observe(t, live)
	for i, s := range paritySteps {
		f, r := fakeSeen[i], liveSeen[i]
		t.Logf("%-55s real: %s", s.name, r)
		if r.Status != s.want {
			t.Errorf("%s: the real server answered %d, the documented answer is %d", s.name, r.Status, s.want)
		}
		if f.String() != r.String() {
			t.Errorf("%s: the fake drifted from the real server\n fake: %s\n real: %s", s.name, f, r)
		}
	}
}

// ---------------------------------------------------------------------------
// The daemon against the real server and the fake Teleport.

// mmReader reads the real server independently of the client under test,
// with plain HTTP and a token of its own.
type mmReader struct {
	t     *testing.T
	url   string
	token string
	http  *http.Client
}

// e2ePost is a post as the tests read it back.
type e2ePost struct {
	ID         string         `json:"id"`
	UserID     string         `json:"user_id"`
	ChannelID  string         `json:"channel_id"`
	RootID     string         `json:"root_id"`
	Message    string         `json:"message"`
	Props      map[string]any `json:"props"`
	CreateAt   int64          `json:"create_at"`
	EditAt     int64          `json:"edit_at"`
	ReplyCount int64          `json:"reply_count"`
}

func newMMReader(t *testing.T, url, token string) *mmReader {
	c := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return &mmReader{t: t, url: url, token: token, http: c}
}

// call sends one request; a non-2xx answer is an error with its body.
func (r *mmReader) call(method, path, body string, out any) error {
	req, err := http.NewRequest(method, r.url+"/api/v4"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// channelPosts is every post of a channel (roots and replies), oldest first.
func (r *mmReader) channelPosts(channelID string) ([]e2ePost, error) {
	var list struct {
		Order []string           `json:"order"`
		Posts map[string]e2ePost `json:"posts"`
	}
	if err := r.call("GET", "/channels/"+channelID+"/posts?per_page=200", "", &list); err != nil {
		return nil, err
	}
	out := make([]e2ePost, 0, len(list.Posts))
	for _, p := range list.Posts {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateAt < out[j].CreateAt })
	return out, nil
}

// thread is what one channel shows for one request: the bot's root posts
// that name it, and the bot's replies to the first of them.
type thread struct {
	roots   []e2ePost
	replies []e2ePost
}

func (r *mmReader) thread(channelID, botID, requestID string) (thread, error) {
	posts, err := r.channelPosts(channelID)
	if err != nil {
		return thread{}, err
	}
	var th thread
	for _, p := range posts {
		if p.UserID == botID && p.RootID == "" && strings.Contains(p.Message, requestID) {
			th.roots = append(th.roots, p)
		}
	}
	if len(th.roots) == 0 {
		return th, nil
	}
	for _, p := range posts {
		if p.UserID == botID && p.RootID == th.roots[0].ID {
			th.replies = append(th.replies, p)
		}
	}
	return th, nil
}

func (th thread) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d root post(s), %d replies", len(th.roots), len(th.replies))
	for _, p := range th.roots {
		fmt.Fprintf(&b, "\n  root %s edit_at=%d attachments=%s: %q", p.ID, p.EditAt, attachmentTexts(p.Props), p.Message)
	}
	for _, p := range th.replies {
		fmt.Fprintf(&b, "\n  reply %s: %q", p.ID, p.Message)
	}
	return b.String()
}

// e2eDaemon is the daemon running in this test process; it is stopped (and
// its log shown if the test failed) on cleanup.
type e2eDaemon struct {
	logPath string
	done    chan struct{} // closed when start returned
	err     error         // start's result, once done is closed
}

func (d *e2eDaemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *e2eDaemon) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(d.logPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("daemon log: %v", err)
	}
	return string(b)
}

// e2eConfig writes a config for the daemon: the fake Teleport, the real
// Mattermost, the log into dir.
func e2eConfig(t *testing.T, dir string, auth *fakeAuth, env e2eEnv, token string, recipients []string) (configPath, logPath string) {
	t.Helper()
	identity := filepath.Join(dir, "identity")
	auth.writeIdentity(t, identity, "teleport-mattermost")
	logPath = filepath.Join(dir, "daemon.log")
	configPath = filepath.Join(dir, "teleport-mattermost.toml")
	daemonConfig{
		addr: auth.addr(), identity: identity, url: env.url, token: token,
		logFile: logPath, severity: "DEBUG", mattermost: "recipients = " + tomlList(recipients),
	}.write(t, configPath)
	return configPath, logPath
}

// startE2EDaemon starts the daemon; cleanup stops it and waits for start to return.
func startE2EDaemon(t *testing.T, configPath, logPath string) *e2eDaemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &e2eDaemon{logPath: logPath, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.err = start(ctx, configPath, false, make(chan struct{}))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
			if d.err != nil {
				t.Errorf("daemon: start returned %v", d.err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("daemon did not stop within 30s of its context ending")
		}
		if t.Failed() {
			t.Logf("daemon log (%s):\n%s", logPath, d.log(t))
		}
	})
	return d
}

// waitUntil polls check until it returns nil, failing the test when the
// daemon exits or e2eWait passes. check's last error says what was missing.
func waitUntil(t *testing.T, d *e2eDaemon, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		err := check()
		if err == nil {
			return
		}
		if d.exited() {
			t.Fatalf("waiting for %s: the daemon stopped: %v (last check: %v)", what, d.err, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not there after %s: %v", what, e2eWait, err)
		}
		time.Sleep(e2ePoll)
	}
}

func TestE2EDaemon(t *testing.T) {
	env := e2eEnvironment(t)
	admin := newMMReader(t, env.url, env.adminToken)
	asBot := newMMReader(t, env.url, env.botToken)
	var dm struct {
		ID string `json:"id"`
	}
	if err := asBot.call("POST", "/channels/direct", fmt.Sprintf("[%q, %q]", env.botID, env.userID), &dm); err != nil {
		t.Fatalf("alice's direct channel with the bot: %v", err)
	}

	auth := newFakeAuth(t)
	configPath, logPath := e2eConfig(t, t.TempDir(), auth, env, env.botToken, []string{
		env.team + "/access-requests",
		env.team + "/Town Square", // a display name: the router rejects the space; found by search
		env.team + "/outsiders",   // the bot is not a member: 403, logged, the others still get posts
		env.userEmail,             // a direct message to alice
	})
	d := startE2EDaemon(t, configPath, logPath)

	req := auth.createRequest("bob", []string{"editor"}, "e2e: need to fix the deploy")
	id := req.GetName()
	posted := []struct{ name, channel string }{
		{"access-requests", env.access}, {"Town Square", env.town}, {"alice's DM", dm.ID},
	}
	// threads checks the request's thread in every channel it must be in.
	threads := func(check func(th thread) error) func() error {
		return func() error {
			for _, c := range posted {
				th, err := admin.thread(c.channel, env.botID, id)
				if err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
				if err := check(th); err != nil {
					return fmt.Errorf("%s: %w; it shows %s", c.name, err, th)
				}
			}
			return nil
		}
	}

	// 1. The request is posted once to each channel that can be resolved.
	waitUntil(t, d, "the request in every channel", threads(func(th thread) error {
		if len(th.roots) != 1 {
			return fmt.Errorf("want 1 root post")
		}
		p := th.roots[0]
		if !strings.Contains(p.Message, "PENDING") || attachmentTexts(p.Props) == "none" {
			return fmt.Errorf("want a PENDING post with an attachment")
		}
		return nil
	}))
	waitUntil(t, d, "the log line about the outsiders channel", func() error {
		for _, line := range strings.Split(d.log(t), "\n") {
			if strings.Contains(line, env.outsiders) && strings.Contains(line, "403") {
				return nil
			}
		}
		return errors.New("no log line names the outsiders channel and the 403")
	})
	out, err := admin.thread(env.outsiders, env.botID, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.roots) != 0 {
		t.Fatalf("the outsiders channel got a post from the bot: %s", out)
	}

	// 2. A review is a thread reply under each original post.
	auth.addReview(id, "carol", true, "e2e: looks right")
	waitUntil(t, d, "the review as a thread reply", threads(func(th thread) error {
		if len(th.roots) != 1 || len(th.replies) != 1 {
			return fmt.Errorf("want 1 root post with 1 reply")
		}
		if r := th.replies[0]; r.RootID != th.roots[0].ID || !strings.Contains(r.Message, "carol") {
			return fmt.Errorf("want a reply by carol with root_id %s", th.roots[0].ID)
		}
		return nil
	}))

	// 3. Approval edits the original posts (message and attachment) and adds
	// a final reply.
	auth.resolve(id, types.RequestState_APPROVED, "e2e: approved for the deploy")
	waitUntil(t, d, "the approval", threads(func(th thread) error {
		if len(th.roots) != 1 || len(th.replies) != 2 {
			return fmt.Errorf("want 1 root post with 2 replies")
		}
		p := th.roots[0]
		switch {
		case !strings.Contains(p.Message, "APPROVED"):
			return fmt.Errorf("root post does not show APPROVED")
		case !strings.Contains(p.Message, "approved for the deploy"):
			return fmt.Errorf("root post does not show the resolution reason")
		case p.EditAt <= 0:
			return fmt.Errorf("root post edit_at is %d", p.EditAt)
		case attachmentTexts(p.Props) == "none":
			return fmt.Errorf("root post lost its attachment")
		case th.replies[1].RootID != p.ID || !strings.Contains(strings.ToLower(th.replies[1].Message), "approved"):
			return fmt.Errorf("want a final reply in the thread saying it was approved")
		}
		return nil
	}))
	for _, c := range posted {
		th, err := admin.thread(c.channel, env.botID, id)
		if err != nil {
			t.Fatal(err)
		}
		var root e2ePost
		if err := admin.call("GET", "/posts/"+th.roots[0].ID, "", &root); err != nil {
			t.Fatal(err)
		}
		if root.ReplyCount != 2 {
			t.Errorf("%s: root post reply_count %d, want 2", c.name, root.ReplyCount)
		}
	}
	out, err = admin.thread(env.outsiders, env.botID, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.roots) != 0 {
		t.Fatalf("the outsiders channel got a post from the bot: %s", out)
	}
}

func TestE2EDaemonBadToken(t *testing.T) {
	env := e2eEnvironment(t)
	auth := newFakeAuth(t)
	const badToken = "e2ebadtoken000000000000000"
	configPath, logPath := e2eConfig(t, t.TempDir(), auth, env, badToken, []string{env.team + "/access-requests"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := start(ctx, configPath, false, make(chan struct{}))
	if err == nil {
		t.Fatal("start succeeded with a token the server never issued")
	}
	if ctx.Err() != nil {
		t.Fatalf("start did not fail fast: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "rejected the bot token") || !strings.Contains(msg, "401") {
		t.Errorf("start-up error does not say the token was rejected: %v", err)
	}
	if strings.Contains(msg, badToken) {
		t.Errorf("start-up error shows the token: %v", err)
	}
	if b, _ := os.ReadFile(logPath); strings.Contains(string(b), badToken) {
		t.Errorf("the log shows the token:\n%s", b)
	}
}
