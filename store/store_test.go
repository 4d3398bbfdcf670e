package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/migrations"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

// t0 has a sub-second part on purpose: times must survive with µs intact.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

// testClock is a settable workflow.Clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *testClock { return &testClock{now: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// update runs fn in db.Update and fails the test on error.
func update(t testing.TB, db *store.DB, fn func(ctx context.Context, tx workflow.Tx) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// code returns the workflow error code of err ("" for nil).
func code(err error) string { return workflow.ErrorCode(err) }

func newRequest(subject, role string) *workflow.Request {
	return &workflow.Request{
		Kind:              workflow.KindAdd,
		State:             workflow.StatePending,
		RequesterID:       "U_REQ",
		RequesterEmail:    "req@example.com",
		SubjectID:         subject,
		SubjectEmail:      strings.ToLower(subject) + "@example.com",
		SubjectUUID:       "uuid-" + subject,
		RoleID:            role,
		RoleName:          "Role " + role,
		Reason:            "need it",
		Duration:          8 * time.Hour,
		ApprovalsRequired: 1,
	}
}

func insert(t testing.TB, db *store.DB, r *workflow.Request) *workflow.Request {
	t.Helper()
	update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.InsertRequest(ctx, r) })
	return r
}

// get reads request id back, failing the test on error.
func get(t testing.TB, db *store.DB, id int64) *workflow.Request {
	t.Helper()
	var r *workflow.Request
	update(t, db, func(ctx context.Context, tx workflow.Tx) (err error) {
		r, err = tx.Request(ctx, id)
		return err
	})
	return r
}

func TestOpenRejectsUnknownSchemes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, url, want string
	}{
		{"empty", "", "empty database URL"},
		{"mysql", "mysql://root:hunter2@db/x", `unsupported database URL scheme "mysql"`},
		{"bare path", "accessbot.db", "has no scheme"},
		{"memory", "sqlite::memory:", ":memory: is not supported"},
		{"sqlite query", "sqlite:a.db?_pragma=x", "without ?query"},
		{"sqlite no path", "sqlite:", "no file path"},
		{"bad postgres url", "postgres://u:hunter2@h:port/db", "cannot parse the postgres URL"},
		{"postgres bad param", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=x", "invalid postgres URL"},
		{"postgres refused", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2&sslmode=disable", "connect to postgres"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db, err := store.Open(context.Background(), c.url)
			if err == nil {
				_ = db.Close()
				t.Fatalf("Open(%q) succeeded", c.url)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open(%q) = %v, want it to mention %q", c.url, err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
			if strings.Contains(err.Error(), "accessbot.db") || strings.Contains(err.Error(), "root") {
				t.Errorf("error echoes the URL: %v", err)
			}
		})
	}
}

func TestOpenSQLiteURLForms(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, u := range []string{"sqlite:" + dir + "/a.db", "sqlite://" + dir + "/b.db", "file:" + dir + "/c.db"} {
		db, err := store.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if db.Dialect() != store.DialectSQLite {
			t.Errorf("Dialect = %q", db.Dialect())
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestOpenSQLiteOddPaths(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, u := range []string{"sqlite:relative.db", "sqlite://sub dir/with%25percent.db", "sqlite:./100%.db"} {
		if strings.Contains(u, "sub dir") {
			if err := os.Mkdir("sub dir", 0o755); err != nil {
				t.Fatal(err)
			}
		}
		db, err := store.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate(%q): %v", u, err)
		}
		_ = db.Close()
	}
	for _, name := range []string{"relative.db", "sub dir/with%25percent.db", "100%.db"} {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("expected file %q: %v", name, err)
		}
	}
}

func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	ctx := context.Background()
	var mode string
	var fk, busy int
	if err := db.Bun().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.Bun().QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := db.Bun().QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 || busy < 5000 {
		t.Errorf("journal_mode=%s foreign_keys=%d busy_timeout=%d, want wal, 1, >=5000", mode, fk, busy)
	}
}

func TestMigrate(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()

		if err := db.Ready(ctx); err == nil || !strings.Contains(err.Error(), "not migrated") {
			t.Fatalf("Ready before Migrate = %v, want a not-migrated error", err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if err := db.Ready(ctx); err != nil {
			t.Fatalf("Ready after Migrate: %v", err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		ms, err := migrations.List(db.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		var versions []string
		if err := db.Bun().NewRaw("SELECT version FROM schema_migrations ORDER BY version").Scan(ctx, &versions); err != nil {
			t.Fatal(err)
		}
		if len(versions) != len(ms) {
			t.Fatalf("schema_migrations has %v, want %d rows", versions, len(ms))
		}
		for i, m := range ms {
			if versions[i] != m.Version {
				t.Errorf("version %d = %s, want %s", i, versions[i], m.Version)
			}
		}
		// Applied once: the audit head row the first migration inserts is
		// still the only one.
		var heads int
		if err := db.Bun().NewRaw("SELECT COUNT(*) FROM audit_head").Scan(ctx, &heads); err != nil {
			t.Fatal(err)
		}
		if heads != 1 {
			t.Errorf("audit_head has %d rows", heads)
		}
	})
}

func TestMigrateConcurrently(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		// Separate *DB values have separate pools, like separate processes.
		const n = 4
		dbs := make([]*store.DB, n)
		for i := range dbs {
			db, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			dbs[i] = db
		}
		errs := make(chan error, n)
		var start sync.WaitGroup
		start.Add(1)
		for _, db := range dbs {
			go func() {
				start.Wait()
				errs <- db.Migrate(ctx)
			}()
		}
		start.Done()
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		}
		for _, db := range dbs {
			if err := db.Ready(ctx); err != nil {
				t.Errorf("Ready: %v", err)
			}
		}
	})
}

