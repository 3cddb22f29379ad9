package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fakeMattermost is an httptest.Server answering the calls the daemon makes
// the way a real Mattermost 11.4 does (see /work/shared/mattermost-api.md):
// same status codes, error ids and headers. All state is behind mu.
type fakeMattermost struct {
	t     testing.TB
	srv   *httptest.Server
	token string // the valid bot token
	botID string // the bot user's id
	done  chan struct{}

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced after every call (waitFor)
	users    map[string]mmUser
	byEmail  map[string]string // lower-case email -> user id
	teams    map[string]*fakeTeam
	teamIDs  map[string]*fakeTeam
	channels map[string]*fakeChannel
	direct   map[string]string // "id1__id2" -> channel id
	postList []*fakePost
	postByID map[string]*fakePost
	postsBy  map[string][]*fakePost // channel id -> its posts, creation order
	log      []mmCall
	fault    func(r *http.Request) (status int, header http.Header)
	delay    time.Duration
}

// mmCall is one request the fake received. Status 0: the client went away
// before the answer (during setDelay).
type mmCall struct {
	Method, Path string // Path as sent (escaped)
	Body         []byte // a copy
	Status       int
	At           time.Time // when the fake answered
}

// String keeps failure messages readable (Body is not dumped as numbers).
func (c mmCall) String() string {
	return fmt.Sprintf("%s %s %d (%d bytes)", c.Method, c.Path, c.Status, len(c.Body))
}

// fakeTeam is a team and its channels by name.
type fakeTeam struct {
	mmTeam
	channels map[string]*fakeChannel
}

// fakeChannel is a channel and whether the bot is a member (it may post).
type fakeChannel struct {
	mmChannel
	botMember bool
}

// fakePost is a post as the server stores it, with the fields mmPost lacks.
type fakePost struct {
	mmPost
	UserID     string
	ReplyCount int64
}

// mmMaxRunes is Mattermost's post message limit, in characters.
const mmMaxRunes = 16383

var (
	// The router's patterns for names and ids: anything else is its 404.
	fakeNameSegment = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	fakeIDSegment   = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	// What the handlers then accept as an id (model.IsValidId): the router
	// lets "abc" through, the handler answers 400 invalid_url_param.
	fakeValidID = regexp.MustCompile(`^[A-Za-z0-9]{26}$`)
)

func newFakeMattermost(t testing.TB) *fakeMattermost {
	f := &fakeMattermost{
		t:        t,
		token:    fakeID(),
		botID:    fakeID(),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		users:    map[string]mmUser{},
		byEmail:  map[string]string{},
		teams:    map[string]*fakeTeam{},
		teamIDs:  map[string]*fakeTeam{},
		channels: map[string]*fakeChannel{},
		direct:   map[string]string{},
		postByID: map[string]*fakePost{},
		postsBy:  map[string][]*fakePost{},
	}
	f.users[f.botID] = mmUser{ID: f.botID, Username: "teleport", Email: "teleport@localhost"}
	f.byEmail["teleport@localhost"] = f.botID
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.done)
		f.srv.Close()
	})
	return f
}

// fakeID is a Mattermost-shaped id: 26 characters of [a-z0-9].
func fakeID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 26)
	for i := range b {
		b[i] = alphabet[rand.N(len(alphabet))]
	}
	return string(b)
}

func (f *fakeMattermost) URL() string { return f.srv.URL }

func (f *fakeMattermost) addTeam(name, displayName string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	tm := &fakeTeam{mmTeam: mmTeam{ID: fakeID(), Name: name, DisplayName: displayName}, channels: map[string]*fakeChannel{}}
	f.teams[name] = tm
	f.teamIDs[tm.ID] = tm
	return tm.ID
}

// addChannel adds a public (type "O") channel to team.
func (f *fakeMattermost) addChannel(team, name, displayName string, botMember bool) string {
	return f.addTeamChannel(team, name, displayName, "O", botMember)
}

// addPrivateChannel adds a private (type "P") channel: unless the bot is a
// member, the server pretends it does not exist.
func (f *fakeMattermost) addPrivateChannel(team, name, displayName string, botMember bool) string {
	return f.addTeamChannel(team, name, displayName, "P", botMember)
}

func (f *fakeMattermost) addTeamChannel(team, name, displayName, typ string, botMember bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	tm := f.teams[team]
	if tm == nil {
		f.t.Fatalf("fake mattermost: addChannel: no team %q", team)
	}
	c := &fakeChannel{mmChannel: mmChannel{ID: fakeID(), TeamID: tm.ID, Type: typ, Name: name, DisplayName: displayName}, botMember: botMember}
	tm.channels[name] = c
	f.channels[c.ID] = c
	return c.ID
}

