package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Config is what a Service needs. Store, Directory and Users are required.
type Config struct {
	Store     Store
	Directory Directory
	Users     Users
	Notifier  Notifier // nil: notifications are dropped
	Clock     Clock    // nil: SystemClock
	Policy    *Policy  // nil: DefaultPolicy
	Admins    []string // Slack user ids who may decide anything and manage owners
	Logger    zerolog.Logger

	// Execution tuning; zero values take the defaults below.
	ExecuteAttempts int           // attempts before an execution fails for good
	RetryBase       time.Duration // first retry delay, doubled each attempt
	RetryMax        time.Duration // longest retry delay
	JobLease        time.Duration // how long a claimed job is held
	PollInterval    time.Duration // how often idle workers look for jobs
	RoleCacheTTL    time.Duration // how long the PostHog role list is reused

	// ObserveJob, when set, is told how each job run ended: "done",
	// "retry", "failed", "released" (interrupted by shutdown) or "lost"
	// (the lease ran out). For metrics.
	ObserveJob func(kind JobKind, outcome string)
}

// Defaults for Config's tuning fields.
const (
	DefaultExecuteAttempts = 10
	DefaultRetryBase       = 5 * time.Second
	DefaultRetryMax        = 10 * time.Minute
	DefaultJobLease        = 2 * time.Minute
	DefaultPollInterval    = time.Second
	DefaultRoleCacheTTL    = time.Minute
	// MaxReasonLength bounds reasons people type, in characters.
	MaxReasonLength = 1000
)

// Service is the workflow: the only way requests change.
type Service struct {
	store    Store
	dir      Directory
	users    Users
	notifier Notifier
	clock    Clock
	policy   *Policy
	admins   map[string]bool
	// adminList is the admins in configuration order, for messages.
	adminList []string
	grants    *Grants
	log       zerolog.Logger
	cfg       Config

	wake          chan struct{} // nudges idle PostHog workers when a job is written
	wakeNotify    chan struct{} // nudges idle notification workers
	wakeRequester chan struct{} // nudges idle workers of requesters' DMs

	rolesMu         sync.Mutex
	roles           []Role
	rolesFetched    time.Time
	rolesRefreshing bool
	fetchMu         sync.Mutex // one PostHog listing of roles at a time
}

// NewService checks cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Directory == nil || cfg.Users == nil {
		return nil, errors.New("workflow: Store, Directory and Users are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Policy == nil {
		cfg.Policy = DefaultPolicy()
	}
	setDefault(&cfg.ExecuteAttempts, DefaultExecuteAttempts)
	setDefault(&cfg.RetryBase, DefaultRetryBase)
	setDefault(&cfg.RetryMax, DefaultRetryMax)
	setDefault(&cfg.JobLease, DefaultJobLease)
	setDefault(&cfg.PollInterval, DefaultPollInterval)
	setDefault(&cfg.RoleCacheTTL, DefaultRoleCacheTTL)
	s := &Service{
		store:         cfg.Store,
		dir:           cfg.Directory,
		users:         cfg.Users,
		notifier:      cfg.Notifier,
		clock:         cfg.Clock,
		policy:        cfg.Policy,
		admins:        map[string]bool{},
		log:           cfg.Logger,
		cfg:           cfg,
		wake:          make(chan struct{}, 1),
		wakeNotify:    make(chan struct{}, 1),
		wakeRequester: make(chan struct{}, 1),
	}
	for _, a := range cfg.Admins {
		if a = strings.TrimSpace(a); a != "" && !s.admins[a] {
			s.admins[a] = true
			s.adminList = append(s.adminList, a)
		}
	}
	s.grants = &Grants{s: s}
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// SetNotifier sets where notifications go. The Slack adapter needs the
// Service to exist before it can be built, hence a setter; call it before
// starting workers.
func (s *Service) SetNotifier(n Notifier) { s.notifier = n }

// Policy returns the policy in force.
func (s *Service) Policy() *Policy { return s.policy }

