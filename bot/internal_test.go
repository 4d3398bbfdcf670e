package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/workflow"
)

// stubWorkflow is a Workflow of function fields; methods left nil panic,
// which is what the recovery test wants.
type stubWorkflow struct {
	Workflow
	create func(ctx context.Context, in workflow.NewRequest) (*workflow.Request, error)
}

func (s stubWorkflow) CreateRequest(ctx context.Context, in workflow.NewRequest) (*workflow.Request, error) {
	return s.create(ctx, in)
}

func TestPanicsAreRecovered(t *testing.T) {
	fake := slacktest.NewServer()
	defer fake.Close()
	var outcomes []string
	b, err := New(Config{
		Workflow:      stubWorkflow{create: func(context.Context, workflow.NewRequest) (*workflow.Request, error) { panic("boom") }},
		Slack:         slack.New("xoxb", slack.OptionAPIURL(fake.URL()+"/api/")),
		SigningSecret: "s", Logger: zerolog.Nop(),
		Observe: func(kind, outcome string, _ time.Duration) { outcomes = append(outcomes, kind+"/"+outcome) },
	})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	b.Routes(r)
	p := `{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"accessbot_request","private_metadata":` +
		`"{\"kind\":\"add\"}","state":{"values":{"duration":{"duration_select":{"type":"static_select","selected_option":{"value":"1h"}}}}}}}`
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, slacktest.SignedRequest("s", "/slack/interactions", slacktest.InteractionForm([]byte(p)), time.Now()))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d", rec.Code)
	}
	if len(outcomes) != 1 || outcomes[0] != "view_submission/error" && outcomes[0] != "block_actions/error" {
		t.Errorf("observed %v", outcomes)
	}

	// A panic after the ack is recovered too: `/access list` calls
	// ListMine, which the stub does not have.
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, slacktest.SignedRequest("s", "/slack/commands", fake.SlashCommand("U1", "list").Form(), time.Now()))
	if rec.Code != http.StatusOK {
		t.Errorf("command status %d", rec.Code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewNeedsWorkflowAndSlack(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

func TestNoSigningSecretRefusesEverything(t *testing.T) {
	fake := slacktest.NewServer()
	defer fake.Close()
	b, _ := New(Config{Workflow: stubWorkflow{}, Slack: slack.New("x", slack.OptionAPIURL(fake.URL()+"/api/")), Logger: zerolog.Nop()})
	r := mux.NewRouter()
	b.Routes(r)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, slacktest.SignedRequest("", "/slack/commands", fake.SlashCommand("U1", "help").Form(), time.Now()))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status %d", rec.Code)
	}
}

func TestUsers(t *testing.T) {
	fake := slacktest.NewServer()
	defer fake.Close()
	fake.AddUser("U0ALICE", "alice", "alice@example.com")
	fake.AddUser("U0NOMAIL", "robot", "")
	u := NewUsers(slack.New("xoxb", slack.OptionAPIURL(fake.URL()+"/api/")), time.Minute)
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		email, err := u.Email(ctx, "U0ALICE")
		if err != nil || email != "alice@example.com" {
			t.Fatalf("email %q, %v", email, err)
		}
	}
	if n := len(fake.CallsTo("users.info")); n != 1 {
		t.Errorf("%d users.info calls; the answer should be cached", n)
	}
	if _, err := u.Email(ctx, "U0NOMAIL"); workflow.ErrorCode(err) != workflow.ENOTFOUND {
		t.Errorf("no email: %v", err)
	}
	if _, err := u.Email(ctx, "U0NOBODY"); workflow.ErrorCode(err) != workflow.ENOTFOUND {
		t.Errorf("unknown user: %v", err)
	}

	// A Retry-After longer than the caller can wait is returned...
	fake.RateLimitNext("users.info", 1, 7*time.Second)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := u.Email(short, "U0OTHER")
	cancel()
	var temp *workflow.TemporaryError
	if !errors.As(err, &temp) || temp.RetryAfter != 7*time.Second {
		t.Errorf("rate limited: %#v", err)
	}
	// ...one that fits is waited out.
	fake.AddUser("U0CAROL", "carol", "carol@example.com")
	fake.RateLimitNext("users.info", 1, time.Second)
	short, cancel = context.WithTimeout(ctx, 2500*time.Millisecond)
	email, err := u.Email(short, "U0CAROL")
	cancel()
	if err != nil || email != "carol@example.com" {
		t.Errorf("after waiting out Retry-After: %q %v", email, err)
	}
	fake.FailNext("users.info", 1, "internal_error")
	if _, err := u.Email(ctx, "U0OTHER"); !workflow.IsTemporary(err) {
		t.Errorf("internal_error: %v", err)
	}
	fake.FailNext("users.info", 1, "missing_scope")
	if _, err := u.Email(ctx, "U0OTHER"); err == nil || workflow.IsTemporary(err) {
		t.Errorf("missing_scope: %v", err)
	}

	// The cache expires.
	now := time.Now()
	u.now = func() time.Time { return now.Add(2 * time.Minute) }
	// After its ttl an answer is still given at once, and refreshed behind.
	calls := len(fake.CallsTo("users.info"))
	if email, err := u.Email(ctx, "U0ALICE"); err != nil || email == "" {
		t.Fatal(email, err)
	}
	if !fake.WaitForCalls("users.info", calls+1, 5*time.Second) {
		t.Errorf("%d users.info calls after expiry", len(fake.CallsTo("users.info")))
	}

	// Slack unreachable.
	dead := NewUsers(slack.New("xoxb", slack.OptionAPIURL("http://127.0.0.1:1/api/")), time.Minute)
	if _, err := dead.Email(ctx, "U0ALICE"); !workflow.IsTemporary(err) {
		t.Errorf("unreachable: %v", err)
	}
}

