// Package bot is accessbot's Slack adapter: it receives slash commands,
// interactions and events (over HTTP or Socket Mode), decodes them, calls the
// workflow and renders the result with bot/views. It also delivers the
// workflow's notifications (it implements workflow.Notifier) and resolves
// Slack users' emails (Users implements workflow.Users).
//
// No workflow rule lives here: who may decide, what a valid request is and
// every state change belong to workflow.Service. The bot acknowledges every
// Slack request within Slack's three seconds and does slow work after the
// acknowledgement.
package bot

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/workflow"
)

// Workflow is what the bot needs from the workflow; *workflow.Service
// satisfies it. Error codes are those of workflow.Error.
type Workflow interface {
	// CreateRequest stores a request. EINVALID (Field "role", "reason",
	// "duration"), EFORBIDDEN, ECONFLICT, EUNAVAILABLE.
	CreateRequest(ctx context.Context, in workflow.NewRequest) (*workflow.Request, error)
	// Approve records actor's approval. ENOTFOUND, EFORBIDDEN, ECONFLICT.
	Approve(ctx context.Context, id int64, actor string) (*workflow.Request, error)
	// Deny ends a request. EINVALID (no reason), ENOTFOUND, EFORBIDDEN, ECONFLICT.
	Deny(ctx context.Context, id int64, actor, reason string) (*workflow.Request, error)
	// Cancel withdraws the actor's own request. ENOTFOUND, EFORBIDDEN, ECONFLICT.
	Cancel(ctx context.Context, id int64, actor string) (*workflow.Request, error)
	// Grants ends and extends grants (revoke, done, extend, overdue list).
	Grants() *workflow.Grants
	// Reviews runs access reviews; BreakGlass grants break-glass access
	// and runs its post-hoc review.
	Reviews() *workflow.Reviews
	BreakGlass() *workflow.BreakGlass
	// CanDecide reports ECONFLICT when r is no longer pending and
	// EFORBIDDEN when actor may not decide it.
	CanDecide(ctx context.Context, r *workflow.Request, actor string) error
	// Request returns one request. ENOTFOUND.
	Request(ctx context.Context, id int64) (*workflow.Request, error)
	// ListMine returns slackID's newest requests.
	ListMine(ctx context.Context, slackID string, limit int) ([]*workflow.Request, error)
	// PendingFor returns the pending requests slackID may decide.
	PendingFor(ctx context.Context, slackID string) ([]*workflow.Request, error)
	// RecordMessage remembers a Slack message about a request.
	RecordMessage(ctx context.Context, m workflow.MessageRef) error
	// Messages lists the Slack messages sent about a request.
	Messages(ctx context.Context, requestID int64) ([]workflow.MessageRef, error)
	// Roles lists PostHog's roles sorted by name. EUNAVAILABLE.
	Roles(ctx context.Context) ([]workflow.Role, error)
	// ResolveRole finds a role by id or name. EINVALID (Field "role").
	ResolveRole(ctx context.Context, nameOrID string) (workflow.Role, error)
	// RoleDetails lists every role with owners and rules.
	RoleDetails(ctx context.Context) ([]workflow.RoleInfo, error)
	// Owners lists who decides a role's requests.
	Owners(ctx context.Context, role workflow.Role) ([]string, error)
	// DurationChoices lists the grant lengths a role allows.
	DurationChoices(role workflow.Role) []time.Duration
	// AddOwner and RemoveOwner change a role's owners. EFORBIDDEN,
	// EINVALID, ECONFLICT.
	AddOwner(ctx context.Context, actor, roleRef, user string) ([]string, error)
	RemoveOwner(ctx context.Context, actor, roleRef, user string) ([]string, error)
	// ExportAudit writes the audit log to w and audits the export.
	ExportAudit(ctx context.Context, actor, via string, f workflow.AuditFilter, format string, w io.Writer) (int64, error)
}

var (
	_ Workflow          = (*workflow.Service)(nil)
	_ workflow.Notifier = (*Bot)(nil)
)

// Kinds and outcomes reported to Config.Observe.
const (
	KindCommand        = "command"
	KindBlockActions   = "block_actions"
	KindViewSubmission = "view_submission"
	KindOptions        = "options"
	KindEvent          = "event"

	OutcomeOK       = "ok"
	OutcomeError    = "error"
	OutcomeRejected = "rejected"
)

// Defaults for Config's optional fields.
const (
	DefaultWorkTimeout  = 30 * time.Second
	DefaultSubmitBudget = 2500 * time.Millisecond
	DefaultMaxBodyBytes = 1 << 20
)

