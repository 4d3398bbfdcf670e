package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// TestAuditReadRoundTrip: every field comes back exactly as appended,
// whatever it holds (the SQLite reader splits one NUL-separated column per
// row).
func TestAuditReadRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		odd := []string{"", "a:b", "12:34:", ":", "0:", "new\nline", "ünïcödé ✓", `{"x":"1:2"}`, "-5:", "tab\there"}
		var want []workflow.AuditEntry
		for i, s := range odd {
			e := workflow.AuditEntry{Time: time.Date(2026, 5, 6, 7, 8, 9, i*1000, time.UTC), ActorID: s, ActorEmail: s + "@x",
				Action: workflow.Action("act" + s), RequestID: int64(i * 1000), RoleID: s, RoleName: s, SubjectID: s,
				SubjectEmail: s, Details: s}
			if err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error { return tx.AppendAudit(ctx, &e) }); err != nil {
				t.Fatal(err)
			}
			want = append(want, e)
		}
		var got []workflow.AuditEntry
		head, _, err := db.ReadAuditChain(ctx, func(e *workflow.AuditEntry) error {
			got = append(got, *e)
			return nil
		})
		if err != nil || head != int64(len(odd)) || len(got) != len(want) {
			t.Fatalf("read %d entries, head %d, %v", len(got), head, err)
		}
		for i := range want {
			g, w := got[i], want[i]
			if !g.Time.Equal(w.Time) {
				t.Errorf("entry %d time %v, want %v", i+1, g.Time, w.Time)
			}
			g.Time, w.Time = time.Time{}, time.Time{}
			if g != w {
				t.Errorf("entry %d:\n got %+v\nwant %+v", i+1, g, w)
			}
		}
		var n int
		if err := db.AuditEntriesAfter(ctx, 3, 4, func(e *workflow.AuditEntry) error {
			n++
			if e.Seq != int64(3+n) {
				t.Errorf("AuditEntriesAfter gave %d as entry %d", e.Seq, n)
			}
			return nil
		}); err != nil || n != 4 {
			t.Fatalf("AuditEntriesAfter(3, 4): %d entries, %v", n, err)
		}
	})
}

// TestAuditReadFieldWithNUL: the application cannot store a NUL (bun and
// PostgreSQL refuse it), but a row written by other means may hold one; the
// SQLite reader then reads that row column by column and returns it exactly.
func TestAuditReadFieldWithNUL(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	_, err := db.Bun().DB.ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor_id, actor_email, action, request_id, role_id,
		role_name, subject_id, subject_email, details, prev_hash, hash) VALUES (1, '2026-05-06 07:08:09.000001', ?, '', 'x', 7,
		?, '', '', '', '{}', '', ?)`, "nul\x00inside", "\x00", "two\x00\x00nuls")
	if err != nil {
		t.Fatal(err)
	}
	var got []workflow.AuditEntry
	if err := db.AuditEntries(ctx, workflow.AuditFilter{}, func(e *workflow.AuditEntry) error {
		got = append(got, *e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ActorID != "nul\x00inside" || got[0].RoleID != "\x00" || got[0].Hash != "two\x00\x00nuls" ||
		got[0].RequestID != 7 || got[0].Time.Nanosecond() != 1000 {
		t.Fatalf("read %+v", got)
	}
}

// TestAuditChainReadFieldWithNUL: the column-by-column re-read of a row
// holding a NUL also works inside verification's read-only transaction,
// while that transaction's cursor is still open.
func TestAuditChainReadFieldWithNUL(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	for seq, actor := range []string{"plain", "nul\x00inside", "after"} {
		_, err := db.Bun().DB.ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor_id, actor_email, action, request_id, role_id,
			role_name, subject_id, subject_email, details, prev_hash, hash) VALUES (?, '2026-05-06 07:08:09.000001', ?, '', 'x', 0,
			'', '', '', '', '{}', '', 'h')`, seq+1, actor)
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if _, _, err := db.ReadAuditChain(ctx, func(e *workflow.AuditEntry) error {
		got = append(got, e.ActorID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "plain" || got[1] != "nul\x00inside" || got[2] != "after" {
		t.Fatalf("read %q", got)
	}
}