func (f *fakeMattermost) addUser(email, username string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := mmUser{ID: fakeID(), Username: username, Email: strings.ToLower(email)}
	f.users[u.ID] = u
	f.byEmail[u.Email] = u.ID
	return u.ID
}

// posts is every post (current state), creation order.
func (f *fakeMattermost) posts() []mmPost {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copyPosts(f.postList)
}

func (f *fakeMattermost) postsIn(channelID string) []mmPost {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copyPosts(f.postsBy[channelID])
}

// replyCount is the root post's reply_count as the server would answer it.
func (f *fakeMattermost) replyCount(postID string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.postByID[postID]; p != nil {
		return p.ReplyCount
	}
	return -1
}

// copyPosts copies the top level of props too: stored props are never
// mutated in place (a patch replaces the map), so that is enough.
func copyPosts(ps []*fakePost) []mmPost {
	out := make([]mmPost, len(ps))
	for i, p := range ps {
		out[i] = p.mmPost
		out[i].Props = maps.Clone(p.Props)
	}
	return out
}

func (f *fakeMattermost) calls() []mmCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// setFault makes fn decide, per request, whether to answer with an injected
// status (0: answer normally) and extra headers. A fault changes no state.
// nil clears it.
func (f *fakeMattermost) setFault(fn func(r *http.Request) (status int, header http.Header)) {
	f.mu.Lock()
	f.fault = fn
	f.mu.Unlock()
}

// setDelay adds latency to every call.
func (f *fakeMattermost) setDelay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// waitFor waits until cond holds, re-checking after every call the fake
// answers; it fails the test after 10s.
func (f *fakeMattermost) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	f.waitLong(t, what, 10*time.Second, cond)
}

// waitLong is waitFor with a deadline of d (bursts).
func (f *fakeMattermost) waitLong(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waitChanged(t, "fake mattermost: "+what, d, func() <-chan struct{} {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.changed
	}, cond)
}

func (f *fakeMattermost) record(c mmCall) {
	f.mu.Lock()
	f.log = append(f.log, c)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// serve answers one request. The answer is built in a recorder and the call
// recorded before it is sent, so a client that has its answer also sees its
// call in calls().
func (f *fakeMattermost) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := mmCall{Method: r.Method, Path: r.URL.EscapedPath(), Body: body}

	f.mu.Lock()
	delay, fault := f.delay, f.fault
	f.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			call.At = time.Now()
			f.record(call)
			return
		case <-f.done:
			t.Stop()
		}
	}

	rec := httptest.NewRecorder()
	reqID := fakeID()
	rec.Header().Set("X-Request-Id", reqID)
	rec.Header().Set("X-Version-Id", "11.4.0.0.fake.false")
	status := 0
	var extra http.Header
	if fault != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		status, extra = fault(r)
	}
	if status != 0 {
		for k, vs := range extra {
			rec.Header()[k] = vs
		}
		if status == http.StatusTooManyRequests {
			// Mattermost's rate limiter answers in plain text, not JSON.
			http.Error(rec, "limit exceeded", status)
		} else {
			fakeError(rec, status, "fake.injected_fault.app_error", http.StatusText(status), reqID)
		}
	} else {
		f.route(rec, r, body, reqID)
	}

	call.Status = rec.Code
	call.At = time.Now()
	f.record(call)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// fakeError writes Mattermost's JSON error body.
func fakeError(w http.ResponseWriter, status int, id, message, reqID string) {
	fakeJSON(w, status, map[string]any{
		"id": id, "message": message, "detailed_error": "", "request_id": reqID, "status_code": status,
	})
}

func fakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// route dispatches like Mattermost's router: an unknown path, or a name
// segment outside its pattern (a space), is the router's 404 before any
// authentication.
func (f *fakeMattermost) route(w http.ResponseWriter, r *http.Request, body []byte, reqID string) {
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v4/"), "/")
	is := func(method string, parts ...string) bool {
		if r.Method != method || len(seg) != len(parts) || !strings.HasPrefix(r.URL.Path, "/api/v4/") {
			return false
		}
		for i, p := range parts {
			switch p {
			case "{name}":
				if !fakeNameSegment.MatchString(seg[i]) {
					return false
				}
			case "{id}":
				if !fakeIDSegment.MatchString(seg[i]) {
					return false
				}
			case "{any}":
				if seg[i] == "" {
					return false
				}
			default:
				if seg[i] != p {
					return false
				}
			}
		}
		return true
	}
	var handle func()
	switch {
	case is("GET", "users", "me"):
		handle = func() { fakeJSON(w, 200, f.users[f.botID]) }
	case is("GET", "users", "email", "{any}"):
		handle = func() { f.userByEmail(w, seg[2], reqID) }
	case is("GET", "teams", "name", "{name}"):
		handle = func() { f.teamByName(w, seg[2], reqID) }
	case is("GET", "teams", "name", "{name}", "channels", "name", "{name}"):
		handle = func() { f.channelByName(w, seg[2], seg[5], reqID) }
	case is("POST", "teams", "{id}", "channels", "search"):
		handle = func() { f.searchChannels(w, seg[1], body, reqID) }
	case is("GET", "teams", "{id}", "channels", "autocomplete"):
		handle = func() { f.autocompleteChannels(w, seg[1], r.URL.Query().Get("name"), reqID) }
	case is("GET", "channels", "{id}", "members", "{id}"):
		handle = func() { f.channelMember(w, seg[1], seg[3], reqID) }
	case is("POST", "channels", "direct"):
		handle = func() { f.directChannel(w, body, reqID) }
	case is("POST", "posts"):
		handle = func() { f.createPost(w, body, reqID) }
	case is("PUT", "posts", "{id}", "patch"):
		handle = func() { f.patchPost(w, seg[1], body, reqID) }
	case is("GET", "posts", "{id}"):
		handle = func() { f.getPost(w, seg[1], reqID) }
	default:
		fakeJSON(w, http.StatusNotFound, map[string]any{
			"id":             "api.context.404.app_error",
			"message":        "Sorry, we could not find the page.",
			"detailed_error": "There doesn't appear to be an api call for the url='" + r.URL.Path + "'.",
			"request_id":     "",
			"status_code":    http.StatusNotFound,
		})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		fakeError(w, http.StatusUnauthorized, "api.context.session_expired.app_error",
			"Invalid or expired session, please login again.", reqID)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	handle()
}

func (f *fakeMattermost) userByEmail(w http.ResponseWriter, email, reqID string) {
	id, ok := f.byEmail[strings.ToLower(email)]
	if !ok {
		fakeError(w, 404, "app.user.missing_account.const", "Unable to find the user.", reqID)
		return
	}
	fakeJSON(w, 200, f.users[id])
}

func (f *fakeMattermost) teamByName(w http.ResponseWriter, name, reqID string) {
	tm := f.teams[name]
	if tm == nil {
		fakeError(w, 404, "app.team.get_by_name.missing.app_error", "Unable to find the existing team.", reqID)
		return
	}
	fakeJSON(w, 200, tm.mmTeam)
}

// visible is whether the bot may see c: every public channel, and private
// ones it is a member of (others answer "does not exist").
func (c *fakeChannel) visible() bool { return c.Type == "O" || c.botMember }

func (f *fakeMattermost) channelByName(w http.ResponseWriter, team, name, reqID string) {
	tm := f.teams[team]
	if tm == nil {
		fakeError(w, 404, "app.team.get_by_name.missing.app_error", "Unable to find the existing team.", reqID)
		return
	}
	c := tm.channels[name]
	if c == nil || !c.visible() {
		fakeError(w, 404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.", reqID)
		return
	}
	fakeJSON(w, 200, c.mmChannel)
}

func (f *fakeMattermost) searchChannels(w http.ResponseWriter, teamID string, body []byte, reqID string) {
	var in struct {
		Term string `json:"term"`
	}
	if fakeValidID.MatchString(teamID) && json.Unmarshal(body, &in) != nil {
		fakeError(w, 400, "api.context.invalid_body_param.app_error", "Invalid or missing channel_search in request body.", reqID)
		return
	}
	term := strings.ToLower(in.Term)
	// Only public channels: a real server's team channel search leaves
	// out private channels even when the bot is a member.
	f.teamChannels(w, teamID, reqID, func(c *fakeChannel) bool {
		return c.Type == "O" && (strings.Contains(strings.ToLower(c.Name), term) || strings.Contains(strings.ToLower(c.DisplayName), term))
	})
}

func (f *fakeMattermost) directChannel(w http.ResponseWriter, body []byte, reqID string) {
	var ids []string
	if err := json.Unmarshal(body, &ids); err != nil {
		fakeError(w, 400, "api.context.invalid_body_param.app_error", "Invalid or missing user_ids in request body.", reqID)
		return
	}
	// A real server drops repeated ids; one id left is a direct channel
	// with oneself, which only the caller may open.
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 1 && ids[0] == f.botID {
		ids = append(ids, ids[0])
	}
	if len(ids) != 2 {
		fakeError(w, 400, "api.context.invalid_body_param.app_error", "Invalid or missing user_ids in request body.", reqID)
		return
	}
	// The real server's order: malformed ids, then whether the caller is
	// one of the two, then whether both users exist.
	for _, id := range ids {
		if !fakeValidID.MatchString(id) {
			fakeError(w, 400, "api.context.invalid_body_param.app_error", "Invalid or missing user_id in request body.", reqID)
			return
		}
	}
	if ids[0] != f.botID && ids[1] != f.botID {
		fakeError(w, 403, "api.context.permissions.app_error", "You do not have the appropriate permissions.", reqID)
		return
	}
	for _, id := range ids {
		if _, ok := f.users[id]; !ok {
			fakeError(w, 400, "api.channel.create_direct_channel.invalid_user.app_error", "Invalid user ID for direct channel creation.", reqID)
			return
		}
	}
	name := ids[0] + "__" + ids[1] // sorted above
	id, ok := f.direct[name]
	if !ok {
		c := &fakeChannel{mmChannel: mmChannel{ID: fakeID(), Type: "D", Name: name}, botMember: true}
		f.channels[c.ID] = c
		f.direct[name] = c.ID
		id = c.ID
	}
	fakeJSON(w, 201, f.channels[id].mmChannel)
}

// nowAfter is the current time in ms, later than prev: an edit always moves
// update_at even within the same millisecond.
func nowAfter(prev int64) int64 {
	return max(time.Now().UnixMilli(), prev+1)
}

func (f *fakeMattermost) createPost(w http.ResponseWriter, body []byte, reqID string) {
	var in mmPost
	if err := json.Unmarshal(body, &in); err != nil {
		fakeError(w, 400, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body.", reqID)
		return
	}
	c := f.channels[in.ChannelID]
	if c == nil || !c.botMember {
		fakeError(w, 403, "api.context.permissions.app_error", "You do not have the appropriate permissions.", reqID)
		return
	}
	if utf8.RuneCountInString(in.Message) > mmMaxRunes {
		fakeError(w, 400, "model.post.is_valid.message_length.app_error", "Post Message property is longer than the maximum permitted length.", reqID)
		return
	}
	var root *fakePost
	if in.RootID != "" {
		root = f.postByID[in.RootID]
		if root == nil || root.RootID != "" {
			fakeError(w, 400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.", reqID)
			return
		}
		if root.ChannelID != in.ChannelID {
			fakeError(w, 400, "api.post.create_post.channel_root_id.app_error", "Invalid ChannelId for RootId parameter.", reqID)
			return
		}
	}
	now := time.Now().UnixMilli()
	p := &fakePost{mmPost: mmPost{
		ID: fakeID(), ChannelID: in.ChannelID, RootID: in.RootID, Message: in.Message,
		Props: botProps(in.Props), CreateAt: now, UpdateAt: now,
	}, UserID: f.botID}
	f.postList = append(f.postList, p)
	f.postByID[p.ID] = p
	f.postsBy[p.ChannelID] = append(f.postsBy[p.ChannelID], p)
	if root != nil {
		root.ReplyCount++
		// A reply's answer carries its thread's count, as the root's does.
		p.ReplyCount = root.ReplyCount
	}
	fakeJSON(w, 201, p.wire())
}

// botProps is props as stored for a bot's post: a copy, marked from_bot.
func botProps(props map[string]any) map[string]any {
	out := maps.Clone(props)
	if out == nil {
		out = map[string]any{}
	}
	out["from_bot"] = "true"
	return out
}

func (f *fakeMattermost) patchPost(w http.ResponseWriter, id string, body []byte, reqID string) {
	var in struct {
		Message *string         `json:"message"`
		Props   *map[string]any `json:"props"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		fakeError(w, 400, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body.", reqID)
		return
	}
	if !fakeValidID.MatchString(id) {
		fakeInvalidURLParam(w, "post_id", reqID)
		return
	}
	p := f.postByID[id]
	// A real server checks the permission on the post first, so an unknown
	// post is a 403 here, not a 404.
	if p == nil || !f.channels[p.ChannelID].botMember {
		fakeError(w, 403, "api.context.permissions.app_error", "You do not have the appropriate permissions.", reqID)
		return
	}
	if in.Message != nil && utf8.RuneCountInString(*in.Message) > mmMaxRunes {
		fakeError(w, 400, "model.post.is_valid.message_length.app_error", "Post Message property is longer than the maximum permitted length.", reqID)
		return
	}
	if in.Message != nil {
		p.Message = *in.Message
	}
	if in.Props != nil {
		// Replaced, never mutated (see copyPosts). A real server keeps none
		// of the old props, not even its own from_bot mark.
		p.Props = maps.Clone(*in.Props)
		if p.Props == nil {
			p.Props = map[string]any{}
		}
	}
	p.UpdateAt = nowAfter(p.UpdateAt)
	p.EditAt = p.UpdateAt
	fakeJSON(w, 200, p.wire())
}

// getPost answers GET /posts/{id}: the bot reads posts in public channels
// and in the channels it is a member of.
func (f *fakeMattermost) getPost(w http.ResponseWriter, id, reqID string) {
	if !fakeValidID.MatchString(id) {
		fakeInvalidURLParam(w, "post_id", reqID)
		return
	}
	p := f.postByID[id]
	if p == nil {
		fakeError(w, 404, "app.post.get.app_error", "Unable to get the post.", reqID)
		return
	}
	if !f.channels[p.ChannelID].visible() {
		fakeError(w, 403, "api.context.permissions.app_error", "You do not have the appropriate permissions.", reqID)
		return
	}
	fakeJSON(w, 200, p.wire())
}

// fakeInvalidURLParam is the 400 for an id in the path that the router let
// through but is not 26 alphanumerics.
func fakeInvalidURLParam(w http.ResponseWriter, param, reqID string) {
	fakeError(w, 400, "api.context.invalid_url_param.app_error", "Invalid or missing "+param+" parameter in request URL.", reqID)
}

// wire is the post as the API answers it (no omitted zero fields).
func (p *fakePost) wire() map[string]any {
	return map[string]any{
		"id": p.ID, "create_at": p.CreateAt, "update_at": p.UpdateAt, "edit_at": p.EditAt, "delete_at": 0,
		"user_id": p.UserID, "channel_id": p.ChannelID, "root_id": p.RootID, "message": p.Message,
		"type": "", "props": p.Props, "reply_count": p.ReplyCount,
	}
}

// autocompleteChannels is GET /teams/{id}/channels/autocomplete?name=: the
// team's channels whose name or display name starts with name, private ones
// the bot is in included.
func (f *fakeMattermost) autocompleteChannels(w http.ResponseWriter, teamID, name, reqID string) {
	prefix := strings.ToLower(name)
	f.teamChannels(w, teamID, reqID, func(c *fakeChannel) bool {
		return c.visible() && (strings.HasPrefix(strings.ToLower(c.Name), prefix) || strings.HasPrefix(strings.ToLower(c.DisplayName), prefix))
	})
}

// teamChannels answers with the team's channels that match, sorted by name.
func (f *fakeMattermost) teamChannels(w http.ResponseWriter, teamID, reqID string, match func(*fakeChannel) bool) {
	if !fakeValidID.MatchString(teamID) {
		fakeInvalidURLParam(w, "team_id", reqID)
		return
	}
	tm := f.teamIDs[teamID]
	if tm == nil {
		fakeError(w, 404, "app.team.get_member.missing.app_error", "No team member found for that user ID and team ID.", reqID)
		return
	}
	found := []mmChannel{}
	for _, c := range tm.channels {
		if match(c) {
			found = append(found, c.mmChannel)
		}
	}
	slices.SortFunc(found, func(a, b mmChannel) int { return strings.Compare(a.Name, b.Name) })
	fakeJSON(w, 200, found)
}

// channelMember is GET /channels/{id}/members/{user_id}; the fake tracks
// only the bot's memberships. A real server answers 403 for a channel the
// bot is not in, open or private.
func (f *fakeMattermost) channelMember(w http.ResponseWriter, channelID, userID, reqID string) {
	c := f.channels[channelID]
	if c == nil || !c.botMember {
		fakeError(w, 403, "api.context.permissions.app_error", "You do not have the appropriate permissions.", reqID)
		return
	}
	if userID != f.botID {
		fakeError(w, 404, "app.channel.get_member.missing.app_error", "No channel member found for that user ID and channel ID.", reqID)
		return
	}
	fakeJSON(w, 200, map[string]any{"channel_id": channelID, "user_id": userID, "roles": "channel_user"})
}
