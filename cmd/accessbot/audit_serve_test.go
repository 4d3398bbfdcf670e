package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/auditstream"
)

// siem is a webhook receiver that checks signatures and keeps the entries.
type siem struct {
	t       *testing.T
	srv     *httptest.Server
	down    atomic.Bool
	mu      sync.Mutex
	entries []map[string]any
}

func newSIEM(t *testing.T, secret string) *siem {
	s := &siem{t: t}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if err := auditstream.Verify(r.Header.Get(auditstream.SignatureHeader), body, secret, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("SIEM: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		s.mu.Lock()
		defer s.mu.Unlock()
		for sc.Scan() {
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("SIEM: %v", err)
			}
			s.entries = append(s.entries, e)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// distinct returns the entries' seqs in arrival order without repeats,
// failing on a gap or a reordering.
func (s *siem) distinct() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for _, e := range s.entries {
		seq := int64(e["seq"].(float64))
		switch {
		case seq == int64(len(out))+1:
			out = append(out, seq)
		case seq > int64(len(out))+1:
			s.t.Fatalf("SIEM got entry %d before entry %d", seq, len(out)+1)
		}
	}
	return out
}

func (s *siem) has(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.entries {
		if e["action"] == action {
			n++
		}
	}
	return n
}

// TestServeAuditAnchors runs serve with a signing key, an audit channel and
// a SIEM webhook: the checkpoint written at shutdown is posted to Slack;
// entries written while the SIEM was down reach it after a restart, in
// order, checkpoints included; and the CLI verifies the log against the key
// and the checkpoint copied from Slack.
func TestServeAuditAnchors(t *testing.T) {
	w := newWorld(t)
	keyFile := filepath.Join(w.dir, "audit.key")
	if code, _, errOut := runCLI(t, nil, "audit", "keygen", "--out", keyFile); code != 0 {
		t.Fatalf("keygen: %s", errOut)
	}
	s := newSIEM(t, "siem-secret-1")
	const auditChannel = "C0AUDIT01"
	extra := []string{"ACCESSBOT_AUDIT_SIGNING_KEY=" + keyFile, "ACCESSBOT_AUDIT_CHANNEL=" + auditChannel,
		"ACCESSBOT_AUDIT_WEBHOOK_URL=" + s.srv.URL, "ACCESSBOT_AUDIT_WEBHOOK_SECRET=siem-secret-1,siem-secret-0"}

	p := w.start(extra...)
	if strings.Contains(p.logs(), "ACCESSBOT_AUDIT_SIGNING_KEY is not set") {
		t.Error("warned about a missing signing key that is set")
	}
	w.approve(p, w.requestEngineering(p))
	waitUntil(t, "the membership", 10*time.Second, func() bool { return w.ph.HasMember(w.roles["Engineering"], w.uuids[e2eAlice]) })
	waitUntil(t, "the SIEM to get membership_added", 10*time.Second, func() bool { return s.has("membership_added") == 1 })
	_, metricsBody := p.get("/metrics", "")
	for _, name := range []string{"accessbot_audit_webhook_lag_entries", "accessbot_audit_webhook_delivered_total"} {
		if !strings.Contains(metricsBody, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// The SIEM goes down; an export is audited meanwhile; the process stops.
	s.down.Store(true)
	if code, _ := p.get("/audit/export", e2eToken); code != 200 {
		t.Fatalf("export: %d", code)
	}
	p.stop()
	msgs := w.slack.Messages(auditChannel)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Audit checkpoint") {
		t.Fatalf("audit channel after shutdown: %+v", msgs)
	}
	kept := filepath.Join(w.dir, "kept-checkpoint.txt")
	if err := os.WriteFile(kept, []byte(msgs[0].Text), 0o600); err != nil {
		t.Fatal(err)
	}
	missed := s.has("audit_exported")
	if missed != 0 {
		t.Fatalf("the SIEM was down but got audit_exported")
	}

	// Back up, and the bot restarted: everything arrives, in order.
	s.down.Store(false)
	p = w.start(extra...)
	env := w.env(0)
	code, line, errOut := runCLI(t, env, "audit", "checkpoint")
	if code != 0 || !strings.Contains(line, `"signature"`) {
		t.Fatalf("audit checkpoint: %d %s %s", code, line, errOut)
	}
	var cp struct{ Seq int64 }
	if err := json.Unmarshal([]byte(line), &cp); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the SIEM to catch up", 15*time.Second, func() bool {
		return int64(len(s.distinct())) >= cp.Seq+1 && s.has("checkpoint_signed") >= 1 && s.has("audit_exported") >= 1
	})
	if code, _ := p.get("/audit/export", e2eToken); code != 200 {
		t.Fatalf("export: %d", code)
	}
	p.stop() // signs a second checkpoint, and delivers it at once
	if n := len(w.slack.Messages(auditChannel)); n != 2 {
		t.Errorf("%d checkpoints posted, want 2", n)
	}
	if s.has("checkpoint_signed") != 2 || len(s.distinct()) != int(cp.Seq)+3 {
		t.Errorf("SIEM has %d entries, %d checkpoints", len(s.distinct()), s.has("checkpoint_signed"))
	}

	// The CLI proves the log against the key and the copy kept in Slack,
	// while nothing in the database is trusted.
	code, out, errOut := runCLI(t, env, "audit", "verify", "--public-key", keyFile+".pub", "--checkpoint", kept)
	if code != 0 || !strings.Contains(out, "2 signed checkpoints verified") || !strings.Contains(out, "kept checkpoint matches") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
}

func TestServeWarnsOnceWithoutSigningKey(t *testing.T) {
	w := newWorld(t)
	p := w.start()
	p.stop()
	if n := strings.Count(p.logs(), "ACCESSBOT_AUDIT_SIGNING_KEY is not set"); n != 1 {
		t.Fatalf("warned %d times:\n%s", n, p.logs())
	}
}
