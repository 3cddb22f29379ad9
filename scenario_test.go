package main

// One TestScenario per behaviour, each through the real wire: the daemon as
// main starts it, the api client over gRPC+mTLS to the fake auth server, and
// the Mattermost client over HTTP to the fake Mattermost.

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/types"
)

const oneChannel = `recipients = ["myteam/general"]`

func wantIn(t testing.TB, what, text string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(text, p) {
			t.Errorf("%s lacks %q:\n%s", what, p, text)
		}
	}
}

func TestScenarioNewRequestToChannel(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	req := h.auth.createRequest("alice@example.com", []string{"editor"}, "deploy hotfix")
	root := h.waitRoots(h.general, req.GetName(), 1)[0]
	wantIn(t, "root post", root.Message, escapeText("alice@example.com"), "editor", "deploy hotfix", "PENDING",
		"https://teleport.example.com/web/requests/"+req.GetName(), escapeText("example.com"))
	d := h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	if len(d.Posts) != 1 || d.Posts[0] != (postRef{h.general, root.ID}) {
		t.Errorf("plugin data posts = %+v, want the one root post %s", d.Posts, root.ID)
	}
	if n := len(h.roots(h.general)); n != 1 {
		t.Errorf("%d root posts, want 1", n)
	}
}

func TestScenarioEmailRecipientGetsDirectMessage(t *testing.T) {
	h := newHarness(t, `recipients = ["alice@example.com"]`)
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	dm := h.dm(h.aliceID)
	if dm == "" {
		t.Fatal("no direct channel between the bot and alice")
	}
	h.waitRoots(dm, req.GetName(), 1)
}

func TestScenarioSuggestedReviewersGetDirectMessages(t *testing.T) {
	h := newHarness(t, "") // no static recipients at all
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "", "bob@example.com", "not-an-email")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	h.waitRoots(h.dm(h.bobID), req.GetName(), 1)
	if h.dm(h.aliceID) != "" {
		t.Error("alice was messaged but is not a reviewer")
	}
}

func TestScenarioRoleRoutingWithDefault(t *testing.T) {
	h := newHarness(t, `
[role_to_recipients]
"*" = ["myteam/general"]
dbadmin = ["myteam/dba", "alice@example.com"]
`)
	h.start()
	db := h.auth.createRequest("carol", []string{"dbadmin"}, "")
	ed := h.auth.createRequest("carol", []string{"editor"}, "")
	both := h.auth.createRequest("carol", []string{"dbadmin", "editor"}, "")
	for _, id := range []string{db.GetName(), ed.GetName(), both.GetName()} {
		h.waitPluginData(id, func(d pluginData) bool { return d.State == statePending })
	}
	dm := h.dm(h.aliceID)
	count := func(ch, id string) int {
		n := 0
		for _, p := range h.roots(ch) {
			if strings.Contains(p.Message, id) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		id                string
		general, dba, dms int
	}{
		{db.GetName(), 0, 1, 1},
		{ed.GetName(), 1, 0, 0},
		{both.GetName(), 1, 1, 1},
	} {
		if got := [3]int{count(h.general, c.id), count(h.dba, c.id), count(dm, c.id)}; got != [3]int{c.general, c.dba, c.dms} {
			t.Errorf("request %s: posts in general/dba/alice = %v, want %v", c.id, got, [3]int{c.general, c.dba, c.dms})
		}
	}
}

func TestScenarioNoRecipientsIsSkipped(t *testing.T) {
	h := newHarness(t, "")
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitHandled(req.GetName(), 1)
	if n := len(h.mm.posts()); n != 0 {
		t.Errorf("%d posts, want none", n)
	}
	wantIn(t, "log", h.log(), "no recipients", req.GetName())
}

func TestScenarioReviewsBecomeThreadRepliesInOrder(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	root := h.waitRoots(h.general, req.GetName(), 1)[0]
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })

	h.auth.addReview(req.GetName(), "bob", true, "looks fine")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.Reviews == 1 })
	h.auth.addReview(req.GetName(), "dave", false, "not today")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.Reviews == 2 })

	replies := h.replies(root.ID)
	if len(replies) != 2 {
		t.Fatalf("%d replies, want 2", len(replies))
	}
	wantIn(t, "first reply", replies[0].Message, "bob", "looks fine")
	wantIn(t, "second reply", replies[1].Message, "dave", "not today")
	for _, r := range replies {
		if r.ChannelID != h.general {
			t.Errorf("reply in channel %s, want %s", r.ChannelID, h.general)
		}
	}
	h.mm.waitFor(t, "the root post to show 2 reviews", func() bool {
		edited := h.roots(h.general)[0]
		return edited.EditAt > 0 && strings.Contains(edited.Message, "Reviews:** 2")
	})
}