func TestReadyFailsWhenClosed(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t)
	if err := db.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	_ = db.Close()
	if err := db.Ready(context.Background()); err == nil {
		t.Fatal("Ready on a closed database succeeded")
	}
}

func TestUpdateRollsBackWhenFnFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.InsertRequest(ctx, newRequest("U1", "R1")); err != nil {
				return err
			}
			if err := tx.EnqueueJob(ctx, &workflow.Job{Kind: workflow.JobExecute}); err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, &workflow.AuditEntry{ActorID: "U1", Action: workflow.ActionRequestCreated}); err != nil {
				return err
			}
			if err := tx.PutSetting(ctx, "k", "v"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update = %v, want fn's error", err)
		}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			rs, err := tx.FindRequests(ctx, workflow.RequestFilter{})
			if err != nil {
				return err
			}
			if len(rs) != 0 {
				t.Errorf("requests after rollback: %d", len(rs))
			}
			if _, err := tx.Request(ctx, 1); code(err) != workflow.ENOTFOUND {
				t.Errorf("Request(1) after rollback: %v", err)
			}
			if _, ok, err := tx.Setting(ctx, "k"); err != nil || ok {
				t.Errorf("setting after rollback: ok=%v err=%v", ok, err)
			}
			return nil
		})
		if j, err := db.ClaimJob(ctx, nil, time.Now().Add(time.Hour), time.Minute); err != nil || j != nil {
			t.Errorf("ClaimJob after rollback = %v, %v", j, err)
		}
		if seq, hash, err := db.AuditHead(ctx); err != nil || seq != 0 || hash != "" {
			t.Errorf("AuditHead after rollback = %d, %q, %v", seq, hash, err)
		}
		// The caller's values get back what the store set on them, so the
		// same request can be used in the next Update.
		r := newRequest("U2", "R1")
		e := &workflow.AuditEntry{ActorID: "U1", Action: workflow.ActionRequestCreated}
		_ = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			if err := tx.InsertRequest(ctx, r); err != nil {
				return err
			}
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
			return boom
		})
		if r.ID != 0 || r.Version != 0 || !r.CreatedAt.IsZero() || e.Seq != 0 || e.Hash != "" {
			t.Errorf("after rollback r.ID=%d Version=%d CreatedAt=%v e.Seq=%d e.Hash=%q", r.ID, r.Version, r.CreatedAt, e.Seq, e.Hash)
		}
		insert(t, db, r)
		_ = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
			r.Reason = "changed"
			if err := tx.UpdateRequest(ctx, r); err != nil {
				return err
			}
			return boom
		})
		if r.Version != 1 {
			t.Errorf("after rolled-back UpdateRequest Version = %d, want 1", r.Version)
		}
		update(t, db, func(ctx context.Context, tx workflow.Tx) error { return tx.UpdateRequest(ctx, r) })
		if r.Version != 2 {
			t.Errorf("Version = %d, want 2", r.Version)
		}

		// A panic rolls back too and leaves the database usable.
		func() {
			defer func() { _ = recover() }()
			_ = db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
				_ = tx.PutSetting(ctx, "p", "v")
				panic("fn panicked")
			})
		}()
		update(t, db, func(ctx context.Context, tx workflow.Tx) error {
			if _, ok, err := tx.Setting(ctx, "p"); err != nil || ok {
				t.Errorf("setting after panic: ok=%v err=%v", ok, err)
			}
			return nil
		})
	})
}

func TestViewIsReadOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := insert(t, db, newRequest("U1", "R1"))
		err := db.View(ctx, func(ctx context.Context, tx workflow.Tx) error {
			got, err := tx.Request(ctx, r.ID)
			if err != nil {
				return err
			}
			if got.ID != r.ID {
				t.Errorf("View read %d", got.ID)
			}
			return tx.PutSetting(ctx, "k", "v")
		})
		if err == nil {
			t.Fatal("PutSetting in View succeeded")
		}
	})
}

func TestDialect(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		want := store.DialectSQLite
		if strings.HasSuffix(t.Name(), "postgres") {
			want = store.DialectPostgres
		}
		if db.Dialect() != want {
			t.Errorf("Dialect = %q, want %q", db.Dialect(), want)
		}
	})
}

// errorsAsCode fails unless err carries the workflow code want.
func errorsAsCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error %v has code %q, want %q", err, got, want)
	}
}
