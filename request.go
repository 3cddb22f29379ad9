package main

// This file is the data path for one access request: what we remember about
// it in Teleport (pluginData), what to do next (decide, a pure function), and
// doing it (notifier.handle), writing the plugin data after every post so a
// crash can repeat at most one post.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gravitational/teleport/api/types"
)

// pluginName is the key our state is stored under in each request's plugin data.
const pluginName = "mattermost"

// States a root post can show. EXPIRED is ours: Teleport deletes the request.
const (
	statePending  = "PENDING"
	stateApproved = "APPROVED"
	stateDenied   = "DENIED"
	statePromoted = "PROMOTED"
	stateExpired  = "EXPIRED"
)

// postRef is one root post: the channel it is in and its id.
type postRef struct {
	ChannelID string
	PostID    string
}

// pluginData is what the daemon remembers about one request, stored in
// Teleport as a flat string map so that restarts neither repost nor lose posts.
type pluginData struct {
	Posts   []postRef // root posts, in the order they were made
	State   string    // state the root posts show; "" while root posting is unfinished
	Shown   int       // review count the root posts show
	Reviews int       // reviews already posted as thread replies
	Done    bool      // the final reply (resolution or expiry) is posted
}

// Keys of the stored map. Every key is always written (empty = absent), so
// the map we last read is a complete Expect for compare-and-swap.
var pluginDataKeys = [...]string{"posts", "state", "shown", "reviews", "done"}

func (d pluginData) encode() map[string]string {
	posts := make([]string, len(d.Posts))
	for i, p := range d.Posts {
		posts[i] = p.ChannelID + ":" + p.PostID
	}
	m := map[string]string{
		"posts":   strings.Join(posts, ","),
		"state":   d.State,
		"shown":   "",
		"reviews": "",
		"done":    "",
	}
	if d.Shown > 0 {
		m["shown"] = strconv.Itoa(d.Shown)
	}
	if d.Reviews > 0 {
		m["reviews"] = strconv.Itoa(d.Reviews)
	}
	if d.Done {
		m["done"] = "true"
	}
	return m
}

// decodePluginData reads the stored map; a value we cannot read is an error
// rather than a guess, since guessing could repost a request.
func decodePluginData(m map[string]string) (pluginData, error) {
	var d pluginData
	if s := m["posts"]; s != "" {
		for _, pair := range strings.Split(s, ",") {
			ch, post, ok := strings.Cut(pair, ":")
			if !ok || ch == "" || post == "" {
				return d, fmt.Errorf("plugin data: posts: malformed entry %q", pair)
			}
			d.Posts = append(d.Posts, postRef{ChannelID: ch, PostID: post})
		}
	}
	d.State = m["state"]
	for key, dst := range map[string]*int{"shown": &d.Shown, "reviews": &d.Reviews} {
		if s := m[key]; s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return d, fmt.Errorf("plugin data: %s: %q is not a count", key, s)
			}
			*dst = n
		}
	}
	d.Done = m["done"] == "true"
	return d, nil
}

func (d pluginData) hasPost(channelID string) bool {
	for _, p := range d.Posts {
		if p.ChannelID == channelID {
			return true
		}
	}
	return false
}

// event is the newest known version of one request, as the handler sees it.
type event struct {
	req     types.AccessRequest // nil when only a deletion is known
	deleted bool                // Teleport deleted the request (expiry or tctl rm)
	live    bool                // seen on the watch stream, not only in a backfill listing
}

// plan is what decide wants done for one request, in this order: root posts
// to channels that lack one, a thread reply per new review, an edit of every
// root post, and the final reply.
type plan struct {
	post    bool                 // post the root message to each target channel lacking one
	reviews []types.AccessReview // new reviews, oldest first
	state   string               // state the root posts must show
	shown   int                  // review count the root posts must show
	edit    bool                 // root posts must be edited to show state and review count
	final   bool                 // post the final reply
	skip    string               // why nothing is done, for the log; "" otherwise
}

// requestState maps Teleport's state onto the states our posts show.
func requestState(req types.AccessRequest) string {
	switch req.GetState() {
	case types.RequestState_PENDING:
		return statePending
	case types.RequestState_APPROVED:
		return stateApproved
	case types.RequestState_DENIED:
		return stateDenied
	case types.RequestState_PROMOTED:
		return statePromoted
	}
	return ""
}