func TestScenarioResolutionsEditPostsAndReply(t *testing.T) {
	for _, c := range []struct {
		state types.RequestState
		word  string
	}{
		{types.RequestState_APPROVED, stateApproved},
		{types.RequestState_DENIED, stateDenied},
		{types.RequestState_PROMOTED, statePromoted},
	} {
		t.Run(c.word, func(t *testing.T) {
			h := newHarness(t, `recipients = ["myteam/general", "alice@example.com"]`)
			h.start()
			req := h.auth.createRequest("carol", []string{"editor"}, "")
			h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
			h.auth.resolve(req.GetName(), c.state, "ticket OPS-42")
			d := h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.Done })
			if d.State != c.word || len(d.Posts) != 2 {
				t.Fatalf("plugin data %+v, want %s with 2 posts", d, c.word)
			}
			for _, ref := range d.Posts {
				var root mmPost
				for _, p := range h.mm.posts() {
					if p.ID == ref.PostID {
						root = p
					}
				}
				wantIn(t, "edited root", root.Message, c.word, "ticket OPS-42")
				if root.EditAt == 0 {
					t.Errorf("root %s not edited", root.ID)
				}
				replies := h.replies(ref.PostID)
				if len(replies) != 1 {
					t.Fatalf("%d replies to %s, want the final one", len(replies), ref.PostID)
				}
			}
		})
	}
}

func TestScenarioExpiryMarksPostsExpired(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "please")
	root := h.waitRoots(h.general, req.GetName(), 1)[0]
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	h.auth.deleteRequest(req.GetName())
	h.mm.waitFor(t, "final reply", func() bool { return len(h.replies(root.ID)) == 1 })
	edited := h.roots(h.general)[0]
	wantIn(t, "expired root", edited.Message, stateExpired, "carol", "please")
}

func TestScenarioRestartAfterPostingNeitherRepostsNorLosesPosts(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	root := h.waitRoots(h.general, req.GetName(), 1)[0]
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	h.stop()

	h.start() // backfill sees the request again
	h.waitHandled(req.GetName(), 2)
	h.auth.resolve(req.GetName(), types.RequestState_APPROVED, "")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.Done })
	roots := h.roots(h.general)
	if len(roots) != 1 || roots[0].ID != root.ID {
		t.Fatalf("root posts after restart: %v, want only %s", roots, root.ID)
	}
	wantIn(t, "edited root", roots[0].Message, stateApproved)
}

func TestScenarioRestartBeforePluginDataWriteRepostsOnce(t *testing.T) {
	// Documented behaviour: a post whose plugin-data write never happened
	// (crash, or Teleport down between the two) is made again, once.
	h := newHarness(t, oneChannel)
	// Teleport stops taking writes the moment Mattermost takes the post.
	var once sync.Once
	h.mm.setFault(func(r *http.Request) (int, http.Header) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v4/posts" {
			once.Do(func() { h.auth.failNext("UpdatePluginData", 1000) })
		}
		return 0, nil
	})
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, req.GetName(), 1)
	h.stop()
	h.auth.failNext("UpdatePluginData", 0)

	h.start()
	d := h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	roots := h.waitRoots(h.general, req.GetName(), 2)
	if len(roots) != 2 || len(d.Posts) != 1 || d.Posts[0].PostID != roots[1].ID {
		t.Errorf("roots %v, stored %+v: want the post repeated once and the second one stored", roots, d.Posts)
	}
}

func TestScenarioUnresolvableRecipientDoesNotStopOthers(t *testing.T) {
	h := newHarness(t, `recipients = ["myteam/nope", "myteam/outsiders", "nobody@example.com", "myteam/general"]`)
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, req.GetName(), 1)
	d := h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	if len(d.Posts) != 1 {
		t.Errorf("posts %+v, want only general", d.Posts)
	}
	wantIn(t, "log", h.log(), "myteam/nope", "nobody@example.com", "/invite")
}

