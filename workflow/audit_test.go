package workflow_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// fillAudit runs a few requests through so the log has entries of many kinds.
func fillAudit(t *testing.T, h *harness) {
	t.Helper()
	r := h.mustCreate("Engineering", time.Hour)
	h.mustApprove(r, bob)
	h.drain()
	d := h.mustCreate("Finance", 0)
	if _, err := h.svc.Deny(ctx, d.ID, carol, "not needed"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Hour)
	tick(t, h)
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		sql    []string
		broken int64
		want   string
	}{
		{"intact", nil, 0, ""},
		{"edited details", []string{`UPDATE audit_log SET details = '{"reason":"approved by me"}' WHERE seq = 3`}, 3, "modified"},
		{"edited actor", []string{`UPDATE audit_log SET actor_id = 'UEVIL001' WHERE seq = 2`}, 2, "modified"},
		{"edited hash", []string{`UPDATE audit_log SET hash = hash || '0' WHERE seq = 4`}, 4, "modified"},
		{"deleted row", []string{`DELETE FROM audit_log WHERE seq = 5`}, 5, "missing"},
		{"deleted last row", []string{`DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)`}, -1, "missing from the end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, db *store.DB) {
				h := newHarness(t, db)
				fillAudit(t, h)
				rep := h.verify()
				if !rep.OK || rep.Entries < 8 {
					t.Fatalf("before tampering: %s", rep)
				}
				total := rep.Entries
				if len(c.sql) > 0 {
					// The application cannot do this: the triggers refuse.
					if _, err := db.Bun().ExecContext(ctx, c.sql[0]); err == nil {
						t.Fatal("audit_log accepted a change with its guards in place")
					}
					storetest.DropAuditGuards(t, db)
				}
				for _, s := range c.sql {
					if _, err := db.Bun().ExecContext(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
				rep = h.verify()
				if c.sql == nil {
					if !rep.OK {
						t.Fatal(rep)
					}
					return
				}
				want := c.broken
				if want < 0 {
					want = total
				}
				if rep.OK || rep.BrokenSeq != want || !strings.Contains(rep.Problem, c.want) {
					t.Fatalf("verify = %s, want broken at %d (%s)", rep, want, c.want)
				}
			})
		})
	}
}

