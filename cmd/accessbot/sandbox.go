package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/accessbot/accessbot/sandbox"
	"github.com/accessbot/accessbot/workflow"
)

// sandboxScenario is seeded data for `accessbot sandbox --scenario NAME`.
type sandboxScenario struct {
	about string
	seed  func() fakeSeed
	guide []string
}

// The sandbox's cast, shared by its scenarios.
var sandboxPeople = []struct {
	person fakePerson
	about  string
}{
	{fakePerson{demoAlice, "alice", "Alice", "Nguyen"}, "engineer; asks for access"},
	{fakePerson{demoBob, "bob", "Bob", "Okafor"}, "owner of Engineering, Incident Response and Data Warehouse"},
	{fakePerson{demoCarol, "carol", "Carol", "Schmidt"}, "owner of Finance and Data Warehouse"},
	{fakePerson{demoDave, "dave", "Dave", "Silva"}, "analyst"},
	{fakePerson{demoAdmin, "admin", "Ada", "Admin"}, "accessbot admin; decides for roles without owners, owner of Data Warehouse"},
}

const sandboxPolicy = `# accessbot sandbox policy (scenario "default")
defaults:
  owners: [U0ADMIN01]       # roles without owners are decided by Ada
  approvals_required: 1
  pending_expiry: 72h
  reminder_after: 24h
roles:
  - role: Engineering
    owners: [U0BOB0001]
    max_duration: 7d
  - role: Data Warehouse      # needs two of its three owners
    owners: [U0BOB0001, U0CAROL01, U0ADMIN01]
    approvals_required: 2
  - role: Finance
    owners: [U0CAROL01]
  - role: Incident Response   # short grants, so you can watch one end
    owners: [U0BOB0001]
    max_duration: 2m
    expiry_warning: [1m]      # the holder is warned a minute before, with Extend / I'm done
    break_glass: true         # /access breakglass Incident Response REASON: at once, owners alerted
  - role: Viewer
    auto_approve: true        # approved at once, still audited
`

var sandboxScenarios = map[string]sandboxScenario{
	"default": {
		about: "five people, five roles: one owner, two of three owners, auto-approve, 2-minute grants",
		seed:  defaultSandboxSeed,
		guide: []string{
			"As *Alice Nguyen*, type `/access request Engineering`, give a reason, pick *8 hours* and press *Send request*.",
			"As *Bob Okafor* (owner of Engineering), press *Approve* in his DM or in #access-approvals. Alice appears under Engineering in the PostHog panel, and she is told.",
			"As *Bob*, type `/access revoke 1` (requests are numbered `#1`, `#2`…): Alice leaves Engineering in PostHog and is told.",
			"More: *Incident Response* grants last 2 minutes: a minute before the end its holder gets *Extend* and *I'm done* buttons, then watches it end. *Viewer* is approved at once; *Data Warehouse* needs 2 of its 3 owners; `/access help` lists every command.",
			"Emergencies: as *Dave Silva*, type `/access breakglass Incident Response checkout is down`: he gets it at once, and Bob, Ada and #access-approvals get an alert with *Acknowledge* / *Revoke now*. As *Bob*, `/access review Engineering` sends him an access review of its members.",
		},
	},
	"quick-grants": {
		about: "the default scenario with 30-second Incident Response grants, warned after 10 seconds",
		seed: func() fakeSeed {
			seed := defaultSandboxSeed()
			seed.policy = strings.NewReplacer("max_duration: 2m", "max_duration: 30s",
				"expiry_warning: [1m]", "expiry_warning: [20s]").Replace(seed.policy)
			return seed
		},
		guide: []string{
			"As *Alice Nguyen*, type `/access request Incident Response`, pick *30s*; as *Bob Okafor*, press *Approve*.",
			"Ten seconds later Alice gets *Extend* and *I'm done* buttons; twenty seconds after that the grant ends by itself.",
		},
	},
	"many-roles": {
		about: "the default people and 150 extra roles: the role picker searches as you type",
		seed: func() fakeSeed {
			roles := []string{"Data Warehouse", "Engineering", "Finance", "Incident Response", "Viewer"}
			for i := 1; i <= 150; i++ {
				roles = append(roles, fmt.Sprintf("Project %03d", i))
			}
			return fakeSeed{roles: roles, policy: sandboxPolicy}
		},
		guide: []string{
			"As *Alice Nguyen*, type `/access request`, then type part of a role's name (say `proj 04`) in the role picker: with this many roles the picker asks the bot as you type.",
			"Roles without an owner in the policy, such as *Project 042*, are decided by *Ada Admin*.",
		},
	},
}

func defaultSandboxSeed() fakeSeed {
	return fakeSeed{
		roles:   []string{"Data Warehouse", "Engineering", "Finance", "Incident Response", "Viewer"},
		policy:  sandboxPolicy,
		members: map[string][]string{"Engineering": {demoBob}, "Finance": {demoCarol}},
	}
}