// IsAdmin reports whether slackID is a bot admin.
func (s *Service) IsAdmin(slackID string) bool { return s.admins[slackID] }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.clock.Now().UTC() }

// errRetry marks a compare-and-set that lost a race: the whole transaction is
// run again against the new state.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

// stale turns a store conflict into a retry signal and passes other errors.
func stale(err error) error {
	if ErrorCode(err) == ECONFLICT {
		return errRetry{err}
	}
	return err
}

const maxRaceRetries = 8

// update runs fn in a transaction, again when it lost a compare-and-set race.
func (s *Service) update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	var err error
	for attempt := 0; attempt < maxRaceRetries; attempt++ {
		err = s.store.Update(ctx, fn)
		var r errRetry
		if !errors.As(err, &r) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return &Error{Code: ECONFLICT, Message: "This request changed while we were working on it; please try again.", Err: err}
}

// audit appends one entry in tx.
func (s *Service) audit(ctx context.Context, tx Tx, e AuditEntry, details map[string]any) error {
	if e.Time.IsZero() {
		e.Time = s.Now()
	}
	e.Details = CanonicalDetails(details)
	if err := tx.AppendAudit(ctx, &e); err != nil {
		return fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	return nil
}

// errSettingMoved rolls back a change another process made first.
var errSettingMoved = errors.New("setting changed meanwhile")

// auditOnce appends e, then — holding the audit chain lock, which every
// appending transaction takes — checks that setting key still holds seen,
// the value the change was computed from. If another process changed it
// meanwhile it already recorded this change: errSettingMoved rolls ours back.
// This makes start-up and scheduled checks run by several replicas record
// each thing once.
func (s *Service) auditOnce(ctx context.Context, tx Tx, e *AuditEntry, key, seen string) error {
	if err := tx.AppendAudit(ctx, e); err != nil {
		return err
	}
	now, _, err := tx.Setting(ctx, key)
	if err != nil {
		return err
	}
	if now != seen {
		return errSettingMoved
	}
	return nil
}

// auditRequest appends an entry about r.
func (s *Service) auditRequest(ctx context.Context, tx Tx, r *Request, actor, actorEmail string, action Action, details map[string]any) error {
	return s.audit(ctx, tx, AuditEntry{
		ActorID:      actor,
		ActorEmail:   actorEmail,
		Action:       action,
		RequestID:    r.ID,
		RoleID:       r.RoleID,
		RoleName:     r.RoleName,
		SubjectID:    r.SubjectID,
		SubjectEmail: r.SubjectEmail,
	}, details)
}

// notifyPayload is what a notify job carries; the request is read fresh.
type notifyPayload struct {
	Type  EventType `json:"type"`
	Actor string    `json:"actor,omitempty"`
	Drift *Drift    `json:"drift,omitempty"`
	// Review and Changed: see Event.Review and Event.Changed.
	Review  int64 `json:"review,omitempty"`
	Changed []int `json:"changed,omitempty"`
}

// enqueueNotify writes a notification job in tx, so a committed change is
// always told about even if the process dies right after.
func (s *Service) enqueueNotify(ctx context.Context, tx Tx, requestID int64, p notifyPayload) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	if err := s.enqueue(ctx, tx, &Job{Kind: JobNotify, RequestID: requestID, Payload: string(b)}); err != nil {
		return err
	}
	if requestID != 0 && p.Type.TellsRequester() {
		return s.enqueue(ctx, tx, &Job{Kind: JobNotifyRequester, RequestID: requestID, Payload: string(b)})
	}
	return nil
}

func (s *Service) enqueue(ctx context.Context, tx Tx, j *Job) error {
	now := s.Now()
	if j.RunAt.IsZero() {
		j.RunAt = now
	}
	j.CreatedAt = now
	if err := tx.EnqueueJob(ctx, j); err != nil {
		return fmt.Errorf("enqueue %s job: %w", j.Kind, err)
	}
	return nil
}

// nudge wakes idle workers; called after a commit that wrote jobs.
func (s *Service) nudge() {
	for _, ch := range []chan struct{}{s.wake, s.wakeNotify, s.wakeRequester} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