// Config is what New needs. Workflow and Slack are required.
type Config struct {
	Workflow Workflow
	Slack    *slack.Client
	// SigningSecret verifies HTTP requests. Without it every HTTP request is
	// refused (Socket Mode does not need it).
	SigningSecret string
	// ApprovalsChannel, when set, gets a copy of every approver message.
	ApprovalsChannel string
	Logger           zerolog.Logger
	// Observe, when set, is told about every Slack request: kind is one of
	// the Kind constants, outcome one of the Outcome constants, ack the time
	// to the acknowledgement.
	Observe func(kind, outcome string, ack time.Duration)
	// WorkTimeout bounds the work done after an acknowledgement.
	WorkTimeout time.Duration

	// SubmitBudget bounds the workflow call a modal submission waits for
	// before it answers (the answer has to be in Slack's three-second ack).
	SubmitBudget time.Duration
	// MaxBodyBytes bounds an HTTP request body; larger ones get 413.
	MaxBodyBytes int64
	// HTTPClient posts to Slack's response_url; nil: a client with a 10s timeout.
	HTTPClient *http.Client
	// Users, when set, is warmed with the email of each owner who is sent
	// an approver message, so their decision's audit entry has it without
	// waiting on users.info in the click's ack.
	Users *Users
	// Unpaced turns off pacing notification calls to Slack's tiers (for a
	// fake Slack without limits); Retry-After is still honoured.
	Unpaced bool
	// Dropped, when set, is told about every notification given up for
	// good, with Slack's error code ("channel_not_found"), for a metric.
	Dropped func(reason string)
	// SocketMode says the bot will serve over Socket Mode: Ready is false
	// until a socket is open, from the start, not only once RunSocketMode
	// has begun.
	SocketMode bool
}

// Bot is the Slack adapter. Its handlers are safe for concurrent use.
type Bot struct {
	wf        Workflow
	api       *slack.Client
	secret    string
	approvals string
	log       zerolog.Logger
	observe   func(kind, outcome string, ack time.Duration)
	work      time.Duration
	budget    time.Duration
	maxBody   int64
	hc        *http.Client

	dmMu sync.Mutex
	dms  map[string]string // Slack user id → DM channel id

	bg tracker

	socketMode atomic.Bool  // Config.SocketMode, or RunSocketMode was started
	sockets    atomic.Int64 // open Socket Mode connections
	replays    replayCache  // signed HTTP bodies seen within replayWindow
	pace       *pacer       // spaces Web API calls to Slack's tiers
	copyLocks  keyedMutex   // one copy update per request at a time
	sent       sentSet      // DMs delivered, so a retried delivery skips them
	dropped    func(reason string)
	users      *Users
}

// New checks cfg and returns a Bot.
func New(cfg Config) (*Bot, error) {
	if cfg.Workflow == nil || cfg.Slack == nil {
		return nil, errors.New("bot: Workflow and Slack are required")
	}
	b := &Bot{
		wf:        cfg.Workflow,
		api:       cfg.Slack,
		secret:    cfg.SigningSecret,
		approvals: cfg.ApprovalsChannel,
		log:       cfg.Logger,
		observe:   cfg.Observe,
		work:      cfg.WorkTimeout,
		budget:    cfg.SubmitBudget,
		maxBody:   cfg.MaxBodyBytes,
		hc:        cfg.HTTPClient,
		dms:       map[string]string{},
		pace:      newPacer(!cfg.Unpaced),
		dropped:   cfg.Dropped,
		users:     cfg.Users,
	}
	b.socketMode.Store(cfg.SocketMode)
	if b.work <= 0 {
		b.work = DefaultWorkTimeout
	}
	if b.budget <= 0 {
		b.budget = DefaultSubmitBudget
	}
	if b.maxBody <= 0 {
		b.maxBody = DefaultMaxBodyBytes
	}
	if b.hc == nil {
		b.hc = &http.Client{Timeout: 10 * time.Second}
	}
	if b.observe == nil {
		b.observe = func(string, string, time.Duration) {}
	}
	return b, nil
}

// Wait blocks until the work started after acknowledgements has finished,
// or ctx ends. Call it on shutdown (and in tests) after the listeners stop.
func (b *Bot) Wait(ctx context.Context) error { return b.bg.wait(ctx) }

// spawn runs fn after an acknowledgement, on its own context bounded by
// WorkTimeout, recovering and logging a panic.
func (b *Bot) spawn(what string, fn func(ctx context.Context)) {
	b.bg.add()
	go func() {
		defer b.bg.done()
		ctx, cancel := context.WithTimeout(context.Background(), b.work)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				b.log.Error().Str("work", what).Interface("panic", p).Stack().Msg("panic in background work")
			}
		}()
		fn(ctx)
	}()
}

// tracker counts background work so Wait can wait for it.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
}

func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return t.wait(ctx) // work may have started more work
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RequiredScopes are the bot token scopes accessbot uses (manifest.yaml's
// oauth_config.scopes.bot); serve names any the token lacks.
var RequiredScopes = []string{"commands", "chat:write", "im:write", "users:read", "users:read.email", "files:write"}
