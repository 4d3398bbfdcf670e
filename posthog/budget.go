package posthog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Priority orders the calls that compete for one API key's budget. Lower
// values go first.
type Priority int

// Priorities, highest first.
const (
	// PriorityInteractive is a call a person is waiting on (opening or
	// submitting a form): it may use the whole budget and goes first.
	PriorityInteractive Priority = iota
	// PriorityExecution carries out decisions already made (adding and
	// removing memberships): it may use most of the budget.
	PriorityExecution
	// PriorityBackground is housekeeping (reconciliation, cache refreshes):
	// it may use half the budget, so it never takes what people need.
	PriorityBackground
	numPriorities
)

func (p Priority) String() string {
	switch p {
	case PriorityInteractive:
		return "interactive"
	case PriorityExecution:
		return "execution"
	case PriorityBackground:
		return "background"
	}
	return fmt.Sprintf("priority(%d)", int(p))
}

// share is the part of each window a priority may fill, in percent: the rest
// is kept for the priorities above it.
var share = [numPriorities]int{100, 90, 50}

type priorityKey struct{}

// WithPriority returns ctx carrying p; calls made with it wait for the
// budget at that priority. Calls without one run at PriorityExecution.
func WithPriority(ctx context.Context, p Priority) context.Context {
	if p < 0 || p >= numPriorities {
		p = PriorityExecution
	}
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the priority ctx carries (PriorityExecution if none).
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return PriorityExecution
}

// Window is one rate limit: at most Limit requests in any Per.
type Window struct {
	Limit int
	Per   time.Duration
}

// BusyError says the budget cannot serve a call before its context's
// deadline: the bot is busy, not PostHog down. RetryAfter is about when a
// call of that priority could go.
type BusyError struct {
	Priority   Priority
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("posthog: the API key's request budget is used up for %s calls; retry in %s",
		e.Priority, e.RetryAfter.Round(time.Second))
}

// Budget spends one API key's request budget across every caller, the way
// PostHog counts it: sliding windows (per minute and per hour). A call waits
// for its turn instead of failing; waiting calls are served by priority, then
// in arrival order; a priority may fill only its share of each window; and a
// 429's Retry-After pauses everyone. It is safe for concurrent use.
type Budget struct {
	windows []Window
	longest time.Duration
	now     func() time.Time

	mu          sync.Mutex
	sent        []time.Time // send times within the longest window, oldest first
	pausedUntil time.Time
	queue       [numPriorities][]uint64 // tickets of waiting calls, oldest first
	ticket      uint64
	changed     chan struct{} // closed and replaced whenever a waiter may proceed
}

// NewBudget returns a budget enforcing every window (a window with Limit <= 0
// is ignored).
func NewBudget(windows ...Window) *Budget {
	b := &Budget{now: time.Now, changed: make(chan struct{})}
	for _, w := range windows {
		if w.Limit > 0 && w.Per > 0 {
			b.windows = append(b.windows, w)
			b.longest = max(b.longest, w.Per)
		}
	}
	return b
}

// Wait blocks until a call at priority p may be sent, and counts it as sent.
// It returns a *BusyError at once when the budget could not serve it before
// ctx's deadline, and ctx's error when ctx ends first.
func (b *Budget) Wait(ctx context.Context, p Priority) error {
	if b == nil || len(b.windows) == 0 {
		return nil
	}
	b.mu.Lock()
	b.ticket++
	t := b.ticket
	b.queue[p] = append(b.queue[p], t)
	defer func() {
		b.mu.Lock()
		b.leave(p, t)
		b.mu.Unlock()
	}()
	for {
		now := b.now()
		b.prune(now)
		next := b.nextSlot(p, now)
		if next.IsZero() && b.first(p, t) {
			b.sent = append(b.sent, now)
			b.mu.Unlock()
			return nil
		}
		changed := b.changed
		b.mu.Unlock()
		wait := time.Duration(-1)
		if !next.IsZero() {
			wait = next.Sub(now)
			if dl, ok := ctx.Deadline(); ok && dl.Before(next) {
				return &BusyError{Priority: p, RetryAfter: wait}
			}
		}
		if err := sleep(ctx, changed, wait); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// Calls ahead of it took the time it had.
				return &BusyError{Priority: p, RetryAfter: max(wait, time.Second)}
			}
			return err
		}
		b.mu.Lock()
	}
}

// sleep waits for changed, for d (< 0: no limit), or for ctx to end.
func sleep(ctx context.Context, changed <-chan struct{}, d time.Duration) error {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-changed:
	case <-timer:
	}
	return nil
}

// first reports whether ticket t of priority p is next: no call of a higher
// priority waits, and none of p arrived before it.
func (b *Budget) first(p Priority, t uint64) bool {
	for q := Priority(0); q < p; q++ {
		if len(b.queue[q]) > 0 {
			return false
		}
	}
	return len(b.queue[p]) > 0 && b.queue[p][0] == t
}

// leave takes ticket t out of the queue and wakes the other waiters.
func (b *Budget) leave(p Priority, t uint64) {
	q := b.queue[p]
	for i, x := range q {
		if x == t {
			b.queue[p] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	b.wake()
}

func (b *Budget) wake() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// prune forgets sends older than the longest window.
func (b *Budget) prune(now time.Time) {
	cut := sort.Search(len(b.sent), func(i int) bool { return b.sent[i].After(now.Add(-b.longest)) })
	if cut > 0 {
		b.sent = append(b.sent[:0], b.sent[cut:]...)
	}
}

// nextSlot is when a call at priority p could be sent, given the sends so
// far: zero when it may go now.
func (b *Budget) nextSlot(p Priority, now time.Time) time.Time {
	var at time.Time
	if now.Before(b.pausedUntil) {
		at = b.pausedUntil
	}
	for _, w := range b.windows {
		limit := max(w.Limit*share[p]/100, 1)
		from := sort.Search(len(b.sent), func(i int) bool { return b.sent[i].After(now.Add(-w.Per)) })
		inWindow := len(b.sent) - from
		if inWindow < limit {
			continue
		}
		// The window has room again once enough of its oldest sends age out.
		free := b.sent[from+inWindow-limit].Add(w.Per)
		if free.After(at) {
			at = free
		}
	}
	return at
}

// Pause stops every call for d: PostHog answered 429 with Retry-After.
func (b *Budget) Pause(d time.Duration) {
	if b == nil || d <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if until := b.now().Add(d); until.After(b.pausedUntil) {
		b.pausedUntil = until
	}
	b.wake()
}

// Used reports how many calls were sent in the last per, for metrics and
// tests.
func (b *Budget) Used(per time.Duration) int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	from := sort.Search(len(b.sent), func(i int) bool { return b.sent[i].After(now.Add(-per)) })
	return len(b.sent) - from
}