func isFinal(state string) bool { return state != "" && state != statePending }

// decide is the whole policy: given the newest event and what is stored,
// which effects are still owed. It is monotonic, so an older or repeated
// event is a no-op: a resolved post never goes back to PENDING and a review
// is never replied to twice.
func decide(ev event, d pluginData) plan {
	if d.Done {
		return plan{skip: "already final"}
	}
	if ev.req == nil {
		if ev.deleted && len(d.Posts) > 0 {
			// Deleted, and all we know are the posts: mark them expired.
			return plan{state: stateExpired, shown: d.Shown, edit: true, final: true}
		}
		return plan{skip: "deleted before anything was posted"}
	}
	state := requestState(ev.req)
	if state == "" {
		return plan{skip: fmt.Sprintf("unknown state %v", ev.req.GetState())}
	}
	if ev.deleted && !isFinal(state) {
		state = stateExpired
	}
	var p plan
	if d.State == "" { // root posting never finished
		switch {
		case !isFinal(state):
			p.post = true
		case len(d.Posts) > 0:
			// Resolved while posting was unfinished: edit what exists.
		case ev.live && state != stateExpired:
			// Resolved within moments of being filed: post it anyway, so
			// the channel still shows what was granted or denied.
			p.post = true
		default:
			// Resolved or gone before we ever saw it (a backfill after
			// downtime): history that nobody needs to act on.
			return plan{skip: "resolved before it was posted"}
		}
	}
	reviews := ev.req.GetReviews()
	if len(reviews) > d.Reviews {
		p.reviews = reviews[d.Reviews:]
	}
	p.state, p.shown = state, max(len(reviews), d.Shown)
	// Root posts made in this pass show the current state; posts made
	// earlier are edited when what they show is behind.
	p.edit = len(d.Posts) > 0 && (d.State != state || d.Shown < p.shown)
	p.final = isFinal(state)
	return p
}

// resolver names who resolved a request: the author of the last review that
// proposed the final state, or "" (e.g. `tctl request approve`).
func resolver(req types.AccessRequest) string {
	reviews := req.GetReviews()
	for i := len(reviews) - 1; i >= 0; i-- {
		if reviews[i].ProposedState == req.GetState() {
			return reviews[i].Author
		}
	}
	return ""
}

// teleport is the part of the Teleport API the daemon uses; *client.Client
// implements it.
type teleport interface {
	GetAccessRequests(ctx context.Context, filter types.AccessRequestFilter) ([]types.AccessRequest, error)
	GetPluginData(ctx context.Context, filter types.PluginDataFilter) ([]types.PluginData, error)
	UpdatePluginData(ctx context.Context, params types.PluginDataUpdateParams) error
	NewWatcher(ctx context.Context, watch types.Watch) (types.Watcher, error)
	Close() error
}

// pluginDataStore reads and compare-and-swaps one request's plugin data.
type pluginDataStore struct {
	id       string
	tp       teleport
	expected map[string]string // what we last read or wrote
	data     pluginData
	gone     bool // the request is deleted: nothing can be stored any more
}

func loadPluginData(ctx context.Context, tp teleport, id string) (*pluginDataStore, error) {
	entries, err := tp.GetPluginData(ctx, types.PluginDataFilter{
		Kind: types.KindAccessRequest, Resource: id, Plugin: pluginName,
	})
	if err != nil {
		return nil, fmt.Errorf("read plugin data: %w", err)
	}
	s := &pluginDataStore{id: id, tp: tp, expected: map[string]string{}}
	for _, e := range entries {
		if entry := e.Entries()[pluginName]; entry != nil {
			for k, v := range entry.Data {
				s.expected[k] = v
			}
		}
	}
	for _, k := range pluginDataKeys {
		if _, ok := s.expected[k]; !ok {
			s.expected[k] = ""
		}
	}
	if s.data, err = decodePluginData(s.expected); err != nil {
		return nil, err
	}
	return s, nil
}

