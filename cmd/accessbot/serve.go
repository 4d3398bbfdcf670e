package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

func runServe(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "serve", "serve",
		"Runs the bot: the Slack-facing HTTP server (ACCESSBOT_LISTEN: /slack/*, /healthz), the operator\n"+
			"listener (ACCESSBOT_ADMIN_LISTEN: /healthz, /readyz, /metrics, /audit/export), Socket Mode when\n"+
			"SLACK_APP_TOKEN is set, the execution workers, the scheduler and the audit anchors. Applies\n"+
			"pending migrations first. Stops gracefully on SIGINT or SIGTERM. Configured by environment\n"+
			"variables: see README.md.")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	cfg, log, err := c.setup()
	if err != nil {
		return fail(c, "serve", err)
	}
	if err := cfg.validateServe(); err != nil {
		return fail(c, "serve", err)
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return fail(c, "serve", err)
	}
	if err := a.run(ctx); err != nil {
		return fail(c, "serve", err)
	}
	return 0
}

// app is the running service: everything `serve` wires together.
type app struct {
	cfg     config
	log     zerolog.Logger
	db      *store.DB
	svc     *workflow.Service
	bot     *bot.Bot
	metrics *metrics
	handler http.Handler // the Slack-facing listener
	admin   http.Handler // the operator listener
	anchors *auditAnchors

	preflight *preflight
	ready     chan string // receives the Slack listener's address once serving
	adminAddr string      // the operator listener's address, set before ready receives
}

