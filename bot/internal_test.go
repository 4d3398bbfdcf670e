package bot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
	if !s.has("b", t0.Add(ttl), ttl) || len(s.at) != 2 {
		t.Errorf("pruning: %v", s.at)
	}
}