// Teleport's errors carry their kind as a marker method; matching on it
// keeps the trace module out of our direct imports.
func isCompareFailed(err error) bool {
	var e interface{ IsCompareFailedError() bool }
	return errors.As(err, &e) && e.IsCompareFailedError()
}

func isTeleportNotFound(err error) bool {
	var e interface{ IsNotFoundError() bool }
	return errors.As(err, &e) && e.IsNotFoundError()
}

// save stores d with compare-and-swap. When someone else wrote in between,
// it merges d into a fresh read and tries again, so what we did (posts made,
// replies sent) is never dropped; a transient failure is retried briefly,
// because a post whose reference is not stored may be repeated after a crash.
func (s *pluginDataStore) save(ctx context.Context, d pluginData) error {
	s.data = d
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if s.gone {
			return nil
		}
		next := s.data.encode()
		err := s.tp.UpdatePluginData(ctx, types.PluginDataUpdateParams{
			Kind: types.KindAccessRequest, Resource: s.id, Plugin: pluginName,
			Set: next, Expect: s.expected,
		})
		switch {
		case err == nil:
			s.expected = next
			return nil
		case isTeleportNotFound(err):
			// The request was deleted under us: its deletion event
			// follows, and the notifier's memory of the posts serves it.
			s.gone = true
			return nil
		case attempt == 5:
			return fmt.Errorf("write plugin data (%d attempts): %w", attempt, err)
		case isCompareFailed(err):
			fresh, err := loadPluginData(ctx, s.tp, s.id)
			if err != nil {
				return err
			}
			s.expected = fresh.expected
			s.data = mergeData(fresh.data, s.data)
		default:
			if sleepCtx(ctx, delay) != nil {
				return fmt.Errorf("write plugin data: %w", err)
			}
			delay *= 2
		}
	}
}

// mergeData combines two accounts of one request into the one that
// has everything either has done.
func mergeData(a, b pluginData) pluginData {
	out := a
	for _, p := range b.Posts {
		if !out.hasPost(p.ChannelID) {
			out.Posts = append(out.Posts, p)
		}
	}
	if stateRank(b.State) > stateRank(a.State) {
		out.State = b.State
	}
	out.Shown = max(a.Shown, b.Shown)
	out.Reviews = max(a.Reviews, b.Reviews)
	out.Done = a.Done || b.Done
	return out
}

func stateRank(s string) int {
	switch s {
	case "":
		return 0
	case statePending:
		return 1
	}
	return 2
}

func (d pluginData) equal(o pluginData) bool {
	return slices.Equal(d.Posts, o.Posts) && d.State == o.State && d.Shown == o.Shown &&
		d.Reviews == o.Reviews && d.Done == o.Done
}

// openRequest is what the notifier remembers in memory about a request that
// is not final yet. Teleport deletes plugin data together with the request,
// so an expiry can only find the posts (and the text to edit them with) here.
type openRequest struct {
	req  types.AccessRequest
	data pluginData
}

// requestTargets are the resolved channels one request is posted to.
type requestTargets struct {
	channels []string // channel ids, de-duplicated, in recipient order
	failed   int      // recipients that could not be resolved (logged)
}

// notifier carries out plans against Mattermost and Teleport. Its functions
// read the daemon's current clients and config, which a reload may replace.
type notifier struct {
	log     *slog.Logger
	tp      func() teleport
	mm      func() *mattermost
	view    func(req types.AccessRequest, state string) requestView
	targets func(context.Context, types.AccessRequest) (requestTargets, error)
	forget  func(channelID string) // drop a cached channel after 403/404

	mu   sync.Mutex
	open map[string]openRequest
}

func (n *notifier) remember(id string, req types.AccessRequest, d pluginData) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.open == nil {
		n.open = make(map[string]openRequest)
	}
	if d.Done {
		delete(n.open, id)
		return
	}
	old := n.open[id]
	if req == nil {
		req = old.req
	}
	// Keep every post ever made for the request, even if this pass's data
	// came from an empty read: a post must never be forgotten.
	n.open[id] = openRequest{req: req, data: mergeData(d, old.data)}
}