// TestAuditVerifyDetectsRehashedEdit: an attacker who edits an entry and
// recomputes its hash still breaks the link to the next entry.
func TestAuditVerifyDetectsRehashedEdit(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		fillAudit(t, h)
		var e workflow.AuditEntry
		if err := db.AuditEntries(ctx, workflow.AuditFilter{}, func(x *workflow.AuditEntry) error {
			if x.Seq == 3 {
				e = *x
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		e.Details = `{"reason":"forged"}`
		forged := workflow.ComputeHash(e.PrevHash, &e)
		storetest.DropAuditGuards(t, db)
		if _, err := db.Bun().ExecContext(ctx, "UPDATE audit_log SET details = ?, hash = ? WHERE seq = 3", e.Details, forged); err != nil {
			t.Fatal(err)
		}
		if rep := h.verify(); rep.OK || rep.BrokenSeq != 4 {
			t.Fatalf("verify = %s, want broken at 4", rep)
		}
	})
}

func TestAuditExport(t *testing.T) {
	eachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		start := h.clock.Now()
		fillAudit(t, h)
		var all []workflow.AuditEntry
		if err := db.AuditEntries(ctx, workflow.AuditFilter{}, func(e *workflow.AuditEntry) error {
			all = append(all, *e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}

		var buf bytes.Buffer
		n, err := workflow.WriteAudit(ctx, db, workflow.AuditFilter{}, "csv", &buf)
		if err != nil || n != int64(len(all)) {
			t.Fatalf("csv export: %d entries, %v", n, err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != strings.Join(workflow.AuditCSVHeader, ",") || len(rows) != len(all)+1 {
			t.Fatalf("csv header %v, %d rows", rows[0], len(rows))
		}
		if rows[1][4] != string(workflow.ActionRequestCreated) || rows[len(rows)-1][12] != all[len(all)-1].Hash {
			t.Fatalf("csv rows %v … %v", rows[1], rows[len(rows)-1])
		}

		// JSON Lines, bounded by time: only what happened after the first two hours.
		buf.Reset()
		since := start.Add(time.Hour)
		n, err = workflow.WriteAudit(ctx, db, workflow.AuditFilter{Since: since}, "jsonl", &buf)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		var lines int64
		for {
			var line struct {
				Seq     int64           `json:"seq"`
				Time    time.Time       `json:"time"`
				Action  string          `json:"action"`
				Details json.RawMessage `json:"details"`
				Hash    string          `json:"hash"`
			}
			if err := dec.Decode(&line); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			lines++
			if line.Time.Before(since) || line.Hash == "" || line.Details[0] != '{' {
				t.Fatalf("line %+v", line)
			}
		}
		if lines != n || n == 0 || n >= int64(len(all)) {
			t.Fatalf("jsonl since: %d lines, n=%d, of %d", lines, n, len(all))
		}

		// Exporting through the service is itself audited.
		buf.Reset()
		if _, err := h.svc.ExportAudit(ctx, admin, "slack", workflow.AuditFilter{}, "jsonl", &buf); err != nil {
			t.Fatal(err)
		}
		if a := h.auditActions(0); a[len(a)-1] != workflow.ActionAuditExported {
			t.Fatalf("export not audited: %v", a[len(a)-1])
		}
		before := len(h.auditActions(0))
		if _, err := h.svc.ExportAudit(ctx, bob, "slack", workflow.AuditFilter{}, "csv", &buf); workflow.ErrorCode(err) != workflow.EFORBIDDEN {
			t.Fatalf("non-admin export from Slack: %v", err)
		}
		if len(h.auditActions(0)) != before {
			t.Fatal("a refused export was audited as done")
		}
		if _, err := workflow.WriteAudit(ctx, db, workflow.AuditFilter{}, "xml", &buf); workflow.ErrorCode(err) != workflow.EINVALID {
			t.Fatalf("bad format: %v", err)
		}
	})
}

func TestComputeHashCoversEveryField(t *testing.T) {
	base := workflow.AuditEntry{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ActorID: "U1", ActorEmail: "a@x",
		Action: workflow.ActionRequestApproved, RequestID: 3, RoleID: "r", RoleName: "R", SubjectID: "U2", SubjectEmail: "b@x", Details: "{}"}
	h0 := workflow.ComputeHash("prev", &base)
	edits := map[string]func(e *workflow.AuditEntry){
		"seq":     func(e *workflow.AuditEntry) { e.Seq++ },
		"time":    func(e *workflow.AuditEntry) { e.Time = e.Time.Add(time.Microsecond) },
		"actor":   func(e *workflow.AuditEntry) { e.ActorID = "U9" },
		"email":   func(e *workflow.AuditEntry) { e.ActorEmail = "z@x" },
		"action":  func(e *workflow.AuditEntry) { e.Action = workflow.ActionRequestDenied },
		"request": func(e *workflow.AuditEntry) { e.RequestID = 4 },
		"role":    func(e *workflow.AuditEntry) { e.RoleID = "s" },
		"name":    func(e *workflow.AuditEntry) { e.RoleName = "S" },
		"subject": func(e *workflow.AuditEntry) { e.SubjectID = "U3" },
		"semail":  func(e *workflow.AuditEntry) { e.SubjectEmail = "c@x" },
		"details": func(e *workflow.AuditEntry) { e.Details = `{"a":1}` },
	}
	for name, edit := range edits {
		e := base
		edit(&e)
		if workflow.ComputeHash("prev", &e) == h0 {
			t.Errorf("hash does not cover %s", name)
		}
	}
	if workflow.ComputeHash("other", &base) == h0 {
		t.Error("hash does not cover the previous hash")
	}
	if got := workflow.CanonicalDetails(map[string]any{"b": 1, "a": "x"}); got != `{"a":"x","b":1}` {
		t.Errorf("canonical details %s", got)
	}
}
