package workflow_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func signNow(t *testing.T, db *store.DB, key ed25519.PrivateKey, c workflow.Clock) workflow.Checkpoint {
	t.Helper()
	cp := &workflow.Checkpointer{Store: db, Key: key, Clock: c}
	got, ok, err := cp.Sign(ctx)
	if err != nil || !ok {
		t.Fatalf("Sign = %v, %v", ok, err)
	}
	return got
}

// attacker has write access to the database but not the signing key: it
// drops the guards, rewrites the chain with valid hashes, moves the head and
// re-signs every checkpoint with a key of its own.
type attacker struct {
	t   *testing.T
	db  *store.DB
	key ed25519.PrivateKey
}

func (a attacker) read() []workflow.AuditEntry {
	var all []workflow.AuditEntry
	if err := a.db.AuditEntries(ctx, workflow.AuditFilter{}, func(e *workflow.AuditEntry) error {
		all = append(all, *e)
		return nil
	}); err != nil {
		a.t.Fatal(err)
	}
	return all
}

// rewrite replaces the whole log with entries, renumbered from 1, rehashed
// and with checkpoints re-signed, and moves the head to the last.
func (a attacker) rewrite(entries []workflow.AuditEntry) {
	a.t.Helper()
	storetest.DropAuditGuards(a.t, a.db)
	exec := func(q string, args ...any) {
		if _, err := a.db.Bun().ExecContext(ctx, q, args...); err != nil {
			a.t.Fatalf("%s: %v", q, err)
		}
	}
	exec("DELETE FROM audit_log")
	layout := "2006-01-02 15:04:05.000000"
	if a.db.Dialect() == store.DialectPostgres {
		layout += "+00"
	}
	prevHash := ""
	for i := range entries {
		e := &entries[i]
		// A checkpoint that no longer matches the rewritten chain is
		// re-signed, with the attacker's key.
		if old, err := workflow.ParseCheckpoint([]byte(e.Details)); e.Action == workflow.ActionCheckpointSigned &&
			(err != nil || old.Seq != int64(i) || old.Hash != prevHash) {
			e.Details = workflow.CanonicalDetails(toMap(workflow.SignCheckpoint(a.key, int64(i), prevHash, e.Time)))
		}
		workflow.Seal(e, int64(i), prevHash)
		exec(`INSERT INTO audit_log (seq, at, actor_id, actor_email, action, request_id, role_id, role_name, subject_id,
			subject_email, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.Time.UTC().Format(layout), e.ActorID, e.ActorEmail, string(e.Action), e.RequestID, e.RoleID, e.RoleName,
			e.SubjectID, e.SubjectEmail, e.Details, e.PrevHash, e.Hash)
		prevHash = e.Hash
	}
	exec("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", int64(len(entries)), prevHash)
}

func toMap(c workflow.Checkpoint) map[string]any {
	b, _ := json.Marshal(c)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// TestCheckpointsDetectTampering: each attack passes the plain hash-chain
// check (the attacker recomputes every hash) and is caught by the public key
// or by a checkpoint kept outside the database.
func TestCheckpointsDetectTampering(t *testing.T) {
	type outcome struct{ plain, withKey, withKept bool } // true = verify says intact
	cases := []struct {
		name   string
		attack func(a attacker, kept workflow.Checkpoint)
		want   outcome
	}{
		{"edit and rehash", func(a attacker, _ workflow.Checkpoint) {
			all := a.read()
			all[2].Details = `{"reason":"approved by me"}`
			a.rewrite(all)
		}, outcome{true, false, false}},
		{"delete, renumber and rehash", func(a attacker, _ workflow.Checkpoint) {
			all := a.read()
			a.rewrite(append(all[:4:4], all[5:]...))
		}, outcome{true, false, false}},
		{"truncate and move the head back", func(a attacker, kept workflow.Checkpoint) {
			all := a.read()
			a.rewrite(all[:kept.Seq-3])
		}, outcome{true, true, false}},
		{"truncate, then append past the kept checkpoint", func(a attacker, kept workflow.Checkpoint) {
			all := a.read()
			tail := all[:kept.Seq-3]
			for len(tail) < len(all)+2 {
				e := all[0]
				e.Details = fmt.Sprintf(`{"n":%d}`, len(tail))
				tail = append(tail, e)
			}
			a.rewrite(tail)
		}, outcome{true, true, false}},
		{"forged checkpoint", func(a attacker, _ workflow.Checkpoint) {
			all := a.read()
			// A checkpoint of the newest entry, signed with the attacker's key.
			all = append(all, workflow.AuditEntry{Time: all[len(all)-1].Time, ActorID: workflow.SystemActor,
				Action: workflow.ActionCheckpointSigned})
			a.rewrite(all)
		}, outcome{true, false, true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, db *store.DB) {
				h := newHarness(t, db)
				key := newKey(t)
				pub := key.Public().(ed25519.PublicKey)
				fillAudit(t, h)
				signNow(t, db, key, h.clock)
				fillAudit(t, h)
				kept := signNow(t, db, key, h.clock)
				h.mustCreate("Engineering", time.Hour)
				for _, o := range []workflow.VerifyOptions{{}, {PublicKey: pub}, {Kept: &kept}, {PublicKey: pub, Kept: &kept}} {
					if rep, err := workflow.VerifyAuditWith(ctx, db, o); err != nil || !rep.OK {
						t.Fatalf("before the attack: %s, %v", rep, err)
					}
				}

				c.attack(attacker{t: t, db: db, key: newKey(t)}, kept)

				check := func(name string, o workflow.VerifyOptions, wantOK bool) {
					rep, err := workflow.VerifyAuditWith(ctx, db, o)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s: %s", name, rep)
					if rep.OK != wantOK {
						t.Errorf("%s: verify = %s, want intact=%v", name, rep, wantOK)
					}
				}
				check("hash chain only", workflow.VerifyOptions{}, c.want.plain)
				check("--public-key", workflow.VerifyOptions{PublicKey: pub}, c.want.withKey)
				check("--checkpoint", workflow.VerifyOptions{Kept: &kept}, c.want.withKept)
				check("both", workflow.VerifyOptions{PublicKey: pub, Kept: &kept}, c.want.withKey && c.want.withKept)
			})
		})
	}
}

func TestCheckpointSignAndParse(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		key := newKey(t)
		pub := key.Public().(ed25519.PublicKey)
		if _, ok, err := (&workflow.Checkpointer{Store: db, Key: key}).Sign(ctx); ok || err != nil {
			t.Fatalf("empty log signed: %v %v", ok, err)
		}
		fillAudit(t, h)
		seq, hash, err := db.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var published []workflow.Checkpoint
		cpr := &workflow.Checkpointer{Store: db, Key: key, Clock: h.clock, Publish: func(_ context.Context, c workflow.Checkpoint) error {
			published = append(published, c)
			return nil
		}}
		cp, ok, err := cpr.Sign(ctx)
		if err != nil || !ok || cp.Seq != seq || cp.Hash != hash || cp.Verify(pub) != nil || cp.KeyID != workflow.KeyID(pub) {
			t.Fatalf("Sign = %+v %v %v (head %d %s)", cp, ok, err, seq, hash)
		}
		if _, ok, _ := cpr.Sign(ctx); ok {
			t.Error("signed again with nothing new")
		}
		if len(published) != 1 || published[0] != cp {
			t.Errorf("published %v", published)
		}
		newest, err := db.NewestAudit(ctx, workflow.ActionCheckpointSigned)
		if err != nil || newest == nil || newest.Seq != seq+1 || newest.ActorID != workflow.SystemActor {
			t.Fatalf("checkpoint entry %+v %v", newest, err)
		}
		// Every form a checkpoint is kept in parses back to the same one.
		forms := map[string]string{
			"json line":     cp.JSON() + "\n",
			"slack message": "Audit checkpoint: entry 9\n```" + cp.JSON() + "```",
			"export line":   `{"seq":10,"action":"checkpoint_signed","details":` + newest.Details + `,"hash":"x"}`,
			"splunk event":  `{"time":1,"event":{"seq":10,"details":` + newest.Details + `}}`,
		}
		for name, s := range forms {
			got, err := workflow.ParseCheckpoint([]byte(s))
			if err != nil || got != cp {
				t.Errorf("%s: %+v %v", name, got, err)
			}
		}
		if _, err := workflow.ParseCheckpoint([]byte(`{"seq":1}`)); err == nil {
			t.Error("parsed a checkpoint without a signature")
		}
		forged := cp
		forged.Hash = strings.Repeat("0", 64)
		if err := forged.Verify(pub); err == nil || !strings.Contains(err.Error(), "forged") {
			t.Errorf("forged checkpoint: %v", err)
		}
		if err := cp.Verify(newKey(t).Public().(ed25519.PublicKey)); err == nil || !strings.Contains(err.Error(), "key") {
			t.Errorf("other key: %v", err)
		}
		rep, err := workflow.VerifyAuditWith(ctx, db, workflow.VerifyOptions{PublicKey: pub, Kept: &cp})
		if err != nil || !rep.OK || rep.Checkpoints != 1 || !strings.Contains(rep.String(), "1 signed checkpoint verified") {
			t.Fatalf("verify: %s %v", rep, err)
		}
	})
}

func TestVerifyWithKeyNeedsACheckpoint(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		fillAudit(t, h)
		rep, err := workflow.VerifyAuditWith(ctx, db, workflow.VerifyOptions{PublicKey: newKey(t).Public().(ed25519.PublicKey)})
		if err != nil || rep.OK || !strings.Contains(rep.Problem, "no signed checkpoint") {
			t.Fatalf("verify = %s, %v", rep, err)
		}
	})
}

// TestVerifyWhileAppending: verification reads one snapshot, so entries
// appended while it runs never show as a break.
func TestVerifyWhileAppending(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		fillAudit(t, h)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var appended atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
					return tx.AppendAudit(ctx, &workflow.AuditEntry{ActorID: "U1", Action: workflow.ActionPolicyChanged})
				})
				if err != nil {
					t.Error(err)
					return
				}
				appended.Add(1)
			}
		}()
		var last int64
		for i := 0; i < 20 || appended.Load() < 50; i++ {
			rep := h.verify()
			if !rep.OK {
				t.Errorf("verify %d while appending: %s", i, rep)
			}
			last = rep.Entries
		}
		close(stop)
		wg.Wait()
		if last < 50 {
			t.Fatalf("too little overlap: %d appended, last verify saw %d", appended.Load(), last)
		}
	})
}

// After the signing key is rotated, checkpoints signed with the old key
// verify when the old public key is given too; without it they fail, and an
// attacker's key never passes for an old one.
func TestVerifyAcrossAKeyRotation(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		old, current := newKey(t), newKey(t)
		fillAudit(t, h)
		signNow(t, db, old, h.clock)
		h.clock.Advance(time.Minute)
		fillAudit(t, h)
		signNow(t, db, current, h.clock)
		pub := func(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
		for _, c := range []struct {
			name  string
			opts  workflow.VerifyOptions
			ok    bool
			tells string
		}{
			{"current key only", workflow.VerifyOptions{PublicKey: pub(current)}, false, "signed by key"},
			{"current and old", workflow.VerifyOptions{PublicKey: pub(current), OlderKeys: []ed25519.PublicKey{pub(old)}}, true, "2 signed checkpoints"},
			{"an unrelated key for the old one", workflow.VerifyOptions{PublicKey: pub(current), OlderKeys: []ed25519.PublicKey{pub(newKey(t))}}, false, "signed by key"},
		} {
			rep, err := workflow.VerifyAuditWith(ctx, db, c.opts)
			if err != nil || rep.OK != c.ok || !strings.Contains(rep.String(), c.tells) {
				t.Errorf("%s: %s (%v), want ok=%v mentioning %q", c.name, rep, err, c.ok, c.tells)
			}
		}
	})
}