// recallAll loads the stored posts of every open request in reqs into
// memory with one read, before any of them is handled: a request deleted
// while a backfill is still being worked through can then still be marked
// expired. A failure only narrows that; handling reads the data again.
func (n *notifier) recallAll(ctx context.Context, tp teleport, reqs []types.AccessRequest) {
	entries, err := tp.GetPluginData(ctx, types.PluginDataFilter{Kind: types.KindAccessRequest, Plugin: pluginName})
	if err != nil {
		n.log.Debug("backfill: read all plugin data", "error", err)
		return
	}
	byID := make(map[string]types.AccessRequest, len(reqs))
	for _, r := range reqs {
		byID[r.GetName()] = r
	}
	for _, e := range entries {
		req, ok := byID[e.GetName()]
		entry := e.Entries()[pluginName]
		if !ok || entry == nil {
			continue
		}
		if d, err := decodePluginData(entry.Data); err == nil && len(d.Posts) > 0 {
			n.remember(req.GetName(), req, d)
		}
	}
}

func (n *notifier) recall(id string) (openRequest, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o, ok := n.open[id]
	return o, ok
}

func (n *notifier) forgetRequest(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.open, id)
}

// handle brings one request's posts up to date with ev. It is safe to call
// again with the same or an older event: the stored state says what is done.
func (n *notifier) handle(ctx context.Context, id string, ev event) error {
	store, err := loadPluginData(ctx, n.tp(), id)
	if isTeleportNotFound(err) {
		store, err = &pluginDataStore{id: id, tp: n.tp(), expected: pluginData{}.encode()}, nil
	}
	if err != nil {
		return fmt.Errorf("request %s: %w", id, err)
	}
	// What this process did but could not store yet (Teleport failed the
	// write, or deleted the request with its plugin data) counts as done.
	stored := store.data
	if o, ok := n.recall(id); ok {
		store.data = mergeData(store.data, o.data)
		if ev.req == nil {
			ev.req = o.req
		}
	}
	if ev.deleted && len(store.data.Posts) == 0 {
		n.log.Info("request deleted; no posts of it are known to this daemon", "request", id)
		return nil
	}
	p := decide(ev, store.data)
	if p.skip != "" {
		n.log.Debug("nothing to do", "request", id, "reason", p.skip)
		err = nil
		if !store.data.equal(stored) {
			err = store.save(ctx, store.data)
		}
	} else {
		err = n.apply(ctx, store, ev.req, p, ev.live)
	}
	if ev.deleted && err == nil {
		n.forgetRequest(id)
	} else if ev.req != nil {
		n.remember(id, ev.req, store.data)
	}
	if err != nil {
		return fmt.Errorf("request %s: %w", id, err)
	}
	if p.skip == "" {
		d := store.data
		n.log.Info("request updated", "request", id, "state", d.State, "posts", len(d.Posts), "reviews", d.Reviews)
	}
	return nil
}

// apply carries out p, saving after each step that must not be repeated.
// live says the event came from the watch stream, not a backfill listing.
func (n *notifier) apply(ctx context.Context, store *pluginDataStore, req types.AccessRequest, p plan, live bool) error {
	mm := n.mm()
	d := store.data
	if p.post {
		if err := n.postRoots(ctx, store, mm, req, p.state, p.shown, !live); err != nil {
			return err
		}
		d = store.data
		if len(d.Posts) == 0 {
			return nil // no recipients; logged by postRoots
		}
	}
	for _, rv := range p.reviews {
		text := renderReview(reviewView{
			Author: rv.Author, Verdict: verdict(rv.ProposedState), Reason: rv.Reason, Created: rv.Created,
		})
		if err := n.reply(ctx, mm, d.Posts, text); err != nil {
			return fmt.Errorf("review by %s: %w", rv.Author, err)
		}
		d.Reviews++
		if err := store.save(ctx, d); err != nil {
			return err
		}
	}
	if p.edit {
		v := requestView{ID: store.id, State: p.state}
		if req != nil {
			v = n.view(req, p.state)
		}
		v.Reviews = p.shown
		if err := n.edit(ctx, mm, d.Posts, v); err != nil {
			return err
		}
	}
	d.State, d.Shown = p.state, p.shown
	if p.final {
		who, reason := "", ""
		if p.state != stateExpired {
			who, reason = resolver(req), req.GetResolveReason()
		}
		if err := n.reply(ctx, mm, d.Posts, renderResolution(p.state, who, reason)); err != nil {
			return fmt.Errorf("final reply: %w", err)
		}
		d.Done = true
	}
	if d.equal(store.data) {
		return nil // stored already, with the last root post
	}
	return store.save(ctx, d)
}