// newApp builds the service from cfg: opens and migrates the database,
// checks the PostHog key and organization, and wires the workflow to Slack.
// Any error names what to fix.
func newApp(ctx context.Context, cfg config, log zerolog.Logger) (*app, error) {
	policy := workflow.DefaultPolicy()
	if cfg.PolicyFile != "" {
		p, err := workflow.LoadPolicy(cfg.PolicyFile)
		if err != nil {
			return nil, fmt.Errorf("invalid policy file: %w", err)
		}
		policy = p
	}
	db, err := openDB(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	m := newMetrics(db)

	phOpts := []posthog.Option{
		posthog.WithRateLimit(cfg.PostHogPerMinute, cfg.PostHogPerHour),
		posthog.WithUserAgent("accessbot/" + buildVersion()),
		posthog.WithLogger(log.With().Str("component", "posthog").Logger()),
		posthog.WithObserver(m.observePostHog),
	}
	ph, err := posthog.NewClient(cfg.PostHogHost, cfg.PostHogAPIKey, cfg.PostHogOrgID, phOpts...)
	if err != nil {
		return nil, fmt.Errorf("POSTHOG_HOST: %w", err)
	}
	pf := &preflight{ph: ph, log: log}
	if ph.OrganizationID() == posthog.CurrentOrganization {
		// @current follows the key owner's last-used organization: resolve
		// it now and pin the id before anything reads or writes.
		log.Warn().Msg("POSTHOG_ORGANIZATION_ID=@current: resolving it once and pinning the id; set the organization's id explicitly")
		if err := pf.await(ctx); err != nil {
			return nil, err
		}
		phOpts = append(phOpts, posthog.WithBudget(ph.Budget()))
		if ph, err = posthog.NewClient(cfg.PostHogHost, cfg.PostHogAPIKey, pf.org.ID, phOpts...); err != nil {
			return nil, err
		}
		pf.ph = ph
	} else {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := pf.run(pctx)
		cancel()
		var failure *preflightFailure
		switch {
		case errors.As(err, &failure):
			return nil, err
		case err != nil:
			log.Warn().Err(err).Msg("PostHog is not reachable at start; serving, not ready, and retrying the preflight before executing anything")
		}
	}

	dir := posthogdir.New(ph)
	if err := bindPolicy(ctx, policy, dir, db, log); err != nil {
		return nil, err
	}

	if err := checkSlack(ctx, cfg.SlackAPIURL, cfg.SlackBotToken, &http.Client{Timeout: 15 * time.Second}, log); err != nil {
		return nil, err
	}
	api := slack.New(cfg.SlackBotToken, slack.OptionAPIURL(cfg.SlackAPIURL), slack.OptionAppLevelToken(cfg.SlackAppToken))
	var b *bot.Bot
	sm := newSlackMetrics(m.registry, func() bool { return b != nil && b.Ready(ctx) == nil })
	users := bot.NewUsers(api, 10*time.Minute)
	svc, err := workflow.NewService(workflow.Config{
		Store:      db,
		Directory:  dir,
		Users:      users,
		Policy:     policy,
		Admins:     cfg.Admins,
		Logger:     log.With().Str("component", "workflow").Logger(),
		ObserveJob: m.observeJob,
	})
	if err != nil {
		return nil, err
	}
	b, err = bot.New(bot.Config{
		Workflow:         svc,
		Slack:            api,
		SigningSecret:    cfg.SlackSigningSecret,
		ApprovalsChannel: cfg.ApprovalsChannel,
		Logger:           log.With().Str("component", "slack").Logger(),
		Observe:          m.observeSlack,
		Dropped:          func(reason string) { sm.dropped.WithLabelValues(reason).Inc() },
		Unpaced:          cfg.slackUnpaced,
		Users:            users,
		SocketMode:       cfg.SlackAppToken != "",
	})
	if err != nil {
		return nil, err
	}
	svc.SetNotifier(b)
	if err := svc.RecordPolicy(ctx); err != nil {
		return nil, fmt.Errorf("record policy: %w", err)
	}

	anchors, err := newAuditAnchors(cfg, db, api, m, log)
	if err != nil {
		return nil, err
	}

	// Slack's endpoints face the internet in HTTP mode; the operator's
	// (metrics, readiness, the audit export) get a listener of their own.
	r := mux.NewRouter()
	b.Routes(r)
	healthRoute(r)
	admin := mux.NewRouter()
	operatorRoutes(admin, readyAll{readyChecks{db, pf}, b}, m, svc, cfg.AuditToken, log)
	ok = true
	return &app{cfg: cfg, log: log, db: db, svc: svc, bot: b, metrics: m, handler: recoverer(log, r), preflight: pf,
		admin: recoverer(log, admin), anchors: anchors, ready: make(chan string, 1)}, nil
}

// readyChecks is readiness: the database, then the PostHog preflight.
type readyChecks struct {
	db readiness
	pf *preflight
}

func (c readyChecks) Ready(ctx context.Context) error {
	if err := c.db.Ready(ctx); err != nil {
		return err
	}
	return c.pf.Ready()
}

// bindPolicy binds the policy's roles to PostHog role ids: a role PostHog
// does not have (or renamed) stops start-up with file:line; PostHog being
// unreachable does not (the ids remembered from the last start are used).
func bindPolicy(ctx context.Context, p *workflow.Policy, dir workflow.Directory, db workflow.Store, log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := workflow.BindPolicy(ctx, p, dir, db)
	switch {
	case err == nil:
		for _, e := range p.Roles {
			log.Debug().Str("role", e.Role).Str("role_id", e.RoleID).Msg("policy role bound")
		}
		return nil
	case workflow.ErrorCode(err) == workflow.EUNAVAILABLE:
		log.Warn().Err(err).Msg("PostHog is not reachable at start; the policy uses the role ids bound at the last start")
		return nil
	default:
		var pe *workflow.PolicyError
		if errors.As(err, &pe) {
			return fmt.Errorf("invalid policy file: %w", err)
		}
		return fmt.Errorf("bind the policy to PostHog roles: %w", err)
	}
}

// run serves until ctx ends, then shuts down in order: stop taking Slack
// requests, finish the work already acknowledged, let workers finish or
// release their jobs, close the database. It returns within
// ShutdownTimeout of ctx ending.
func (a *app) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("ACCESSBOT_LISTEN %q: %w", a.cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", a.cfg.AdminListen)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("ACCESSBOT_ADMIN_LISTEN %q: %w", a.cfg.AdminListen, err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	// No ReadTimeout/WriteTimeout beyond the header: an audit export may
	// stream for minutes.
	adminSrv := &http.Server{Handler: a.admin, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	go func() {
		if err := adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("operator http server: %w", err)
		}
	}()
	wg.Add(2)
	go func() { defer wg.Done(); a.anchors.run(workCtx) }()
	go func() {
		defer wg.Done()
		// Nothing acts on PostHog before the preflight passed.
		if !a.preflight.Passed() {
			if err := a.preflight.await(workCtx); err != nil {
				if workCtx.Err() == nil {
					errc <- err
				}
				return
			}
		}
		wg.Add(2)
		go func() { defer wg.Done(); a.svc.RunWorkers(workCtx, a.cfg.Workers, a.cfg.ShutdownTimeout/2) }()
		go func() {
			defer wg.Done()
			a.svc.RunScheduler(workCtx, a.cfg.SchedulerInterval, a.cfg.ReconcileInterval)
		}()
	}()
	socketDone := make(chan struct{})
	if a.cfg.SlackAppToken != "" {
		go func() {
			defer close(socketDone)
			if err := a.bot.RunSocketMode(workCtx, a.cfg.SlackAppToken); err != nil && workCtx.Err() == nil {
				errc <- fmt.Errorf("socket mode: %w", err)
			}
		}()
	} else {
		close(socketDone)
	}
	mode := "http"
	if a.cfg.SlackAppToken != "" {
		mode = "socket"
	}
	a.adminAddr = adminLn.Addr().String()
	a.log.Info().Str("listen", ln.Addr().String()).Str("admin_listen", a.adminAddr).Str("slack_mode", mode).Int("workers", a.cfg.Workers).
		Str("database", a.db.Dialect()).Str("version", buildVersion()).Msg("accessbot serving")
	a.ready <- ln.Addr().String()

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info().Msg("shutting down")
	case runErr = <-errc:
		a.log.Error().Err(runErr).Msg("shutting down after a fatal error")
	}

	deadline, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	// Workers take no new job from now on; one in flight has half the
	// shutdown time to finish before it is interrupted and released.
	stopWork()
	if err := srv.Shutdown(deadline); err != nil {
		a.log.Warn().Err(err).Msg("HTTP server did not drain in time")
	}
	if err := adminSrv.Shutdown(deadline); err != nil {
		a.log.Warn().Err(err).Msg("operator HTTP server did not drain in time")
	}
	if err := a.bot.Wait(deadline); err != nil {
		a.log.Warn().Err(err).Msg("acknowledged Slack work did not finish in time")
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); <-socketDone; close(workersDone) }()
	select {
	case <-workersDone:
	case <-deadline.Done():
		// A job still running keeps its lease until it ends; another
		// process (or this one after restart) takes it over. Nothing is lost.
		a.log.Warn().Msg("workers did not finish in time; their jobs will be resumed after restart")
	}
	// The last checkpoint signs everything this process wrote.
	a.anchors.shutdown(deadline)
	if err := a.db.Close(); err != nil {
		a.log.Warn().Err(err).Msg("closing the database")
	}
	a.log.Info().Msg("stopped")
	return runErr
}
