package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/posthog/posthogtest"
	"github.com/accessbot/accessbot/store"
)

// fakePerson is someone seeded in both fakes: a Slack user and a PostHog
// member with the same email.
type fakePerson struct {
	id, name, first, last string
}

// email is the person's address in both fakes.
func (p fakePerson) email() string { return p.name + "@example.com" }

// fakeSeed is what the fakes start with and how the service is configured
// against them.
type fakeSeed struct {
	people  []fakePerson
	roles   []string // PostHog role names
	policy  string   // policy file contents
	admins  []string
	channel string // approvals channel
	// members are PostHog memberships that exist before the bot starts:
	// role name → Slack ids.
	members map[string][]string

	scheduler time.Duration // scheduler interval (how soon a grant's end is noticed)
	listen    string        // the service's listen address ("" = a free loopback port)

	// auditChannel gets the signed audit checkpoints, written every
	// checkpoint (0: the default interval) with a key made for the run.
	auditChannel string
	checkpoint   time.Duration
}

// fakeStack is the real service — the same wiring as `serve` — running
// against an in-process fake Slack and fake PostHog, with its SQLite
// database in a directory of its own. `demo` and `sandbox` both run on it.
type fakeStack struct {
	slack  *slacktest.Server
	ph     *posthogtest.Server
	base   string            // the service's Slack-facing URL
	admin  string            // the service's operator URL (/metrics, /readyz, /audit/export)
	pub    ed25519.PublicKey // verifies the audit checkpoints
	secret string            // Slack signing secret
	token  string            // audit token
	dbURL  string
	db     *store.DB // a reader of the service's database
	roles  map[string]string
	uuids  map[string]string
	names  map[string]string // Slack id → name
	logs   *syncBuffer

	stop    context.CancelFunc
	stopped chan error
	dir     string
	keepDir bool
}

// startFakeStack seeds the fakes, writes the policy, and starts the
// service on them. With keep set, the database stays in that directory;
// otherwise a temporary directory is removed on close. The service's log
// goes to logs (and to logOut when it is not nil).
func startFakeStack(ctx context.Context, seed fakeSeed, keep string, logOut io.Writer) (*fakeStack, error) {
	f := &fakeStack{slack: slacktest.NewServer(), ph: posthogtest.NewServer(),
		secret: randomHex(16), token: randomHex(16), roles: map[string]string{}, uuids: map[string]string{}, names: map[string]string{},
		logs: &syncBuffer{}, stopped: make(chan error, 1), stop: func() {}}
	started := false
	defer func() {
		if !started {
			f.close()
		}
	}()
	for _, p := range seed.people {
		f.slack.AddUser(p.id, p.name, p.email())
		f.names[p.id] = p.name
		f.uuids[p.id] = f.ph.AddUser(p.email(), p.first, p.last).UUID
	}
	for _, name := range seed.roles {
		f.roles[name] = f.ph.AddRole(name).ID
	}
	for role, ids := range seed.members {
		for _, id := range ids {
			f.ph.AddMembership(f.roles[role], f.uuids[id])
		}
	}

	var err error
	f.dir, f.keepDir = keep, keep != ""
	if f.dir == "" {
		if f.dir, err = os.MkdirTemp("", "accessbot-fakes-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return nil, err
	}
	policyPath := filepath.Join(f.dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(seed.policy), 0o600); err != nil {
		return nil, fmt.Errorf("write the policy file: %w", err)
	}
	f.dbURL = "sqlite:" + filepath.Join(f.dir, "accessbot.db")
	keyPath := filepath.Join(f.dir, "audit-signing.key")
	_ = os.Remove(keyPath)
	_ = os.Remove(keyPath + ".pub")
	if f.pub, err = writeSigningKey(keyPath); err != nil {
		return nil, err
	}

	cfg, err := loadConfig(nil)
	if err != nil {
		return nil, err
	}
	cfg.Listen = "127.0.0.1:0"
	if seed.listen != "" {
		cfg.Listen = seed.listen
	}
	cfg.AdminListen = "127.0.0.1:0"
	cfg.AuditSigningKey = keyPath
	cfg.AuditChannel = seed.auditChannel
	if seed.checkpoint > 0 {
		cfg.AuditCheckpointInterval = seed.checkpoint
	}
	cfg.DatabaseURL = f.dbURL
	cfg.SlackBotToken = "xoxb-fake"
	cfg.SlackSigningSecret = f.secret
	cfg.SlackAPIURL = f.slack.URL() + "/api/"
	cfg.PostHogHost = f.ph.URL()
	cfg.PostHogAPIKey = f.ph.APIKey()
	cfg.PostHogOrgID = "@current"
	cfg.PolicyFile = policyPath
	cfg.Admins = seed.admins
	cfg.AuditToken = f.token
	cfg.ApprovalsChannel = seed.channel
	cfg.SchedulerInterval = seed.scheduler
	if cfg.SchedulerInterval <= 0 {
		cfg.SchedulerInterval = time.Second
	}
	cfg.ReconcileInterval = 0
	cfg.ShutdownTimeout = 5 * time.Second
	if err := cfg.validateServe(); err != nil {
		return nil, err
	}
	var out io.Writer = f.logs
	if logOut != nil {
		out = io.MultiWriter(f.logs, logOut)
	}
	log, err := newLogger(out, "info", "console")
	if err != nil {
		return nil, err
	}
	cfg.slackUnpaced = true // the fake Slack has no rate limits
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if f.db, err = store.Open(ctx, f.dbURL); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	f.stop = stop
	go func() { f.stopped <- a.run(runCtx) }()
	select {
	case addr := <-a.ready:
		f.base = "http://" + addr
		f.admin = "http://" + a.adminAddr
	case err := <-f.stopped:
		f.stopped <- err
		return nil, fmt.Errorf("service stopped at start: %v", err)
	}
	started = true
	return f, nil
}

// close stops the service, then the fakes, and removes a temporary directory.
func (f *fakeStack) close() {
	f.stop()
	if f.base != "" {
		select {
		case <-f.stopped:
		case <-time.After(10 * time.Second):
		}
	}
	if f.db != nil {
		f.db.Close()
	}
	f.slack.Close()
	f.ph.Close()
	if !f.keepDir && f.dir != "" {
		os.RemoveAll(f.dir)
	}
}
