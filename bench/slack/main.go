// Command slack measures accessbot against a fake Slack that behaves as
// Slack documents (tiers with 429 + Retry-After, Socket Mode's 20 KiB
// frames), for the targets of "Real Slack at real limits":
//
//	approvals  30 approvals in one minute with chat.update limited to 50/min:
//	           how long until every requester is told, and how many
//	           chat.update calls were made (target ≤ 1.5 × copies × changes)
//	typeahead  150 roles named with &<>: the Socket Mode typeahead answer's
//	           size (target < 20,480 bytes) and that it arrives
//	crash      kill -9 right after each of 20 acknowledged Approve clicks:
//	           decisions present after restart (target 20 of 20); needs the
//	           accessbot binary (-binary, built with go build ./cmd/accessbot)
//
// Run: go run ./bench/slack [-scenario all|approvals|typeahead|crash] [-binary PATH]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/bench/internal/benchstack"
	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slacktest"
	"github.com/accessbot/accessbot/bot/views"
	"github.com/accessbot/accessbot/posthog"
	"github.com/accessbot/accessbot/posthog/posthogtest"
	"github.com/accessbot/accessbot/posthogdir"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

const (
	appToken = "xapp-1-bench"
	bob      = "U0BOB0001"
	channel  = "C0APPROVALS"
)

func main() {
	scenario := flag.String("scenario", "all", "all, approvals, typeahead or crash")
	binary := flag.String("binary", "", "accessbot binary for the crash scenario (default: go build it)")
	flag.Parse()
	ok := true
	run := func(name string, fn func() (bool, error)) {
		if *scenario != "all" && *scenario != name {
			return
		}
		pass, err := fn()
		if err != nil {
			fmt.Printf("%s: error: %v\n", name, err)
			ok = false
			return
		}
		ok = ok && pass
	}
	run("typeahead", typeahead)
	run("approvals", approvals)
	run("crash", func() (bool, error) { return crash(*binary) })
	if !ok {
		os.Exit(1)
	}
}

// newWorld is an in-process accessbot (see benchstack) with bob owning
// Engineering (and extraRoles), requesters people asking, and an approvals
// channel.
func newWorld(requesters int, extraRoles []string) (*benchstack.Stack, error) {
	people := []benchstack.Person{{ID: bob, Email: "bob@example.com"}}
	for i := 0; i < requesters; i++ {
		people = append(people, benchstack.Person{ID: requester(i), Email: fmt.Sprintf("user%02d@example.com", i)})
	}
	roles := map[string]int{"Engineering": 0}
	for _, r := range extraRoles {
		roles[r] = 0
	}
	return benchstack.New(benchstack.Options{People: people, Roles: roles, Channel: channel, PollInterval: 200 * time.Millisecond,
		Policy: "roles:\n  - role: Engineering\n    owners: [" + bob + "]\n"})
}

func requester(i int) string { return fmt.Sprintf("U0REQ%04d", i) }

func waitFor(timeout time.Duration, cond func() bool) bool { return benchstack.WaitFor(timeout, cond) }

