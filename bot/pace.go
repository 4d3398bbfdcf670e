package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/workflow"
)

// tier is how fast the bot calls one Web API method when delivering
// notifications: Slack's published limit for it. perChannel applies it to
// each channel on its own (chat.postMessage: about one a second per
// channel).
type tier struct {
	perMinute  float64
	burst      int
	perChannel bool
}

// tiers are Slack's limits for the methods notifications use.
var tiers = map[string]tier{
	"chat.postMessage":   {perMinute: 60, burst: 3, perChannel: true},
	"chat.update":        {perMinute: 50, burst: 5}, // Tier 3
	"chat.delete":        {perMinute: 50, burst: 5}, // Tier 3
	"conversations.open": {perMinute: 50, burst: 5}, // Tier 3
}

// maxPaceWait is the longest a delivery waits for its turn in the pace;
// longer, and the job gives its worker back and returns at its turn.
const maxPaceWait = 2 * time.Second

// pacer spaces notification calls to Slack's tiers and holds a method back
// for as long as Slack's Retry-After said, so the bot does not spend calls
// on answers it knows will be 429.
//
// A job whose turn is further off than maxPaceWait is sent away until its
// turn, and the turn is kept for it (a ticket, by job id): when it comes
// back it goes at once, instead of queueing again behind everyone who came
// after it (with hundreds of copies waiting on chat.update's 50 a minute, a
// delivery could be sent away again and again while newer ones went, each
// time spending a claim and a retry in the database).
type pacer struct {
	paced    bool // false: only Retry-After holds calls back
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	until    map[string]time.Time // method → Slack's Retry-After ends
	tickets  map[ticketKey]time.Time
	pruned   time.Time // when tickets were last cleared of unused ones
}

// ticketKey is a turn kept for job under one limiter.
type ticketKey struct {
	limiter string
	job     int64
}

// ticketGrace is how long past its time a ticket is kept for a job that
// has not come back (the worker may be busy, the process restarting);
// after that the turn is lost and the job queues again.
const ticketGrace = time.Minute

func newPacer(paced bool) *pacer {
	return &pacer{paced: paced, limiters: map[string]*rate.Limiter{}, until: map[string]time.Time{}, tickets: map[ticketKey]time.Time{}}
}

// wait takes a turn for method in channel: it sleeps when the turn comes
// within maxPaceWait, and otherwise returns a *workflow.TemporaryError
// whose RetryAfter is when the turn comes (Reserved when the turn is kept
// for the job ctx belongs to).
func (p *pacer) wait(ctx context.Context, method, channel string) error {
	t, paced := tiers[method]
	paced = paced && p.paced
	key := method
	if t.perChannel {
		key += "/" + channel
	}
	now := time.Now()
	p.mu.Lock()
	blocked := p.until[method].Sub(now)
	if blocked > 0 {
		p.mu.Unlock()
		return &workflow.TemporaryError{Err: fmt.Errorf("%s: rate limited by Slack", method), RetryAfter: blocked}
	}
	if !paced {
		p.mu.Unlock()
		return nil
	}
	d, err := p.turn(now, key, workflow.JobFrom(ctx), t)
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err() // the turn is spent, as if the call had been made
	}
}

// turn finds how long to wait for a call under the limiter at key, for job
// (0: not a job) — from the job's ticket if it has one — and returns a
// *workflow.TemporaryError when that is longer than maxPaceWait. p.mu is
// held.
func (p *pacer) turn(now time.Time, key string, job int64, t tier) (time.Duration, error) {
	p.prune(now)
	tk := ticketKey{key, job}
	if at, ok := p.tickets[tk]; ok {
		d := at.Sub(now)
		if d > maxPaceWait {
			return 0, notYet(d, true) // back early: the turn is still kept
		}
		delete(p.tickets, tk)
		return d, nil
	}
	lim := p.limiters[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(t.perMinute/60), t.burst)
		p.limiters[key] = lim
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d <= maxPaceWait {
		return d, nil
	}
	if job == 0 {
		r.CancelAt(now)
		return 0, notYet(d, false)
	}
	p.tickets[tk] = now.Add(d)
	return 0, notYet(d, true)
}

// notYet says a call's turn is d away (kept for its job when reserved).
func notYet(d time.Duration, reserved bool) error {
	return &workflow.TemporaryError{Err: errors.New("waiting for its turn under Slack's limit"), RetryAfter: d, Reserved: reserved}
}

// prune drops tickets whose jobs did not come back within ticketGrace of
// their turn, at most every few seconds. p.mu is held.
func (p *pacer) prune(now time.Time) {
	if len(p.tickets) == 0 || now.Sub(p.pruned) < 5*time.Second {
		return
	}
	p.pruned = now
	for k, at := range p.tickets {
		if now.Sub(at) > ticketGrace {
			delete(p.tickets, k)
		}
	}
}

// limited records Slack's Retry-After for method.
func (p *pacer) limited(method string, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(retryAfter); until.After(p.until[method]) {
		p.until[method] = until
	}
}

// call makes one paced Web API call for a notification. Its error is nil,
// a *workflow.TemporaryError (rate limited — with Slack's Retry-After —,
// 5xx, timeouts) or a permanent Slack error.
func (b *Bot) call(ctx context.Context, method, channel string, fn func(ctx context.Context) error) error {
	if err := b.pace.wait(ctx, method, channel); err != nil {
		return err
	}
	err := fn(ctx)
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		b.pace.limited(method, rl.RetryAfter)
	}
	err = fmt.Errorf("%s: %w", method, err)
	if temp := asTemporary(err); temp != nil {
		return temp
	}
	return err
}

// shown identifies what a message shows, for MessageRef.Shown.
func shown(m views.Message) string { return digest(m) }

// digest is a short hash of v's JSON, to recognise the same content again.
func digest(v any) string {
	js, _ := json.Marshal(v)
	sum := sha256.Sum256(js)
	return hex.EncodeToString(sum[:12])
}

// keyedMutex serializes work per key (a request id) within the process.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[int64]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key int64) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[int64]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