func scenarioNames() string {
	names := make([]string, 0, len(sandboxScenarios))
	for n := range sandboxScenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func runSandbox(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "sandbox", "sandbox [--listen ADDR] [--scenario NAME] [--verbose]",
		"Runs the real accessbot service against an in-process fake Slack and fake PostHog, seeded with\n"+
			"people, roles and a policy, and serves a web page where you act as any of those people: type\n"+
			"/access commands, fill in modals, click Approve, and watch PostHog's memberships and the audit\n"+
			"log change. No credentials, no network. The database is a temporary SQLite file, removed on\n"+
			"exit. Stops on SIGINT or SIGTERM. The page has no login: keep it on a loopback address.\n\n"+
			"Scenarios: "+scenarioNames()+".")
	listen := fs.String("listen", "127.0.0.1:8099", "address of the sandbox page")
	scenario := fs.String("scenario", "default", "seeded data: "+scenarioNames())
	verbose := fs.Bool("verbose", false, "show the service's own log lines")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	var logOut io.Writer
	if *verbose {
		logOut = c.stderr
	}
	sb, err := startSandbox(ctx, *listen, *scenario, logOut)
	if err != nil {
		return fail(c, "sandbox", err)
	}
	fmt.Fprintf(c.stdout, "accessbot sandbox (scenario %q) is running at %s\n", *scenario, sb.url)
	fmt.Fprintf(c.stdout, "Open it in a browser and pick who you are. Press Ctrl-C to stop.\n")
	<-ctx.Done()
	fmt.Fprintln(c.stdout, "stopping")
	if err := sb.close(); err != nil {
		return fail(c, "sandbox", err)
	}
	return 0
}

// runningSandbox is the service on fakes plus the page serving it.
type runningSandbox struct {
	*fakeStack
	url  string
	srv  *http.Server
	done chan error
}

// startSandbox starts the service for scenario and the page on listen,
// and returns once both answer.
func startSandbox(ctx context.Context, listen, scenario string, logOut io.Writer) (*runningSandbox, error) {
	sc, ok := sandboxScenarios[scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (known: %s)", scenario, scenarioNames())
	}
	seed := sc.seed()
	var people []sandbox.Person
	for _, p := range sandboxPeople {
		seed.people = append(seed.people, p.person)
		people = append(people, sandbox.Person{ID: p.person.id, Name: p.person.first + " " + p.person.last,
			Email: p.person.email(), About: p.about})
	}
	seed.admins = []string{demoAdmin}
	seed.channel = demoChan
	seed.scheduler = time.Second
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	f, err := startFakeStack(ctx, seed, "", logOut)
	if err != nil {
		ln.Close()
		return nil, err
	}
	var pageLog io.Writer = io.Discard
	if logOut != nil {
		pageLog = logOut
	}
	log, err := newLogger(pageLog, "info", "console")
	if err != nil {
		ln.Close()
		f.close()
		return nil, err
	}
	page, err := sandbox.New(sandbox.Config{
		Slack: f.slack, PostHog: f.ph, BotURL: f.base, SigningSecret: f.secret,
		People: people, Channel: demoChan, ChannelName: "access-approvals",
		Audit:    func(ctx context.Context) (sandbox.AuditView, error) { return readAudit(ctx, f) },
		Scenario: scenario, Guide: sc.guide,
		Logger: log.With().Str("component", "sandbox").Logger(),
	})
	if err != nil {
		ln.Close()
		f.close()
		return nil, err
	}
	sb := &runningSandbox{fakeStack: f, url: "http://" + ln.Addr().String(), done: make(chan error, 1),
		srv: &http.Server{Handler: page, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := sb.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			sb.done <- err
		}
		close(sb.done)
	}()
	return sb, nil
}

// close stops the page, then the service and the fakes.
func (sb *runningSandbox) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := sb.srv.Shutdown(ctx)
	if serveErr := <-sb.done; serveErr != nil && err == nil {
		err = serveErr
	}
	sb.fakeStack.close()
	return err
}

// readAudit is the audit panel: the entries and what `audit verify` says.
func readAudit(ctx context.Context, f *fakeStack) (sandbox.AuditView, error) {
	var v sandbox.AuditView
	err := f.db.AuditEntries(ctx, workflow.AuditFilter{}, func(e *workflow.AuditEntry) error {
		v.Entries = append(v.Entries, *e)
		return nil
	})
	if err != nil {
		return v, fmt.Errorf("read the audit log: %w", err)
	}
	rep, err := workflow.VerifyAudit(ctx, f.db)
	if err != nil {
		return v, err
	}
	v.Verdict, v.OK = rep.String(), rep.OK
	return v, nil
}
