package workflow_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
	"github.com/rs/zerolog"
)

// Slack users of the tests, each with a PostHog account unless noted.
const (
	alice  = "UALICE01" // requester
	bob    = "UBOB0001" // owner of Engineering
	carol  = "UCAROL01" // owner of Engineering
	dave   = "UDAVE001" // nobody special
	admin  = "UADMIN01" // bot admin, fallback owner
	ghost  = "UGHOST01" // in Slack, not in PostHog
	nomail = "UNOMAIL1" // in Slack without an email
)

const testPolicy = `
defaults:
  owners: [UADMIN01]
  approvals_required: 1
  pending_expiry: 72h
  reminder_after: 24h
  max_duration: permanent
roles:
  - role: Engineering
    owners: [UBOB0001, UCAROL01]
    max_duration: 7d
  - role: Finance
    owners: [UBOB0001, UCAROL01]
    approvals_required: 2
  - role: Viewer
    auto_approve: true
`

// clock is a controllable workflow.Clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// users is workflow.Users from a map.
type users map[string]string

func (u users) Email(_ context.Context, id string) (string, error) {
	if e, ok := u[id]; ok {
		return e, nil
	}
	return "", workflow.Errorf(workflow.ENOTFOUND, "no such Slack user %s", id)
}

// notes records notifications.
type notes struct {
	mu     sync.Mutex
	events []workflow.Event
	fail   int // fail this many deliveries first
	// failWith, when set, decides the error of each delivery (nil: delivered).
	failWith func(e workflow.Event) error
	jobs     []int64 // workflow.JobFrom of every delivery tried, in order
}

func (n *notes) Notify(ctx context.Context, e workflow.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.jobs = append(n.jobs, workflow.JobFrom(ctx))
	if n.fail > 0 {
		n.fail--
		return &workflow.TemporaryError{Err: context.DeadlineExceeded}
	}
	if n.failWith != nil {
		if err := n.failWith(e); err != nil {
			return err
		}
	}
	n.events = append(n.events, e)
	return nil
}

func (n *notes) types(requestID int64) []workflow.EventType {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []workflow.EventType
	for _, e := range n.events {
		if e.Audience == workflow.AudienceRequester {
			continue // the requester's DM: see requesterTypes
		}
		if (e.Request != nil && e.Request.ID == requestID) || (requestID == 0 && e.Request == nil) {
			out = append(out, e.Type)
		}
	}
	return out
}

// requesterTypes are the events delivered to the requester's DM.
func (n *notes) requesterTypes(requestID int64) []workflow.EventType {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []workflow.EventType
	for _, e := range n.events {
		if e.Audience == workflow.AudienceRequester && e.Request != nil && e.Request.ID == requestID {
			out = append(out, e.Type)
		}
	}
	return out
}

type harness struct {
	t      testing.TB
	db     *store.DB
	ph     *posthogtest.Server
	svc    *workflow.Service
	clock  *clock
	notes  *notes
	roles  map[string]string // name → id
	uuids  map[string]string // Slack id → PostHog user uuid
	client *posthog.Client
	cfg    workflow.Config
}

type harnessOption func(*workflow.Config)

type ctxT = context.Context

// tick runs the scheduler once and then every job it queued.
func tick(t *testing.T, h *harness) {
	t.Helper()
	if err := h.svc.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.drain()
}

// slowReads is a Store whose transactions pause after reading a setting, so
// replicas' transactions surely overlap (on PostgreSQL; SQLite serializes
// whole write transactions anyway).
type slowReads struct{ workflow.Store }

type slowTx struct{ workflow.Tx }

func (s slowReads) Update(ctx context.Context, fn func(ctx context.Context, tx workflow.Tx) error) error {
	return s.Store.Update(ctx, func(ctx context.Context, tx workflow.Tx) error { return fn(ctx, slowTx{tx}) })
}

func (t slowTx) Setting(ctx context.Context, key string) (string, bool, error) {
	v, ok, err := t.Tx.Setting(ctx, key)
	time.Sleep(30 * time.Millisecond)
	return v, ok, err
}

