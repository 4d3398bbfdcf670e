// Command exportbench measures accessbot's audit export and verification
// side by side with the sqlite3 shell on one SQLite file, in one run, and
// prints a Markdown table for BENCHMARKS.md.
//
//	go run ./bench/exportbench -entries 1000000 -runs 3
//
// It builds bin/accessbot-bench (or uses -accessbot), makes a database of
// -entries chained audit entries (kept with -db for later runs), and times:
// `sqlite3 -csv` of the same columns (the baseline), `sqlite3 -json`,
// `accessbot audit export --format csv|jsonl`, `accessbot audit verify`,
// and GET /audit/export (csv and jsonl) from a running `accessbot serve`.
// Output goes to /dev/null, so the figures are the programs' own cost.
// Each figure is the fastest of -runs runs, next to the median; peak RSS
// is the process's VmHWM, sampled from /proc.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

func main() {
	entries := flag.Int("entries", 1_000_000, "audit entries in the generated database")
	runs := flag.Int("runs", 3, "runs of each command; the fastest counts")
	dbPath := flag.String("db", "", "database file to use (generated when missing); default a temporary file")
	bin := flag.String("accessbot", "", "accessbot binary; default: build one")
	flag.Parse()
	if err := run(*entries, *runs, *dbPath, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "exportbench:", err)
		os.Exit(1)
	}
}

