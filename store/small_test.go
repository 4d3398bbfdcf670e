package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

func TestSettings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		steps := []struct {
			put       string // "" reads only
			wantValue string
			wantOK    bool
		}{
			{"", "", false},
			{"v1", "v1", true},
			{"v2", "v2", true}, // upsert
			{" ", " ", true},
		}
		for _, s := range steps {
			update(t, db, func(ctx context.Context, tx workflow.Tx) error {
				if s.put != "" {
					if err := tx.PutSetting(ctx, "policy_hash", s.put); err != nil {
						return err
					}
				}
				v, ok, err := tx.Setting(ctx, "policy_hash")
				if v != s.wantValue || ok != s.wantOK {
					t.Errorf("after put %q: Setting = %q, %v; want %q, %v", s.put, v, ok, s.wantValue, s.wantOK)
				}
				return err
			})
		}
	})
}

func TestOwnerOverrides(t *testing.T) {
	clock := newClock(t0)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		o1 := workflow.OwnerOverride{RoleID: "R1", UserID: "U1", Present: true, ChangedBy: "U_ADMIN", ChangedAt: t0.Add(time.Second)}
		o2 := workflow.OwnerOverride{RoleID: "R2", UserID: "U1", Present: true, ChangedBy: "U_ADMIN"} // ChangedAt from the clock
		o3 := workflow.OwnerOverride{RoleID: "R1", UserID: "U2", Present: false, ChangedBy: "U_ADMIN", ChangedAt: t0.Add(2 * time.Second)}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			for _, o := range []workflow.OwnerOverride{o1, o2, o3} {
				if err := tx.PutOwnerOverride(ctx, o); err != nil {
					return err
				}
			}
			return nil
		})
		o2.ChangedAt = t0
		list := func(role string) []workflow.OwnerOverride {
			var out []workflow.OwnerOverride
			update(t, db, func(ctx context.Context, tx workflow.Tx) (err error) {
				out, err = tx.OwnerOverrides(ctx, role)
				return err
			})
			return out
		}
		if got, want := list(""), []workflow.OwnerOverride{o2, o1, o3}; !reflect.DeepEqual(got, want) {
			t.Errorf("all overrides\n got %+v\nwant %+v", got, want)
		}
		if got, want := list("R1"), []workflow.OwnerOverride{o1, o3}; !reflect.DeepEqual(got, want) {
			t.Errorf("R1 overrides\n got %+v\nwant %+v", got, want)
		}
		if got := list("R9"); len(got) != 0 {
			t.Errorf("R9 overrides = %+v", got)
		}
		// Upsert: removing U1 from R1 replaces the earlier add.
		o1b := workflow.OwnerOverride{RoleID: "R1", UserID: "U1", Present: false, ChangedBy: "U_ADMIN2", ChangedAt: t0.Add(3 * time.Second)}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.PutOwnerOverride(ctx, o1b) })
		if got, want := list("R1"), []workflow.OwnerOverride{o3, o1b}; !reflect.DeepEqual(got, want) {
			t.Errorf("after upsert\n got %+v\nwant %+v", got, want)
		}
	}, store.WithClock(clock))
}

func TestMessageRefs(t *testing.T) {
	clock := newClock(t0)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := insert(t, db, newRequest("U1", "R1"))
		m1 := workflow.MessageRef{RequestID: r.ID, Channel: "D_OWNER1", TS: "1700000000.000100", CreatedAt: t0.Add(time.Second)}
		m2 := workflow.MessageRef{RequestID: r.ID, Channel: "C_APPROVALS", TS: "1700000000.000200"} // CreatedAt from the clock
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.PutMessageRef(ctx, m1); err != nil {
				return err
			}
			return tx.PutMessageRef(ctx, m2)
		})
		m2.CreatedAt = t0
		refs := func(id int64) []workflow.MessageRef {
			var out []workflow.MessageRef
			update(t, db, func(ctx context.Context, tx workflow.Tx) (err error) {
				out, err = tx.MessageRefs(ctx, id)
				return err
			})
			return out
		}
		if got, want := refs(r.ID), []workflow.MessageRef{m2, m1}; !reflect.DeepEqual(got, want) {
			t.Errorf("MessageRefs\n got %+v\nwant %+v", got, want)
		}
		// Upsert on (request, channel): a re-posted DM replaces the ts.
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			return tx.PutMessageRef(ctx, workflow.MessageRef{RequestID: r.ID, Channel: "D_OWNER1", TS: "1700000001.000100", CreatedAt: t0.Add(time.Hour)})
		})
		m1.TS = "1700000001.000100"
		if got, want := refs(r.ID), []workflow.MessageRef{m2, m1}; !reflect.DeepEqual(got, want) {
			t.Errorf("after upsert\n got %+v\nwant %+v", got, want)
		}
		if got := refs(999999); len(got) != 0 {
			t.Errorf("refs of unknown request = %+v", got)
		}
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			return tx.PutMessageRef(ctx, workflow.MessageRef{RequestID: 999999, Channel: "C", TS: "1"})
		})
		errorsAsCode(t, err, workflow.ENOTFOUND)
	}, store.WithClock(clock))
}

// TestStoredTimeFormat pins how times sit in the database, which is what
// makes comparisons in SQL correct: fixed-width UTC text on SQLite,
// timestamptz on PostgreSQL; and audit details as text, never jsonb.
func TestStoredTimeFormat(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, tm := range []time.Time{t0.Truncate(time.Second), t0.Truncate(time.Millisecond), t0} {
			appendEntry(t, db, &workflow.AuditEntry{Time: tm, ActorID: "U", Action: workflow.ActionRequestCreated})
		}
		if db.Dialect() == store.DialectSQLite {
			var texts []string
			if err := db.Bun().NewRaw("SELECT at FROM audit_log ORDER BY seq").Scan(ctx, &texts); err != nil {
				t.Fatal(err)
			}
			want := []string{"2030-01-02 03:04:05.000000", "2030-01-02 03:04:05.123000", "2030-01-02 03:04:05.123456"}
			if !reflect.DeepEqual(texts, want) {
				t.Errorf("stored times %q, want %q", texts, want)
			}
			return
		}
		var types []string
		if err := db.Bun().NewRaw(`SELECT data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'audit_log' AND column_name IN ('at', 'details')
			ORDER BY column_name`).Scan(ctx, &types); err != nil {
			t.Fatal(err)
		}
		if want := []string{"timestamp with time zone", "text"}; !reflect.DeepEqual(types, want) {
			t.Errorf("column types %v, want %v", types, want)
		}
	})
}