// TestUsersShareOneLookupPerUser: many asking about one user at once (300
// approvals by one owner, with nothing cached) make one users.info call,
// and a caller whose deadline passes stops waiting without cancelling it
// for the others.
func TestUsersShareOneLookupPerUser(t *testing.T) {
	fake := slacktest.NewServer()
	defer fake.Close()
	fake.LimitLikeSlack()
	fake.AddUser("U0BOB", "bob", "bob@example.com")
	fake.SetLatency("users.info", 300*time.Millisecond)
	u := NewUsers(slack.New("xoxb", slack.OptionAPIURL(fake.URL()+"/api/")), time.Minute)

	impatient, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := u.Email(impatient, "U0BOB"); !workflow.IsTemporary(err) {
		t.Fatalf("caller out of time: %v, want a temporary error", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email, err := u.Email(context.Background(), "U0BOB")
			if err == nil && email != "bob@example.com" {
				err = fmt.Errorf("email %q", email)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, limited := len(fake.CallsTo("users.info")), fake.RateLimited("users.info"); n != 1 || limited != 0 {
		t.Fatalf("%d users.info calls (%d answered 429) for 101 callers, want 1", n, limited)
	}
}

func TestRetryable(t *testing.T) {
	cases := map[string]struct {
		err  error
		want bool
	}{
		"rate limited":   {&slack.RateLimitedError{RetryAfter: time.Second}, true},
		"503":            {slack.StatusCodeError{Code: 503}, true},
		"404":            {slack.StatusCodeError{Code: 404}, false},
		"internal_error": {slack.SlackErrorResponse{Err: "internal_error"}, true},
		"not found":      {slack.SlackErrorResponse{Err: "message_not_found"}, false},
		"deadline":       {context.DeadlineExceeded, true},
		"plain":          {errors.New("invalid_blocks"), false},
		"nil":            {nil, false},
	}
	for name, c := range cases {
		if got := retryable(c.err); got != c.want {
			t.Errorf("%s: %v", name, got)
		}
	}
}

func TestTrackerWaits(t *testing.T) {
	var tr tracker
	tr.add()
	go func() {
		time.Sleep(20 * time.Millisecond)
		tr.add() // work starting more work
		tr.done()
		go func() {
			time.Sleep(20 * time.Millisecond)
			tr.done()
		}()
	}()
	start := time.Now()
	if err := tr.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 35*time.Millisecond {
		t.Error("wait returned before the work was done")
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.add()
	cancel()
	if err := tr.wait(ctx); err == nil {
		t.Error("wait ignored its context")
	}
	tr.done()
}

// TestPacerSpacesCallsToSlackTiers: chat.update goes at Tier 3's pace;
// past a short wait the caller gets a temporary error saying when its turn
// comes, and a 429's Retry-After holds the method back.
func TestPacerSpacesCallsToSlackTiers(t *testing.T) {
	p := newPacer(true)
	ctx := context.Background()
	start := time.Now()
	// Ten deliveries at once: a burst of 5, then one every 1.2s; those
	// whose turn is more than maxPaceWait away are told when it comes.
	errs := make(chan error, 10)
	for range 10 {
		go func() { errs <- p.wait(ctx, "chat.update", "C1") }()
	}
	ok, later := 0, 0
	for range 10 {
		var temp *workflow.TemporaryError
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.As(err, &temp) && temp.RetryAfter > maxPaceWait:
			later++
		default:
			t.Fatal(err)
		}
	}
	if ok < 5 || ok > 7 || ok+later != 10 || time.Since(start) > 3*time.Second {
		t.Fatalf("%d went, %d told to come back, in %v", ok, later, time.Since(start))
	}
	var temp *workflow.TemporaryError
	// Another method is not held back.
	if err := p.wait(ctx, "chat.postMessage", "D1"); err != nil {
		t.Fatal(err)
	}
	p.limited("chat.postMessage", 30*time.Second)
	err := p.wait(ctx, "chat.postMessage", "D2")
	if !errors.As(err, &temp) || temp.RetryAfter < 29*time.Second {
		t.Fatalf("after a 429: %v", err)
	}
	if err := newPacer(false).wait(ctx, "chat.update", "C1"); err != nil {
		t.Fatal(err)
	}
}

// TestPacerKeepsTheTurnOfAJobSentAway: a job whose turn is too far off is
// sent away with a turn of its own, kept for it: turns are distinct and
// spaced by the tier, a job back early keeps its turn, a job back at its
// turn goes at once whoever queued meanwhile, a caller outside a job gets
// nothing kept, and turns not taken within ticketGrace are let go.
func TestPacerKeepsTheTurnOfAJobSentAway(t *testing.T) {
	p := newPacer(true)
	tr := tiers["chat.update"] // 50 a minute, burst 5: one turn every 1.2 s
	t0 := time.Unix(1_000_000, 0)
	went := 0
	turns := map[int64]time.Duration{}
	for job := int64(1); job <= 20; job++ {
		d, err := p.turn(t0, "chat.update", job, tr)
		var temp *workflow.TemporaryError
		switch {
		case err == nil && d <= maxPaceWait:
			went++
		case errors.As(err, &temp) && temp.Reserved:
			turns[job] = temp.RetryAfter
		default:
			t.Fatalf("job %d: wait %v, %v", job, d, err)
		}
	}
	// The burst of 5 and the turn 1.2 s away go now; 14 are sent away.
	if went != 6 || len(turns) != 14 {
		t.Fatalf("%d went, %d sent away", went, len(turns))
	}
	seen := map[time.Duration]bool{}
	for job, d := range turns {
		if d < maxPaceWait || d > 18*time.Second || seen[d.Round(time.Second/10)] {
			t.Errorf("job %d: turn %v (a duplicate, or outside 2–18 s)", job, d)
		}
		seen[d.Round(time.Second/10)] = true
	}
	// Back early: the same turn, still kept.
	_, err := p.turn(t0.Add(time.Second), "chat.update", 20, tr)
	var temp *workflow.TemporaryError
	if !errors.As(err, &temp) || !temp.Reserved || temp.RetryAfter != turns[20]-time.Second {
		t.Fatalf("job 20 back early: %v", err)
	}
	// Someone outside a job queues after every kept turn, and nothing is
	// kept for them.
	_, err = p.turn(t0, "chat.update", 0, tr)
	if !errors.As(err, &temp) || temp.Reserved || temp.RetryAfter < 18*time.Second {
		t.Fatalf("outside a job: %v", err)
	}
	// Each job back at its turn goes at once, job 19 before job 18's turn
	// included.
	for _, job := range []int64{19, 7, 18} {
		if d, err := p.turn(t0.Add(turns[job]), "chat.update", job, tr); err != nil || d != 0 {
			t.Fatalf("job %d back at its turn: wait %v, %v", job, d, err)
		}
	}
	if len(p.tickets) != 11 {
		t.Fatalf("%d turns kept after three were taken, want 11", len(p.tickets))
	}
	// Turns nobody came back for are let go.
	if _, err := p.turn(t0.Add(18*time.Second+ticketGrace+10*time.Second), "chat.update", 99, tr); err != nil {
		t.Fatal(err)
	}
	if len(p.tickets) != 0 {
		t.Fatalf("%d turns still kept long after their time", len(p.tickets))
	}
}

// TestRecentSet: a key is known for ttl after it was added, then new
// again; pruning forgets only expired keys.
func TestRecentSet(t *testing.T) {
	var s recentSet[string]
	t0 := time.Unix(1_000_000, 0)
	ttl := 10 * time.Minute
	if !s.add("a", t0, ttl) || s.add("a", t0.Add(ttl-time.Second), ttl) {
		t.Fatal("a second add within ttl was new")
	}
	if !s.has("a", t0.Add(ttl-time.Second), ttl) || s.has("a", t0.Add(ttl), ttl) {
		t.Error("has does not follow ttl")
	}
	if !s.add("b", t0.Add(ttl/2), ttl) || !s.add("a", t0.Add(ttl), ttl) {
		t.Error("an expired key was not new again")
	}
	// Pruning forgets the keys older than ttl, and only those: c (added at
	// t0) goes at the next add a tenth of ttl after the last pruning; b
	// (added at ttl/2) stays.
	s.add("c", t0, ttl)
	s.add("d", t0.Add(ttl+ttl/10+time.Second), ttl)
	if _, kept := s.at["c"]; kept || !s.has("b", t0.Add(ttl+ttl/10+time.Second), ttl) || len(s.at) != 3 {
		t.Errorf("pruning: %v", s.at)
	}
}