func run(entries, runs int, dbPath, bin string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "exportbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "accessbot")
		b := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/accessbot")
		b.Env = append(os.Environ(), "CGO_ENABLED=0")
		b.Stderr = os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build accessbot: %w", err)
		}
	}
	if dbPath == "" {
		dbPath = filepath.Join(dir, "audit.db")
	}
	if _, err := os.Stat(dbPath); err != nil {
		fmt.Fprintf(os.Stderr, "generating %d entries in %s…\n", entries, dbPath)
		if err := generate(ctx, dbPath, entries); err != nil {
			return err
		}
	}
	env := append(os.Environ(), "DATABASE_URL=sqlite:"+dbPath, "ACCESSBOT_LOG_LEVEL=error")
	columns := "seq, at, actor_id, actor_email, action, request_id, role_id, role_name, subject_id, subject_email, details, prev_hash, hash"
	query := "SELECT " + columns + " FROM audit_log ORDER BY seq"

	type result struct {
		name    string
		seconds []float64 // one per round
		cpu     float64   // user+sys seconds of the fastest round (0: not measured)
		rssMiB  float64
	}
	var lastCPU float64 // CPU seconds of the last command run
	command := func(env []string, name string, args ...string) func() (time.Duration, float64, error) {
		return func() (time.Duration, float64, error) {
			c := exec.Command(name, args...)
			c.Env = env
			devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				return 0, 0, err
			}
			defer devnull.Close()
			c.Stdout = devnull
			var stderr strings.Builder
			c.Stderr = &stderr
			start := time.Now()
			if err := c.Start(); err != nil {
				return 0, 0, err
			}
			// getrusage's maxrss would count the benchmark's own memory,
			// which the child shares until exec: sample VmHWM instead.
			peak := make(chan float64)
			go func() {
				var hwm float64
				for {
					if v := vmHWM(c.Process.Pid); v > 0 {
						hwm = v
					}
					select {
					case <-peak:
						peak <- hwm
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			err = c.Wait()
			d := time.Since(start)
			peak <- 0
			hwm := <-peak
			if err != nil {
				return 0, 0, fmt.Errorf("%v: %s", err, stderr.String())
			}
			lastCPU = (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds()
			return d, hwm, nil
		}
	}

	steps := []struct {
		name string
		f    func() (time.Duration, float64, error)
	}{
		{"sqlite3 -csv (baseline)", command(env, "sqlite3", "-csv", "-header", dbPath, query)},
		{"sqlite3 -json", command(env, "sqlite3", "-json", dbPath, query)},
		{"accessbot audit export --format csv", command(env, bin, "audit", "export", "--format", "csv")},
		{"accessbot audit export --format jsonl", command(env, bin, "audit", "export", "--format", "jsonl")},
		{"accessbot audit verify", command(env, bin, "audit", "verify")},
	}
	srv, err := startServe(bin, dbPath, dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	for _, format := range []string{"csv", "jsonl"} {
		steps = append(steps, struct {
			name string
			f    func() (time.Duration, float64, error)
		}{"GET /audit/export?format=" + format, func() (time.Duration, float64, error) { lastCPU = 0; return srv.export(format) }})
	}
	// Warm the page cache, then run every command once per round, so load
	// from other processes on the machine falls on all of them alike; the
	// fastest round of each counts.
	if _, _, err := steps[0].f(); err != nil {
		return err
	}
	results := make([]result, len(steps))
	for round := 0; round < runs; round++ {
		for i, s := range steps {
			d, rss, err := s.f()
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			r := &results[i]
			r.name = s.name
			if len(r.seconds) == 0 || d.Seconds() < slices.Min(r.seconds) {
				r.cpu = lastCPU
			}
			r.seconds = append(r.seconds, d.Seconds())
			r.rssMiB = max(r.rssMiB, rss)
			fmt.Fprintf(os.Stderr, "round %d  %-40s %.2fs  %.1f MiB\n", round+1, s.name, d.Seconds(), rss)
		}
	}

	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	base, baseMedian := slices.Min(results[0].seconds), median(results[0].seconds)
	fmt.Printf("\n%d entries, %d rounds, %s/%s, %d CPUs, %s\n\n", entries, runs, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Println("| what | best s | entries/s | speed vs `sqlite3 -csv` (best) | (median) | CPU s | peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range results {
		best := slices.Min(r.seconds)
		cpu := "—"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.2f", r.cpu)
		}
		fmt.Printf("| %s | %.2f | %s | %.2f× | %.2f× | %s | %.1f MiB |\n", r.name, best, thousands(int64(float64(entries)/best)),
			base/best, baseMedian/median(r.seconds), cpu, r.rssMiB)
	}
	return nil
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// generate writes n chained entries shaped like real ones (request
// lifecycles with emails, role names and JSON details), in one transaction.
func generate(ctx context.Context, path string, n int) error {
	db, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	raw := db.Bun().DB
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	// The head may only move one entry at a time; a bulk load moves it
	// once, so its guard is set aside and put back.
	var guard string
	if err := tx.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE name = 'audit_head_forward_only'").Scan(&guard); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DROP TRIGGER audit_head_forward_only"); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_log (seq, at, actor_id, actor_email, action, request_id, role_id,
		role_name, subject_id, subject_email, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	actions := []workflow.Action{workflow.ActionRequestCreated, workflow.ActionRequestApproved, workflow.ActionExecutionStarted,
		workflow.ActionMembershipAdded, workflow.ActionGrantRevoked}
	roles := []string{"Engineering", "Finance", "Incident Response", "Viewer", "Data, Analytics"}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := ""
	for i := 1; i <= n; i++ {
		req := int64(i/5 + 1)
		person := "user" + strconv.Itoa(i%997)
		e := workflow.AuditEntry{Time: at.Add(time.Duration(i) * 1370 * time.Millisecond), ActorID: "U0" + strings.ToUpper(randHex(4)),
			ActorEmail: person + "@example.com", Action: actions[i%len(actions)], RequestID: req, RoleID: "0190" + randHex(8),
			RoleName: roles[i%len(roles)], SubjectID: "U0SUBJ" + strconv.Itoa(i%997), SubjectEmail: person + "@example.com",
			Details: workflow.CanonicalDetails(map[string]any{"reason": "on call for \"incident\" #" + strconv.Itoa(i), "duration": "8h", "via": "slack"})}
		workflow.Seal(&e, int64(i-1), prev)
		if _, err := stmt.ExecContext(ctx, e.Seq, e.Time.Format("2006-01-02 15:04:05.000000"), e.ActorID, e.ActorEmail, string(e.Action),
			e.RequestID, e.RoleID, e.RoleName, e.SubjectID, e.SubjectEmail, e.Details, e.PrevHash, e.Hash); err != nil {
			return err
		}
		prev = e.Hash
	}
	if _, err := tx.ExecContext(ctx, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", n, prev); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, guard); err != nil {
		return err
	}
	return tx.Commit()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// server is a running `accessbot serve` with only its operator listener
// used. PostHog and Slack point at a closed port: serve starts without
// them (live, not ready), and an export needs neither.
type server struct {
	cmd   *exec.Cmd
	admin string
	token string
}

func startServe(bin, dbPath, dir string) (*server, error) {
	ports := make([]int, 3)
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return nil, err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		lns = append(lns, ln) // held until all three are picked, so they differ
	}
	closeAll()
	tok, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	s := &server{admin: fmt.Sprintf("http://127.0.0.1:%d", ports[1]), token: tok.String()}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = append(os.Environ(), "DATABASE_URL=sqlite:"+dbPath, "ACCESSBOT_LOG_LEVEL=error",
		fmt.Sprintf("ACCESSBOT_LISTEN=127.0.0.1:%d", ports[0]), fmt.Sprintf("ACCESSBOT_ADMIN_LISTEN=127.0.0.1:%d", ports[1]),
		"SLACK_BOT_TOKEN=xoxb-bench", "SLACK_SIGNING_SECRET=bench", fmt.Sprintf("SLACK_API_URL=http://127.0.0.1:%d/", ports[2]),
		fmt.Sprintf("POSTHOG_HOST=http://127.0.0.1:%d", ports[2]), "POSTHOG_PERSONAL_API_KEY=phx_bench", "POSTHOG_ORGANIZATION_ID=00000000-0000-0000-0000-000000000000",
		"ACCESSBOT_AUDIT_TOKEN="+s.token, "ACCESSBOT_RECONCILE_INTERVAL=0", "ACCESSBOT_SCHEDULER_INTERVAL=1h")
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// /healthz, not /readyz: serve is never ready without PostHog's
		// preflight, which an export does not need.
		res, err := http.Get(s.admin + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			b, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("serve did not become ready: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) export(format string) (time.Duration, float64, error) {
	req, _ := http.NewRequest(http.MethodGet, s.admin+"/audit/export?format="+format, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	if res.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("HTTP %d", res.StatusCode)
	}
	return d, vmHWM(s.cmd.Process.Pid), nil
}

// vmHWM is a process's peak resident set in MiB, from /proc.
func vmHWM(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}