// approvals: 30 requests, bob approves them over one minute while
// chat.update is limited to 50 a minute.
func approvals() (bool, error) {
	const n = 30
	w, err := newWorld(n, nil)
	if err != nil {
		return false, err
	}
	defer w.Close()
	w.Slack.LimitLikeSlack()
	ctx := context.Background()
	var reqs []*workflow.Request
	// Thirty people ask within about 20 seconds (users.info is Tier 4).
	for i := 0; i < n; i++ {
		sub, cancel := context.WithTimeout(ctx, 2500*time.Millisecond) // the modal's budget
		r, err := w.Svc.CreateRequest(sub, workflow.NewRequest{Kind: workflow.KindAdd, RequesterID: requester(i),
			Role: "Engineering", Reason: "bench", Duration: time.Hour})
		cancel()
		if err != nil {
			return false, err
		}
		reqs = append(reqs, r)
		time.Sleep(700 * time.Millisecond)
	}
	bobDM := slacktest.DMChannel(bob)
	if !waitFor(5*time.Minute, func() bool {
		for _, r := range reqs {
			if _, ok := w.ApproverMessage(r.ID, bobDM); !ok {
				return false
			}
		}
		return true
	}) {
		return false, fmt.Errorf("approver messages were not all delivered")
	}
	refs, _ := w.Svc.Messages(ctx, reqs[0].ID)
	copies := len(refs)
	w.Slack.ResetCalls()
	limitedBefore := w.Slack.RateLimited("chat.update")

	start := time.Now()
	clicked := make([]time.Time, n)
	told := make([]time.Duration, n)
	var mu sync.Mutex
	// Watch the requesters' DMs while bob clicks.
	watchDone := make(chan bool, 1)
	go func() {
		watchDone <- waitFor(10*time.Minute, func() bool {
			mu.Lock()
			defer mu.Unlock()
			done := true
			for i := range reqs {
				if told[i] != 0 {
					continue
				}
				if !clicked[i].IsZero() {
					for _, m := range w.Slack.Messages(slacktest.DMChannel(requester(i))) {
						if strings.Contains(m.Text+string(m.Blocks), "you are now a member") {
							told[i] = time.Since(clicked[i])
						}
					}
				}
				done = done && told[i] != 0
			}
			return done
		})
	}()
	for i, r := range reqs {
		m, _ := w.ApproverMessage(r.ID, bobDM)
		p, err := w.Slack.ClickMessage(bob, m, views.ActionApprove, "")
		if err != nil {
			return false, err
		}
		at := time.Now()
		if _, _, err := w.Post("/slack/interactions", slacktest.InteractionForm(p)); err != nil {
			return false, err
		}
		mu.Lock()
		clicked[i] = at
		mu.Unlock()
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Minute / n)))
	}
	allTold := <-watchDone
	var worst time.Duration
	for _, d := range told {
		worst = max(worst, d)
	}
	copiesDone := waitFor(10*time.Minute, func() bool {
		// A copy is final when it shows neither buttons nor work in progress.
		for _, r := range reqs {
			rr, _ := w.Svc.Messages(ctx, r.ID)
			for _, ref := range rr {
				m, _ := w.Slack.Message(ref.Channel, ref.TS)
				if b := string(m.Blocks); strings.Contains(b, views.ActionApprove) || strings.Contains(b, "PostHog…") || strings.Contains(b, "waiting for") {
					return false
				}
			}
		}
		return true
	})
	allCopies := time.Since(start)
	updates := len(w.Slack.CallsTo("chat.update"))
	limited := w.Slack.RateLimited("chat.update") - limitedBefore
	changes := 2 // approved, completed
	bound := 1.5 * float64(copies*changes*n)
	pass := allTold && worst <= 5*time.Minute && float64(updates) <= bound && copiesDone
	fmt.Printf("approvals: %d approvals over %v; requesters told: %v (slowest %v after the click, target 5m); "+
		"copies per request %d, state changes %d; chat.update calls %d (%d answered 429), bound %.0f; every copy final after %v (%v); pass=%v\n",
		n, time.Duration(n)*time.Minute/n, allTold, worst.Round(time.Second), copies, changes, updates, limited, bound,
		allCopies.Round(time.Second), copiesDone, pass)
	return pass, nil
}

