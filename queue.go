package main

// The queue between the watch loop and the Mattermost work: one request's
// events in order, many requests at once up to a bound, failed work retried.

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gravitational/teleport/api/types"
)

// queue hands each request's events, in order, to one worker at a time, with
// at most `concurrency` requests being handled at once. Events that arrive
// while a request is busy are merged into one: handling works from the newest
// state of a request, so there is nothing to gain from replaying each step.
type queue struct {
	ctx      context.Context // cancelled when in-flight work must stop
	handle   func(ctx context.Context, id string, ev event) error
	log      *slog.Logger
	sem      chan struct{}
	quit     chan struct{} // closed by stop: no new work starts
	stopOnce sync.Once
	retryMin time.Duration
	retryMax time.Duration
	wg       sync.WaitGroup

	mu      sync.Mutex
	slots   map[string]*slot // requests with a worker
	handled int              // handlings since the queue was last empty
}

// burstSize is how many handlings make a burst whose memory is given back
// to the OS once the queue is empty: the Go runtime would keep the pages
// for minutes, and a daemon that idles between bursts should not.
const burstSize = 64

// slot is one request's next event, waiting for its worker.
type slot struct {
	next event
	has  bool
}

func newQueue(ctx context.Context, concurrency int, handle func(context.Context, string, event) error, log *slog.Logger, retryMin, retryMax time.Duration) *queue {
	return &queue{
		ctx: ctx, handle: handle, log: log,
		sem:      make(chan struct{}, max(concurrency, 1)),
		quit:     make(chan struct{}),
		retryMin: retryMin, retryMax: retryMax,
		slots: make(map[string]*slot),
	}
}

// put queues ev for request id, starting a worker for it if none runs.
func (q *queue) put(id string, ev event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.quit:
		return // stopping: the next start's backfill picks it up
	default:
	}
	if s, ok := q.slots[id]; ok {
		if s.has {
			ev = merge(s.next, ev)
		}
		s.next, s.has = ev, true
		return
	}
	q.slots[id] = &slot{next: ev, has: true}
	q.wg.Add(1)
	go q.work(id)
}

// merge keeps the most advanced version of a request: events can arrive out
// of order when a backfill listing races the watch stream.
func merge(a, b event) event {
	out := event{deleted: a.deleted || b.deleted, live: a.live || b.live, req: b.req}
	if a.req != nil && (b.req == nil || progress(a.req) > progress(b.req)) {
		out.req = a.req
	}
	return out
}

// progress orders versions of one request: resolution, then reviews.
func progress(req types.AccessRequest) int {
	n := len(req.GetReviews())
	if isFinal(requestState(req)) {
		n += 1 << 20
	}
	return n
}

// take is id's next event; false when there is none and the slot is gone.
// drained reports that this emptied the queue after a burst.
func (q *queue) take(id string) (ev event, ok, drained bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.slots[id]
	if !s.has {
		delete(q.slots, id)
		q.handled++
		if len(q.slots) > 0 {
			return event{}, false, false
		}
		drained, q.handled = q.handled >= burstSize, 0
		return event{}, false, drained
	}
	ev = s.next
	s.next, s.has = event{}, false
	return ev, true, false
}

// requeue puts a failed event back under whatever arrived meanwhile.
func (q *queue) requeue(id string, ev event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.slots[id]
	if s.has {
		ev = merge(ev, s.next)
	}
	s.next, s.has = ev, true
}

func (q *queue) drop(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.slots, id)
}

// work is the one worker of request id; it ends when the slot is empty. A
// failed attempt is retried with backoff until it succeeds or a stop.
func (q *queue) work(id string) {
	defer q.wg.Done()
	delay := q.retryMin
	for {
		// The slot is taken only once a worker slot is free, so a request
		// that waited is handled once, in its newest version.
		select {
		case q.sem <- struct{}{}:
		case <-q.quit:
			q.drop(id)
			return
		}
		select {
		case <-q.quit: // both were ready; stopping wins
			<-q.sem
			q.drop(id)
			return
		default:
		}
		ev, ok, drained := q.take(id)
		if !ok {
			<-q.sem
			if drained {
				debug.FreeOSMemory()
			}
			return
		}
		err := q.handle(q.ctx, id, ev)
		<-q.sem
		if err == nil {
			delay = q.retryMin
			continue
		}
		if q.ctx.Err() != nil {
			q.drop(id)
			return
		}
		wait := jitter(delay)
		q.log.Warn("request not fully delivered; will retry", "request", id, "error", err, "in", wait.Round(time.Millisecond))
		delay = min(2*delay, q.retryMax)
		q.requeue(id, ev)
		select {
		case <-time.After(wait):
		case <-q.quit:
			q.drop(id)
			return
		}
	}
}

// stop lets the work in flight finish for at most grace; it reports whether
// everything finished. Queued work that has not started is left for the
// next start's backfill.
func (q *queue) stop(grace time.Duration) bool {
	q.close()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(grace):
		return false
	}
}

// close stops new work from starting.
func (q *queue) close() {
	q.stopOnce.Do(func() {
		q.mu.Lock()
		close(q.quit)
		q.mu.Unlock()
	})
}
