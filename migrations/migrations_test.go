package migrations_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/migrations"
)

func versions(t *testing.T, dialect string) []string {
	t.Helper()
	ms, err := migrations.List(dialect)
	if err != nil {
		t.Fatalf("List(%s): %v", dialect, err)
	}
	var out []string
	for _, m := range ms {
		if strings.TrimSpace(m.SQL) == "" {
			t.Errorf("%s/%s is empty", dialect, m.Version)
		}
		out = append(out, m.Version)
	}
	return out
}

func TestListOrderedAndParallel(t *testing.T) {
	sqlite, postgres := versions(t, "sqlite"), versions(t, "postgres")
	if len(sqlite) == 0 || sqlite[0] != "0001_init" {
		t.Fatalf("sqlite migrations %v, want 0001_init first", sqlite)
	}
	for i := 1; i < len(sqlite); i++ {
		if sqlite[i-1] >= sqlite[i] {
			t.Errorf("not in order: %v", sqlite)
		}
	}
	// Every version exists for both databases, so one schema version means
	// the same tables on either.
	if !reflect.DeepEqual(sqlite, postgres) {
		t.Errorf("sqlite %v and postgres %v differ", sqlite, postgres)
	}
}

func TestListUnknownDialect(t *testing.T) {
	if _, err := migrations.List("mysql"); err == nil || !strings.Contains(err.Error(), "unknown dialect") {
		t.Errorf("List(mysql) = %v", err)
	}
}

// TestNoTransactionControl keeps BEGIN/COMMIT out of the files: the runner
// wraps each migration in its own transaction with its schema_migrations row.
func TestNoTransactionControl(t *testing.T) {
	for _, d := range migrations.Dialects {
		ms, err := migrations.List(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			for _, line := range strings.Split(m.SQL, "\n") {
				l := strings.ToUpper(strings.TrimSpace(line))
				if l == "BEGIN;" || strings.HasPrefix(l, "BEGIN TRANSACTION") || strings.HasPrefix(l, "COMMIT") {
					t.Errorf("%s/%s: %q", d, m.Version, line)
				}
			}
		}
	}
}