// typeahead: 150 roles with &<> in their names, answered over Socket Mode.
func typeahead() (bool, error) {
	var names []string
	for i := 0; i < 150; i++ {
		names = append(names, fmt.Sprintf("R&D <%03d> & <ops> && <<data>>", i))
	}
	w, err := newWorld(1, names)
	if err != nil {
		return false, err
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Bot.RunSocketMode(ctx, appToken) }()
	if err := w.Slack.WaitSocket(ctx); err != nil {
		return false, err
	}
	if _, err := w.Slack.PushSlashCommand(ctx, w.Slack.SlashCommand(requester(0), "request")); err != nil {
		return false, err
	}
	var v slacktest.View
	if !waitFor(10*time.Second, func() bool { var ok bool; v, ok = w.Slack.LastModal(requester(0)); return ok }) {
		return false, fmt.Errorf("no modal")
	}
	p, err := w.Slack.BlockSuggestion(requester(0), v, views.ActionRoleSelect, "")
	if err != nil {
		return false, err
	}
	ack, err := w.Slack.PushInteraction(ctx, p)
	if err != nil {
		return false, fmt.Errorf("typeahead answer never arrived: %w (oversized frames %d)", err, w.Slack.OversizedFrames())
	}
	frame, _ := json.Marshal(map[string]any{"envelope_id": "env-0000000000", "payload": ack.Payload})
	var opts struct {
		Options []json.RawMessage `json:"options"`
	}
	_ = json.Unmarshal(ack.Payload, &opts)
	pass := len(frame) < slacktest.MaxSocketFrameBytes && w.Slack.OversizedFrames() == 0 && len(opts.Options) > 0
	fmt.Printf("typeahead: 150 roles named with &<>: answer %d bytes (frame ≈ %d, limit %d), %d options, oversized frames %d; pass=%v\n",
		len(ack.Payload), len(frame), slacktest.MaxSocketFrameBytes, len(opts.Options), w.Slack.OversizedFrames(), pass)
	cancel()
	<-done
	return pass, nil
}