// postRoots posts the request to every target channel that lacks a root
// post, saving after each post: a crash repeats at most that one post.
//
// The write after the last post also records the state the posts show,
// which saves apply a write of its own. verify checks first that the
// request still exists.
func (n *notifier) postRoots(ctx context.Context, store *pluginDataStore, mm *mattermost, req types.AccessRequest, state string, shown int, verify bool) error {
	targets, err := n.targets(ctx, req)
	if err != nil {
		return err
	}
	d := store.data
	if len(targets.channels) == 0 && len(d.Posts) == 0 {
		if targets.failed > 0 {
			// Every recipient failed: keep retrying rather than drop it.
			return fmt.Errorf("none of its %d recipients could be resolved", targets.failed)
		}
		n.log.Info("request has no recipients; not posted (set mattermost.recipients or role_to_recipients, or file it with --reviewers=<email>)",
			"request", req.GetName())
		return nil
	}
	if verify && len(d.Posts) == 0 && !store.gone {
		// A backfill's listing may be older than a deletion: make sure the
		// request still exists (a write to a deleted one is NotFound)
		// before posting it. A watch event needs no check: a deletion
		// after it follows it through the queue.
		if err := store.save(ctx, d); err != nil {
			return err
		}
		if store.gone {
			n.log.Info("request deleted before it was posted", "request", req.GetName())
			return nil
		}
	}
	message, props := renderRequest(n.view(req, state))
	for i, ch := range targets.channels {
		if d.hasPost(ch) {
			continue
		}
		post, err := mm.createPost(ctx, mmPost{ChannelID: ch, Message: message, Props: props})
		if isForbidden(err) || isNotFound(err) {
			n.forget(ch)
			n.log.Warn("cannot post to channel; skipping it (is the bot a member? /invite @<bot>)",
				"request", req.GetName(), "channel", ch, "error", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("post to channel %s: %w", ch, err)
		}
		d.Posts = append(d.Posts, postRef{ChannelID: ch, PostID: post.ID})
		if i == len(targets.channels)-1 {
			d.State, d.Shown = state, shown // every root post is made
		}
		if err := store.save(ctx, d); err != nil {
			return fmt.Errorf("after creating post %s: %w", post.ID, err)
		}
	}
	return nil
}

func (n *notifier) reply(ctx context.Context, mm *mattermost, roots []postRef, message string) error {
	for _, root := range roots {
		_, err := mm.createPost(ctx, mmPost{ChannelID: root.ChannelID, RootID: root.PostID, Message: message})
		if isForbidden(err) || isNotFound(err) {
			// The bot lost the channel or the post was deleted: nothing
			// more can be said there, and retrying will not change it.
			n.log.Warn("cannot reply in thread; skipping it", "channel", root.ChannelID, "post", root.PostID, "error", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("reply to post %s: %w", root.PostID, err)
		}
	}
	return nil
}

func (n *notifier) edit(ctx context.Context, mm *mattermost, roots []postRef, v requestView) error {
	message, props := renderRequest(v)
	// A patch with props replaces them all, and the server sets from_bot
	// only on create: keep the BOT badge on edited posts.
	props["from_bot"] = "true"
	for _, root := range roots {
		_, err := mm.patchPost(ctx, root.PostID, message, props)
		if isForbidden(err) || isNotFound(err) {
			n.log.Warn("cannot edit post; skipping it", "post", root.PostID, "error", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("edit post %s: %w", root.PostID, err)
		}
	}
	return nil
}

func verdict(s types.RequestState) string {
	if s == types.RequestState_APPROVED {
		return stateApproved
	}
	return stateDenied
}

// resourceNames renders requested resources as /cluster/kind/name, sorted
// for a stable post.
func resourceNames(req types.AccessRequest) []string {
	ids := req.GetRequestedResourceIDs()
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, types.ResourceIDToString(id))
	}
	sort.Strings(out)
	return out
}
