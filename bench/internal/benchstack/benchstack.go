// Package benchstack wires an in-process accessbot for the benchmark tools
// under bench/: a fake Slack and a fake PostHog, SQLite in a temporary
// directory, the workflow with its workers (and, when asked, its scheduler)
// and the bot's HTTP endpoints behind an httptest server.
package benchstack

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// Secret is the Slack signing secret the stack's bot checks.
const Secret = "bench-signing-secret"

// Person is someone in both fakes, with the same email.
type Person struct{ ID, Email string }

// Options say what the stack starts with.
type Options struct {
	People  []Person
	Roles   map[string]int // role name → members seeded in PostHog before start
	Policy  string         // policy YAML; its roles are bound to PostHog's
	Channel string         // approvals channel ("" for none)

	PostHog []posthogtest.Option // the fake PostHog's behaviour (limits)
	Client  []posthog.Option     // the client's, after the defaults
	// Scheduler runs the scheduler at this interval (0: not at all),
	// reconciling every Reconcile (0: never).
	Scheduler, Reconcile time.Duration
	PollInterval         time.Duration // idle workers' poll (0: the default)
}

// Stack is a running accessbot with its fakes.
type Stack struct {
	Slack  *slacktest.Server
	PH     *posthogtest.Server
	DB     *store.DB
	Svc    *workflow.Service
	Bot    *bot.Bot
	HTTP   *httptest.Server
	Client *posthog.Client
	Roles  map[string]string // name → PostHog id

	jobsMu sync.Mutex
	jobs   map[string]int64 // "kind outcome" → job runs that ended so

	stop func()
}

func (s *Stack) observeJob(kind workflow.JobKind, outcome string) {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	s.jobs[string(kind)+" "+outcome]++
}

// JobRuns is how many job runs have ended, by "kind outcome" (as
// workflow.Config.ObserveJob reports them): a copy of the counts so far.
func (s *Stack) JobRuns() map[string]int64 {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	out := make(map[string]int64, len(s.jobs))
	for k, v := range s.jobs {
		out[k] = v
	}
	return out
}

// New starts a stack.
func New(o Options) (*Stack, error) {
	s := &Stack{Slack: slacktest.NewServer(), PH: posthogtest.NewServer(o.PostHog...), Roles: map[string]string{},
		jobs: map[string]int64{}, stop: func() {}}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	for _, p := range o.People {
		s.AddPerson(p)
	}
	// In name order, so every run seeds the same organization (PostHog
	// lists roles in the order they were made).
	for _, name := range slices.Sorted(maps.Keys(o.Roles)) {
		n := o.Roles[name]
		id := s.PH.AddRole(name).ID
		s.Roles[name] = id
		for i := 0; i < n; i++ {
			u := s.PH.AddUser(fmt.Sprintf("%s-member%05d@example.com", name, i), "Member", fmt.Sprint(i))
			s.PH.AddMembership(id, u.UUID)
		}
	}
	dir, err := os.MkdirTemp("", "accessbot-bench-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s.stop = func() {
		cancel()
		wg.Wait()
		if s.HTTP != nil {
			s.HTTP.Close()
		}
		if s.DB != nil {
			s.DB.Close()
		}
		_ = os.RemoveAll(dir)
	}
	if s.DB, err = store.Open(ctx, "sqlite:"+filepath.Join(dir, "bench.db")); err != nil {
		return nil, err
	}
	if err := s.DB.Migrate(ctx); err != nil {
		return nil, err
	}
	if s.Client, err = posthog.NewClient(s.PH.URL(), s.PH.APIKey(), s.PH.OrganizationID(), o.Client...); err != nil {
		return nil, err
	}
	pol, err := workflow.ParsePolicy("bench.yaml", []byte(o.Policy))
	if err != nil {
		return nil, err
	}
	dir2 := posthogdir.New(s.Client)
	if err := workflow.BindPolicy(ctx, pol, dir2, s.DB); err != nil {
		return nil, err
	}
	api := slack.New("xoxb-bench", slack.OptionAPIURL(s.Slack.URL()+"/api/"))
	log := zerolog.Nop()
	users := bot.NewUsers(api, 10*time.Minute) // shared by the workflow and the bot, as serve does
	if s.Svc, err = workflow.NewService(workflow.Config{Store: s.DB, Directory: dir2, Users: users,
		Policy: pol, Logger: log, PollInterval: o.PollInterval, ObserveJob: s.observeJob}); err != nil {
		return nil, err
	}
	if s.Bot, err = bot.New(bot.Config{Workflow: s.Svc, Slack: api, Users: users, SigningSecret: Secret, ApprovalsChannel: o.Channel, Logger: log}); err != nil {
		return nil, err
	}
	s.Svc.SetNotifier(s.Bot)
	r := mux.NewRouter()
	s.Bot.Routes(r)
	s.HTTP = httptest.NewServer(r)
	wg.Add(1)
	go func() { defer wg.Done(); s.Svc.RunWorkers(ctx, 4, time.Second) }()
	if o.Scheduler > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Svc.RunScheduler(ctx, o.Scheduler, o.Reconcile) }()
	}
	ok = true
	return s, nil
}

// Close stops the service and the fakes and removes the database.
func (s *Stack) Close() {
	s.stop()
	s.Slack.Close()
	s.PH.Close()
}

// AddPerson adds someone to both fakes.
func (s *Stack) AddPerson(p Person) {
	s.Slack.AddUser(p.ID, p.ID, p.Email)
	s.PH.AddUser(p.Email, "Person", p.ID)
}

// Post sends a request signed as Slack signs it to the bot.
func (s *Stack) Post(path, body string) (int, string, error) {
	res, err := http.DefaultClient.Do(slacktest.SignedRequest(Secret, s.HTTP.URL+path, body, time.Now()))
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// ApproverMessage is the copy of request id in channel ch, once delivered.
func (s *Stack) ApproverMessage(id int64, ch string) (slacktest.Message, bool) {
	return ApproverMessage(s.Svc, s.Slack, id, ch)
}

// ApproverMessage is the copy of request id in channel ch, once svc has
// recorded its delivery to sl.
func ApproverMessage(svc *workflow.Service, sl *slacktest.Server, id int64, ch string) (slacktest.Message, bool) {
	refs, err := svc.Messages(context.Background(), id)
	if err != nil {
		return slacktest.Message{}, false
	}
	for _, ref := range refs {
		if ref.Channel == ch {
			return sl.Message(ref.Channel, ref.TS)
		}
	}
	return slacktest.Message{}, false
}

// WaitFor polls cond until it holds (true) or d has passed (false).
func WaitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
