package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/types"
)

// accessRequest builds a request in state with one review per verdict given.
func accessRequest(t testing.TB, id string, state types.RequestState, verdicts ...types.RequestState) types.AccessRequest {
	t.Helper()
	req, err := types.NewAccessRequest(id, "alice@example.com", "editor")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range verdicts {
		req.SetReviews(append(req.GetReviews(), types.AccessReview{
			Author: []string{"bob", "carol", "dave"}[i%3], ProposedState: v,
			Reason: "ok", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}))
	}
	if err := req.SetState(state); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestDecide(t *testing.T) {
	pending := types.RequestState_PENDING
	approved := types.RequestState_APPROVED
	denied := types.RequestState_DENIED
	posted := pluginData{Posts: []postRef{{"c1", "p1"}, {"c2", "p2"}}, State: statePending}
	half := pluginData{Posts: []postRef{{"c1", "p1"}}} // crashed while posting roots

	tests := []struct {
		name string
		ev   event
		data pluginData
		want plan // reviews compared by count only
		nrev int
	}{
		{"new pending request is posted", event{req: accessRequest(t, "r", pending)}, pluginData{},
			plan{post: true, state: statePending}, 0},
		{"pending with reviews before first post: post, then reply each", event{req: accessRequest(t, "r", pending, approved, denied)}, pluginData{},
			plan{post: true, state: statePending, shown: 2}, 2},
		{"unfinished root posting resumes and re-edits", event{req: accessRequest(t, "r", pending)}, half,
			plan{post: true, state: statePending, edit: true}, 0},
		{"same event again is a no-op", event{req: accessRequest(t, "r", pending)}, posted,
			plan{state: statePending}, 0},
		{"one new review: reply and edit count", event{req: accessRequest(t, "r", pending, approved)}, posted,
			plan{state: statePending, shown: 1, edit: true}, 1},
		{"only reviews beyond the stored count", event{req: accessRequest(t, "r", pending, approved, denied, approved)},
			pluginData{Posts: posted.Posts, State: statePending, Shown: 2, Reviews: 2},
			plan{state: statePending, shown: 3, edit: true}, 1},
		{"older event with fewer reviews is a no-op", event{req: accessRequest(t, "r", pending, approved)},
			pluginData{Posts: posted.Posts, State: statePending, Shown: 2, Reviews: 2},
			plan{state: statePending, shown: 2}, 0},
		{"crash between the reply and the edit: edit still owed", event{req: accessRequest(t, "r", pending, approved)},
			pluginData{Posts: posted.Posts, State: statePending, Shown: 0, Reviews: 1},
			plan{state: statePending, shown: 1, edit: true}, 0},
		{"approved: reply, edit, final", event{req: accessRequest(t, "r", approved, approved)}, posted,
			plan{state: stateApproved, shown: 1, edit: true, final: true}, 1},
		{"denied without a review (tctl)", event{req: accessRequest(t, "r", denied)}, posted,
			plan{state: stateDenied, edit: true, final: true}, 0},
		{"promoted", event{req: accessRequest(t, "r", types.RequestState_PROMOTED)}, posted,
			plan{state: statePromoted, edit: true, final: true}, 0},
		{"final already posted: nothing, even for a pending replay", event{req: accessRequest(t, "r", pending)},
			pluginData{Posts: posted.Posts, State: stateApproved, Done: true}, plan{skip: "already final"}, 0},
		{"resolved before anything was posted, seen in a backfill: history", event{req: accessRequest(t, "r", approved)}, pluginData{},
			plan{skip: "resolved before it was posted"}, 0},
		{"resolved before anything was posted, seen live: posted as resolved", event{req: accessRequest(t, "r", approved, approved), live: true}, pluginData{},
			plan{post: true, state: stateApproved, shown: 1, final: true}, 1},
		{"deleted before anything was posted, seen live", event{req: accessRequest(t, "r", pending), deleted: true, live: true}, pluginData{},
			plan{skip: "resolved before it was posted"}, 0},
		{"resolved while root posting was unfinished: edit what exists", event{req: accessRequest(t, "r", denied)}, half,
			plan{state: stateDenied, edit: true, final: true}, 0},
		{"deletion of a posted request expires it", event{deleted: true}, posted,
			plan{state: stateExpired, edit: true, final: true}, 0},
		{"deletion with the request known", event{req: accessRequest(t, "r", pending), deleted: true}, posted,
			plan{state: stateExpired, edit: true, final: true}, 0},
		{"deletion of an approved request keeps APPROVED", event{req: accessRequest(t, "r", approved), deleted: true}, posted,
			plan{state: stateApproved, edit: true, final: true}, 0},
		{"deletion before posting", event{deleted: true}, pluginData{},
			plan{skip: "deleted before anything was posted"}, 0},
		{"pending and deleted before posting", event{req: accessRequest(t, "r", pending), deleted: true}, pluginData{},
			plan{skip: "resolved before it was posted"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.ev, tt.data)
			if len(got.reviews) != tt.nrev {
				t.Errorf("reviews = %d, want %d", len(got.reviews), tt.nrev)
			}
			got.reviews = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecideRepliesToTheNewestReviews(t *testing.T) {
	req := accessRequest(t, "r", types.RequestState_PENDING,
		types.RequestState_APPROVED, types.RequestState_DENIED, types.RequestState_APPROVED)
	p := decide(event{req: req}, pluginData{Posts: []postRef{{"c", "p"}}, State: statePending, Reviews: 1})
	if len(p.reviews) != 2 || p.reviews[0].Author != "carol" || p.reviews[1].Author != "dave" {
		t.Fatalf("reviews = %+v, want carol then dave", p.reviews)
	}
}

func TestPluginDataRoundTrip(t *testing.T) {
	for _, d := range []pluginData{
		{},
		{Posts: []postRef{{"c1", "p1"}}},
		{Posts: []postRef{{"c1", "p1"}, {"c2", "p2"}}, State: statePending, Shown: 3, Reviews: 3},
		{Posts: []postRef{{"c1", "p1"}}, State: stateExpired, Reviews: 1, Done: true},
	} {
		m := d.encode()
		for _, k := range pluginDataKeys {
			if _, ok := m[k]; !ok {
				t.Errorf("encode(%+v) lacks key %q, so it cannot serve as a full Expect", d, k)
			}
		}
		got, err := decodePluginData(m)
		if err != nil {
			t.Fatalf("decode(%v): %v", m, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("round trip: got %+v, want %+v", got, d)
		}
	}
}

func TestDecodePluginDataRejectsGarbage(t *testing.T) {
	for _, m := range []map[string]string{
		{"posts": "c1"},
		{"posts": "c1:p1,:p2"},
		{"reviews": "many"},
		{"reviews": "-1"},
		{"shown": "x"},
	} {
		if _, err := decodePluginData(m); err == nil {
			t.Errorf("decode(%v) succeeded; a guess could repost the request", m)
		}
	}
}

func TestResolver(t *testing.T) {
	req := accessRequest(t, "r", types.RequestState_APPROVED, types.RequestState_DENIED, types.RequestState_APPROVED)
	if got := resolver(req); got != "carol" {
		t.Errorf("resolver = %q, want carol (the last approving review)", got)
	}
	if got := resolver(accessRequest(t, "r", types.RequestState_DENIED)); got != "" {
		t.Errorf("resolver without reviews = %q, want empty", got)
	}
}

func TestMergeKeepsTheMostAdvancedVersion(t *testing.T) {
	one := accessRequest(t, "r", types.RequestState_PENDING, types.RequestState_APPROVED)
	two := accessRequest(t, "r", types.RequestState_PENDING, types.RequestState_APPROVED, types.RequestState_APPROVED)
	done := accessRequest(t, "r", types.RequestState_DENIED)
	if got := merge(event{req: two}, event{req: one}); got.req != two {
		t.Error("an older listing replaced a newer event")
	}
	if got := merge(event{req: one}, event{req: two}); got.req != two {
		t.Error("a newer event did not replace an older one")
	}
	if got := merge(event{req: two}, event{req: done}); got.req != done {
		t.Error("a resolution did not win over reviews")
	}
	if got := merge(event{req: two}, event{deleted: true}); got.req != two || !got.deleted {
		t.Errorf("deletion lost the request or the flag: %+v", got)
	}
	// A pending event from the stream merged with an approval from a
	// backfill listing is still live: it is posted, as APPROVED.
	got := merge(event{req: one, live: true}, event{req: done})
	if !got.live || got.req != done {
		t.Errorf("merge = %+v, want the resolution, live", got)
	}
	if p := decide(got, pluginData{}); !p.post || p.state != stateDenied || !p.final {
		t.Errorf("decide(merged) = %+v, want a post showing DENIED and a final reply", p)
	}
}