// crash: each of 20 Approve clicks is acknowledged and the process killed
// with SIGKILL at once; after a restart every decision is there.
func crash(binary string) (bool, error) {
	const n = 20
	dir, err := os.MkdirTemp("", "accessbot-crash-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	if binary == "" {
		binary = filepath.Join(dir, "accessbot")
		build := exec.Command("go", "build", "-o", binary, "./cmd/accessbot")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return false, fmt.Errorf("build accessbot: %w", err)
		}
	}
	sl, ph := slacktest.NewServer(), posthogtest.NewServer()
	defer sl.Close()
	defer ph.Close()
	sl.AddUser(bob, "bob", "bob@example.com")
	ph.AddUser("bob@example.com", "Bob", "Owner")
	for i := 0; i < n; i++ {
		email := fmt.Sprintf("user%02d@example.com", i)
		sl.AddUser(requester(i), "user", email)
		ph.AddUser(email, "User", fmt.Sprint(i))
	}
	ph.AddRole("Engineering")
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("roles:\n  - role: Engineering\n    owners: ["+bob+"]\n"), 0o600); err != nil {
		return false, err
	}
	dbURL := "sqlite:" + filepath.Join(dir, "accessbot.db")
	env := []string{"DATABASE_URL=" + dbURL, "SLACK_BOT_TOKEN=xoxb-crash", "SLACK_SIGNING_SECRET=" + benchstack.Secret,
		"SLACK_API_URL=" + sl.URL() + "/api/", "POSTHOG_HOST=" + ph.URL(), "POSTHOG_PERSONAL_API_KEY=" + ph.APIKey(),
		"POSTHOG_ORGANIZATION_ID=" + ph.OrganizationID(), "ACCESSBOT_POLICY_FILE=" + policy, "PATH=" + os.Getenv("PATH")}

	start := func() (*exec.Cmd, string, error) {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		adminPort, err := freePort()
		if err != nil {
			return nil, "", err
		}
		cmd := exec.Command(binary, "serve")
		cmd.Env = append(env, fmt.Sprintf("ACCESSBOT_LISTEN=127.0.0.1:%d", port), fmt.Sprintf("ACCESSBOT_ADMIN_LISTEN=127.0.0.1:%d", adminPort))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return nil, "", err
		}
		if err := cmd.Start(); err != nil {
			return nil, "", err
		}
		serving := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			closed := false
			for sc.Scan() {
				if !closed && strings.Contains(sc.Text(), "accessbot serving") {
					close(serving)
					closed = true
				}
			}
		}()
		select {
		case <-serving:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			return nil, "", fmt.Errorf("accessbot did not start")
		}
		return cmd, fmt.Sprintf("http://127.0.0.1:%d", port), nil
	}

	// Create the requests (through the workflow, on the same database).
	ctx := context.Background()
	first, _, err := start()
	if err != nil {
		return false, err
	}
	_ = first.Process.Signal(syscall.SIGTERM)
	_ = first.Wait()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		return false, err
	}
	phc, err := posthog.NewClient(ph.URL(), ph.APIKey(), ph.OrganizationID())
	if err != nil {
		return false, err
	}
	pol, err := workflow.LoadPolicy(policy)
	if err != nil {
		return false, err
	}
	if err := workflow.BindPolicy(ctx, pol, posthogdir.New(phc), db); err != nil {
		return false, err
	}
	api := slack.New("xoxb-crash", slack.OptionAPIURL(sl.URL()+"/api/"))
	svc, err := workflow.NewService(workflow.Config{Store: db, Directory: posthogdir.New(phc), Users: bot.NewUsers(api, time.Hour), Policy: pol, Logger: zerolog.Nop()})
	if err != nil {
		return false, err
	}
	var ids []int64
	for i := 0; i < n; i++ {
		r, err := svc.CreateRequest(ctx, workflow.NewRequest{Kind: workflow.KindAdd, RequesterID: requester(i), Role: "Engineering", Reason: "crash", Duration: time.Hour})
		if err != nil {
			return false, err
		}
		ids = append(ids, r.ID)
	}

	// Deliver every approver message first (a process killed mid-delivery
	// holds its job's lease for two minutes).
	deliver, _, err := start()
	if err != nil {
		return false, err
	}
	if !waitFor(2*time.Minute, func() bool { return len(sl.Messages(slacktest.DMChannel(bob))) >= n }) {
		_ = deliver.Process.Kill()
		return false, fmt.Errorf("approver messages not delivered")
	}
	_ = deliver.Process.Signal(syscall.SIGTERM)
	_ = deliver.Wait()

	acked := 0
	var ackTimes []time.Duration
	for i, id := range ids {
		cmd, base, err := start()
		if err != nil {
			return false, err
		}
		var m slacktest.Message
		found := waitFor(60*time.Second, func() (ok bool) {
			m, ok = benchstack.ApproverMessage(svc, sl, id, slacktest.DMChannel(bob))
			return ok
		})
		if !found {
			_ = cmd.Process.Kill()
			return false, fmt.Errorf("click %d: no approver message for request %d", i+1, id)
		}
		p, err := sl.ClickMessage(bob, m, views.ActionApprove, "")
		if err != nil {
			_ = cmd.Process.Kill()
			return false, err
		}
		sent := time.Now()
		res, err := http.DefaultClient.Do(slacktest.SignedRequest(benchstack.Secret, base+"/slack/interactions", slacktest.InteractionForm(p), sent))
		if err == nil && res.StatusCode == http.StatusOK {
			_ = cmd.Process.Signal(syscall.SIGKILL) // right after the ack
			acked++
			ackTimes = append(ackTimes, time.Since(sent))
			res.Body.Close()
		} else {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
		_ = cmd.Wait()
	}
	present := 0
	for _, id := range ids {
		r, err := svc.Request(ctx, id)
		if err != nil {
			return false, err
		}
		if r.State != workflow.StatePending && len(r.Approvals) == 1 {
			present++
		}
	}
	db.Close()
	var worst time.Duration
	for _, d := range ackTimes {
		worst = max(worst, d)
	}
	pass := acked == n && present == n
	fmt.Printf("crash: %d of %d clicks acknowledged (slowest ack %v), process killed with SIGKILL after each; %d of %d decisions present after restart; pass=%v\n",
		acked, n, worst.Round(time.Millisecond), present, n, pass)
	return pass, nil
}

func freePort() (int, error) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	var port int
	_, err := fmt.Sscanf(srv.URL, "http://127.0.0.1:%d", &port)
	return port, err
}