func TestScenarioMattermost500ThenOKDeliversOnce(t *testing.T) {
	h := newHarness(t, oneChannel)
	var failed atomic.Int32
	h.mm.setFault(func(r *http.Request) (int, http.Header) {
		if r.Method == "POST" && r.URL.Path == "/api/v4/posts" && failed.Add(1) <= 2 {
			return http.StatusInternalServerError, nil
		}
		return 0, nil
	})
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitPluginData(req.GetName(), func(d pluginData) bool { return d.State == statePending })
	if n := len(h.roots(h.general)); n != 1 {
		t.Errorf("%d root posts after two 500s, want 1", n)
	}
	if failed.Load() < 3 {
		t.Errorf("fault hook saw %d post attempts, want the 2 failures and a success", failed.Load())
	}
}

func TestScenarioStreamDropReconnectsAndContinues(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	h.auth.dropWatchers()
	h.auth.waitFor(t, "a new watcher", func() bool { return h.auth.watchers() == 1 })
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, req.GetName(), 1)
	wantIn(t, "log", h.log(), "reconnecting")
}

func TestScenarioRequestFiledWhileDownIsBackfilled(t *testing.T) {
	h := newHarness(t, oneChannel)
	req := h.auth.createRequest("carol", []string{"editor"}, "filed while down")
	h.start()
	h.waitRoots(h.general, req.GetName(), 1)
}

func TestScenarioRotatedIdentityIsUsedAfterSIGHUP(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	h.auth.writeIdentity(t, h.identity, "rotated-plugin")
	if err := h.sighup(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	h.auth.waitFor(t, "a call with the new identity", func() bool {
		return h.auth.clientUsers()[len(h.auth.clientUsers())-1] == "rotated-plugin"
	})
	h.auth.waitFor(t, "a watcher on the new connection", func() bool { return h.auth.watchers() == 1 })
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, req.GetName(), 1)
}

func TestScenarioSIGHUPNewRecipientsApplyToNextRequest(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	first := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, first.GetName(), 1)

	h.writeConfig(`recipients = ["myteam/dba"]`)
	if err := h.sighup(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	second := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.dba, second.GetName(), 1)
	for _, p := range h.roots(h.general) {
		if strings.Contains(p.Message, second.GetName()) {
			t.Error("the second request went to the old recipient")
		}
	}
}

func TestScenarioBadReloadKeepsRunningConfig(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.start()
	if err := os.WriteFile(h.config, []byte("[mattermost]\nurl = 42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := h.sighup()
	if err == nil || !strings.Contains(err.Error(), "mattermost.url") {
		t.Fatalf("reload of a bad config: %v, want an error naming mattermost.url", err)
	}
	wantIn(t, "log", h.log(), "keeping the running config")
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, req.GetName(), 1)
}

func TestScenarioGracefulStopFinishesInFlightPost(t *testing.T) {
	h := newHarness(t, oneChannel)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.mm.setFault(func(r *http.Request) (int, http.Header) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v4/posts" {
			once.Do(func() { close(entered); <-release })
		}
		return 0, nil
	})
	h.start()
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	<-entered
	h.cancel() // SIGTERM while the post is in flight
	h.cancel = nil
	close(release)
	if err := <-h.done; err != nil {
		t.Fatalf("start returned %v after a graceful stop", err)
	}
	d, err := decodePluginData(h.auth.pluginData(req.GetName()))
	if err != nil || len(d.Posts) != 1 || d.State != statePending {
		t.Errorf("after stop: plugin data %+v (%v), want the in-flight post stored", d, err)
	}
	wantIn(t, "log", h.log(), "finishing in-flight work", "teleport-mattermost stopped")
}

func TestScenarioIdentityFileRefreshedPeriodically(t *testing.T) {
	h := newHarness(t, oneChannel)
	h.timing.identityCheck = 10 * time.Millisecond
	h.start()
	h.auth.writeIdentity(t, h.identity, "renewed-by-tbot")
	h.auth.waitFor(t, "a watcher opened with the renewed identity", func() bool {
		users, rpcs := h.auth.clientUsers(), h.auth.rpcs()
		for i := range rpcs {
			if rpcs[i] == "WatchEvents" && users[i] == "renewed-by-tbot" {
				return true
			}
		}
		return false
	})
	req := h.auth.createRequest("carol", []string{"editor"}, "")
	h.waitRoots(h.general, req.GetName(), 1)
}
