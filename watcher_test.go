package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gravitational/teleport/api/types"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestQueueHandlesEachRequestInOrderAndBoundsConcurrency(t *testing.T) {
	const concurrency = 3
	var mu sync.Mutex
	running, peak := 0, 0
	seen := map[string][]int{} // request -> review counts in handling order
	release := make(chan struct{})
	newest := make(chan struct{}, 100) // one per handling of the newest version
	handle := func(ctx context.Context, id string, ev event) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		seen[id] = append(seen[id], len(ev.req.GetReviews()))
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		if len(ev.req.GetReviews()) == 2 {
			newest <- struct{}{}
		}
		return nil
	}
	q := newQueue(context.Background(), concurrency, handle, discardLog(), time.Millisecond, time.Millisecond)
	ids := []string{"a", "b", "c", "d", "e"}
	for _, id := range ids {
		q.put(id, event{req: accessRequest(t, id, types.RequestState_PENDING)})
	}
	// While the first versions are being handled, two newer ones arrive per
	// request; they are merged into the newest.
	for _, id := range ids {
		q.put(id, event{req: accessRequest(t, id, types.RequestState_PENDING, types.RequestState_APPROVED)})
		q.put(id, event{req: accessRequest(t, id, types.RequestState_PENDING, types.RequestState_APPROVED, types.RequestState_DENIED)})
	}
	close(release)
	for range ids {
		<-newest
	}
	if !q.stop(5 * time.Second) {
		t.Fatal("queue did not stop")
	}
	if peak > concurrency {
		t.Errorf("peak concurrency %d > %d", peak, concurrency)
	}
	for _, id := range ids {
		// A request is handled in the newest version at the time its worker
		// gets a slot, so versions may be skipped but never go backwards.
		got := seen[id]
		ok := len(got) > 0 && got[len(got)-1] == 2
		for i := 1; i < len(got); i++ {
			ok = ok && got[i] > got[i-1]
		}
		if !ok {
			t.Errorf("request %s handled with review counts %v, want increasing and ending in 2", id, got)
		}
	}
}

func TestQueueRetriesUntilDelivered(t *testing.T) {
	attempts := 0
	done := make(chan struct{})
	handle := func(ctx context.Context, id string, ev event) error {
		attempts++
		if attempts < 4 {
			return errors.New("mattermost: 503")
		}
		close(done)
		return nil
	}
	q := newQueue(context.Background(), 1, handle, discardLog(), time.Millisecond, 4*time.Millisecond)
	q.put("r", event{req: accessRequest(t, "r", types.RequestState_PENDING)})
	<-done
	if !q.stop(5 * time.Second) {
		t.Fatal("queue did not stop")
	}
	if attempts != 4 {
		t.Errorf("attempts = %d, want 4", attempts)
	}
}

func TestQueueStopFinishesInFlightAndDropsTheRest(t *testing.T) {
	inFlight := make(chan struct{})
	finish := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	handle := func(ctx context.Context, id string, ev event) error {
		if id == "first" {
			close(inFlight)
			<-finish
		}
		mu.Lock()
		handled = append(handled, id)
		mu.Unlock()
		return nil
	}
	q := newQueue(context.Background(), 1, handle, discardLog(), time.Millisecond, time.Millisecond)
	q.put("first", event{deleted: true})
	<-inFlight
	q.put("second", event{deleted: true}) // waits for the only slot
	q.close()
	close(finish)
	if !q.stop(5 * time.Second) {
		t.Fatal("stop timed out")
	}
	q.put("third", event{deleted: true}) // after stop: ignored
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || handled[0] != "first" {
		t.Errorf("handled %v, want only the in-flight [first]", handled)
	}
}

func TestWebHost(t *testing.T) {
	for in, want := range map[string]string{
		"teleport.example.com:443":  "teleport.example.com",
		"teleport.example.com:3080": "teleport.example.com:3080",
		"teleport.example.com":      "teleport.example.com",
	} {
		if got := webHost(in); got != want {
			t.Errorf("webHost(%q) = %q, want %q", in, got, want)
		}
	}
}
