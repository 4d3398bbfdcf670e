package auditstream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/auditstream"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

var ctx = context.Background()

func appendEntries(t *testing.T, db *store.DB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			return tx.AppendAudit(ctx, &workflow.AuditEntry{ActorID: "U1", Action: workflow.ActionPolicyChanged,
				Details: fmt.Sprintf(`{"i":%d}`, i)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// receiver is a SIEM endpoint: it checks every POST's signature with its
// own secret, records the entries in arrival order, and can be down.
type receiver struct {
	t        *testing.T
	secret   string
	srv      *httptest.Server
	down     atomic.Bool
	inFlight atomic.Int32
	mu       sync.Mutex
	seqs     []int64
	posts    int
	failed   int
	bodies   [][]byte
	headers  []http.Header
	maxBusy  int32
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	busy := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	time.Sleep(2 * time.Millisecond) // let overlapping senders show
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxBusy = max(r.maxBusy, busy)
	if r.down.Load() {
		r.failed++
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if err := auditstream.Verify(req.Header.Get(auditstream.SignatureHeader), body, r.secret, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("receiver: bad signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.posts++
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var line struct {
			Seq   int64 `json:"seq"`
			Event *struct {
				Seq int64 `json:"seq"`
			} `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			r.t.Errorf("receiver: line %q: %v", sc.Text(), err)
			continue
		}
		if line.Event != nil {
			line.Seq = line.Event.Seq
		}
		r.seqs = append(r.seqs, line.Seq)
	}
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) received() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.seqs...)
}

// checkComplete asserts entries 1..n arrived in order: each new entry is
// the next one (a repeat of earlier ones is at-least-once delivery).
func (r *receiver) checkComplete(n int64) {
	r.t.Helper()
	var next int64 = 1
	for i, s := range r.received() {
		switch {
		case s == next:
			next++
		case s < next: // redelivery
		default:
			r.t.Fatalf("entry %d arrived (position %d) before entry %d", s, i, next)
		}
	}
	if next != n+1 {
		r.t.Fatalf("received up to entry %d, want %d", next-1, n)
	}
}

func (r *receiver) waitFor(n int) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		seen := map[int64]bool{}
		for _, s := range r.received() {
			seen[s] = true
		}
		if len(seen) >= n {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver has %d distinct entries, want %d", len(seen), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newSender(t *testing.T, db *store.DB, url string, secrets []string, mod func(*auditstream.Config)) *auditstream.Sender {
	t.Helper()
	cfg := auditstream.Config{URL: url, Secrets: secrets, Store: db, Batch: 40, Poll: 10 * time.Millisecond,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, Lease: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := auditstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s until the returned stop is called.
func run(s *auditstream.Sender) (stop func()) {
	c, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(c); close(done) }()
	return func() { cancel(); <-done }
}

func TestStreamDeliversEverythingInOrderSigned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		appendEntries(t, db, 150)
		// The receiver still has the old secret: a rotation is under way.
		r := newReceiver(t, "old-secret")
		var delivered atomic.Int64
		s := newSender(t, db, r.srv.URL, []string{"new-secret", "old-secret"}, func(c *auditstream.Config) {
			c.Observe = func(n int, _ error) { delivered.Add(int64(n)) }
		})
		stop := run(s)
		r.waitFor(150)
		appendEntries(t, db, 10) // new entries follow
		r.waitFor(160)
		// The receiver has them; let the sender record its last batch
		// before stopping it (stopped sooner, it sends that batch again at
		// its next start, which another test covers).
		for deadline := time.Now().Add(5 * time.Second); delivered.Load() < 160 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		r.checkComplete(160)
		if got := len(r.received()); got != 160 {
			t.Errorf("received %d entries for 160: duplicates without a failure", got)
		}
		if delivered.Load() != 160 {
			t.Errorf("observed %d delivered", delivered.Load())
		}
		if r.posts < 4 {
			t.Errorf("%d POSTs for 160 entries in batches of 40", r.posts)
		}
		h := r.headers[0]
		if h.Get("Content-Type") != "application/x-ndjson" || strings.Count(h.Get(auditstream.SignatureHeader), "v1=") != 2 {
			t.Errorf("headers %v", h)
		}
		// Lines are export lines: they carry the chain hash.
		var first map[string]any
		if err := json.Unmarshal(bytes.SplitN(r.bodies[0], []byte("\n"), 2)[0], &first); err != nil || first["hash"] == "" || first["action"] != "policy_changed" {
			t.Errorf("first line %v %v", first, err)
		}
		if c, err := db.AuditStreamCursor(ctx, auditstream.StreamName); err != nil || c != 160 {
			t.Errorf("cursor %d %v", c, err)
		}
	})
}

// TestStreamReceiverDownThenRestart: the receiver is down, the sender backs
// off and fails; the process stops; more entries are written; a new process
// starts once the receiver is back and delivers everything, in order.
func TestStreamReceiverDownThenRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newReceiver(t, "s3cret")
		appendEntries(t, db, 50)
		var failures atomic.Int64
		obs := func(c *auditstream.Config) {
			c.Observe = func(_ int, err error) {
				if err != nil {
					failures.Add(1)
				}
			}
		}
		first := newSender(t, db, r.srv.URL, []string{"s3cret"}, obs)
		stop := run(first)
		r.waitFor(50)
		r.down.Store(true)
		appendEntries(t, db, 30)
		deadline := time.Now().Add(10 * time.Second)
		for failures.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		stop() // the process goes away while the receiver is down
		if failures.Load() < 3 {
			t.Fatalf("%d failures observed while the receiver was down", failures.Load())
		}
		appendEntries(t, db, 20)
		r.down.Store(false)

		second := newSender(t, db, r.srv.URL, []string{"s3cret"}, nil) // the restarted process
		stop = run(second)
		r.waitFor(100)
		stop()
		r.checkComplete(100)
	})
}

// TestStreamOneSenderAtATime: replicas share the cursor; only the lease
// holder sends, so the receiver never sees two POSTs at once, and when the
// holder stops another takes over.
func TestStreamOneSenderAtATime(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newReceiver(t, "s")
		appendEntries(t, db, 120)
		var stops []func()
		for range 3 {
			stops = append(stops, run(newSender(t, db, r.srv.URL, []string{"s"}, func(c *auditstream.Config) {
				c.Lease = 200 * time.Millisecond
				c.Batch = 10
			})))
		}
		r.waitFor(120)
		stops[0]()
		appendEntries(t, db, 30)
		r.waitFor(150)
		stops[1]()
		stops[2]()
		r.checkComplete(150)
		if r.maxBusy > 1 {
			t.Errorf("%d POSTs were in flight at once", r.maxBusy)
		}
	})
}

func TestStreamSplunkHEC(t *testing.T) {
	db := storetest.Open(t)
	appendEntries(t, db, 3)
	r := newReceiver(t, "s")
	url := strings.Replace(r.srv.URL, "http://", "http://x:hec-token-123@", 1) + "/services/collector/event"
	stop := run(newSender(t, db, url, []string{"s"}, func(c *auditstream.Config) { c.Format = auditstream.FormatSplunkHEC }))
	r.waitFor(3)
	stop()
	r.checkComplete(3)
	h := r.headers[0]
	if h.Get("Authorization") != "Splunk hec-token-123" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	lines := bytes.Split(bytes.TrimSpace(r.bodies[0]), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d events", len(lines))
	}
	var ev struct {
		Time       float64         `json:"time"`
		Source     string          `json:"source"`
		Sourcetype string          `json:"sourcetype"`
		Event      json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(lines[0], &ev); err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Seq     int64           `json:"seq"`
		Time    time.Time       `json:"time"`
		Action  string          `json:"action"`
		Details json.RawMessage `json:"details"`
		Hash    string          `json:"hash"`
	}
	if err := json.Unmarshal(ev.Event, &entry); err != nil {
		t.Fatal(err)
	}
	if ev.Source != "accessbot" || ev.Sourcetype != "accessbot:audit" || entry.Seq != 1 || entry.Hash == "" ||
		string(entry.Details) != `{"i":0}` || ev.Time != float64(entry.Time.UnixMicro())/1e6 {
		t.Errorf("event %s", lines[0])
	}
}

func TestStreamBackoffIsCapped(t *testing.T) {
	db := storetest.Open(t)
	appendEntries(t, db, 1)
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	stop := run(newSender(t, db, srv.URL, []string{"s"}, func(c *auditstream.Config) {
		c.BackoffMin, c.BackoffMax = 10*time.Millisecond, 80*time.Millisecond
	}))
	time.Sleep(900 * time.Millisecond)
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(times) < 6 {
		t.Fatalf("%d attempts", len(times))
	}
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	// Doubling: 10, 20, 40, 80, then capped at 80 ms.
	if gaps[1] < gaps[0] || gaps[2] < 35*time.Millisecond {
		t.Errorf("delays do not grow: %v", gaps)
	}
	for _, g := range gaps[4:] {
		if g > 400*time.Millisecond {
			t.Errorf("delay %v beyond the cap: %v", g, gaps)
		}
	}
	if c, _ := db.AuditStreamCursor(ctx, auditstream.StreamName); c != 0 {
		t.Errorf("cursor moved to %d without a delivery", c)
	}
}

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"seq":1}` + "\n")
	now := time.Unix(1_800_000_000, 0)
	h := auditstream.Sign([]string{"a", "b"}, now, body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") || strings.Count(h, "v1=") != 2 {
		t.Fatalf("header %s", h)
	}
	for _, c := range []struct {
		name, header, secret string
		body                 []byte
		at                   time.Time
		ok                   bool
	}{
		{"first secret", h, "a", body, now, true},
		{"older secret", h, "b", body, now, true},
		{"unknown secret", h, "c", body, now, false},
		{"altered body", h, "a", []byte(`{"seq":2}` + "\n"), now, false},
		{"replayed later", h, "a", body, now.Add(10 * time.Minute), false},
		{"no timestamp", "v1=00", "a", body, now, false},
	} {
		err := auditstream.Verify(c.header, c.body, c.secret, c.at, 5*time.Minute)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