// slowReplica is a replica whose setting reads are slow.
func (h *harness) slowReplica() *workflow.Service {
	h.t.Helper()
	cfg := h.cfg
	cfg.Store = slowReads{h.db}
	s, err := workflow.NewService(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// replica is another process: its own Service over the same database,
// PostHog and clock.
func (h *harness) replica() *workflow.Service {
	h.t.Helper()
	s, err := workflow.NewService(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func newHarness(t testing.TB, db *store.DB, opts ...harnessOption) *harness {
	t.Helper()
	ph := posthogtest.NewServer()
	t.Cleanup(ph.Close)
	h := &harness{t: t, db: db, ph: ph, clock: &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)},
		notes: &notes{}, roles: map[string]string{}, uuids: map[string]string{}}
	for _, name := range []string{"Engineering", "Finance", "Viewer", "Marketing"} {
		h.roles[name] = ph.AddRole(name).ID
	}
	u := users{nomail: ""}
	for id, email := range map[string]string{alice: "alice@example.com", bob: "bob@example.com", carol: "carol@example.com",
		dave: "dave@example.com", admin: "admin@example.com"} {
		h.uuids[id] = ph.AddUser(email, strings.ToLower(id), "Test").UUID
		u[id] = email
	}
	u[ghost] = "ghost@example.com"
	client, err := posthog.NewClient(ph.URL(), ph.APIKey(), ph.OrganizationID(),
		posthog.WithRateLimit(0, 0), posthog.WithRetry(2, 2*time.Second), posthog.WithBackoff(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	h.client = client
	policy, err := workflow.ParsePolicy("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	cfg := workflow.Config{
		Store: db, Directory: posthogdir.New(client), Users: u, Notifier: h.notes, Clock: h.clock,
		Policy: policy, Admins: []string{admin}, Logger: zerolog.Nop(),
		RetryBase: time.Second, RetryMax: time.Minute, JobLease: time.Minute,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.cfg = cfg
	h.svc, err = workflow.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// drain runs every due job.
func (h *harness) drain() {
	h.t.Helper()
	for i := 0; i < 1000; i++ {
		ran, err := h.svc.RunJob(context.Background())
		if err != nil {
			h.t.Fatalf("run job: %v", err)
		}
		if !ran {
			return
		}
	}
	h.t.Fatal("jobs did not drain")
}

func (h *harness) create(kind workflow.Kind, requester, subject, role, reason string, d time.Duration) (*workflow.Request, error) {
	return h.svc.CreateRequest(context.Background(), workflow.NewRequest{Kind: kind, RequesterID: requester,
		SubjectID: subject, Role: role, Reason: reason, Duration: d})
}

func (h *harness) mustCreate(role string, d time.Duration) *workflow.Request {
	h.t.Helper()
	r, err := h.create(workflow.KindAdd, alice, "", role, "debugging a dashboard", d)
	if err != nil {
		h.t.Fatalf("create request for %s: %v", role, err)
	}
	return r
}

func (h *harness) mustApprove(r *workflow.Request, approver string) {
	h.t.Helper()
	if _, err := h.svc.Approve(context.Background(), r.ID, approver); err != nil {
		h.t.Fatalf("approve %s by %s: %v", r.Ref(), approver, err)
	}
}

func (h *harness) request(id int64) *workflow.Request {
	h.t.Helper()
	r, err := h.svc.Request(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// auditActions lists the actions of the audit log, for one request when id ≠ 0.
func (h *harness) auditActions(id int64) []workflow.Action {
	h.t.Helper()
	var out []workflow.Action
	err := h.db.AuditEntries(context.Background(), workflow.AuditFilter{}, func(e *workflow.AuditEntry) error {
		if id == 0 || e.RequestID == id {
			out = append(out, e.Action)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// membershipCreates counts POSTs to role memberships the fake PostHog saw.
func (h *harness) membershipCreates() int {
	n := 0
	for _, c := range h.ph.Calls() {
		if c.Method == "POST" && strings.Contains(c.Path, "/role_memberships") {
			n++
		}
	}
	return n
}

func (h *harness) isMember(role, slackID string) bool {
	return h.ph.HasMember(h.roles[role], h.uuids[slackID])
}

func (h *harness) verify() workflow.VerifyReport {
	h.t.Helper()
	rep, err := workflow.VerifyAudit(context.Background(), h.db)
	if err != nil {
		h.t.Fatal(err)
	}
	return rep
}

func eachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	storetest.Each(t, fn)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := workflow.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}
