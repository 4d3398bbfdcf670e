package storetest_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/accessbot/accessbot/workflow"
)

func TestOpenIsMigratedFile(t *testing.T) {
	db := storetest.Open(t)
	if db.Dialect() != store.DialectSQLite {
		t.Fatalf("Dialect = %s", db.Dialect())
	}
	if err := db.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func TestEachURLSQLiteIsAFile(t *testing.T) {
	storetest.EachURL(t, func(t *testing.T, u string) {
		if strings.HasSuffix(t.Name(), "/sqlite") && (!strings.HasPrefix(u, "sqlite:/") || !strings.HasSuffix(u, ".db")) {
			t.Errorf("sqlite URL = %s, want sqlite: and a file path", u)
		}
	})
}

func TestEachRunsEveryDialect(t *testing.T) {
	var ran []string
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ran = append(ran, db.Dialect())
		if err := db.Ready(context.Background()); err != nil {
			t.Fatalf("Ready: %v", err)
		}
	})
	want := "sqlite"
	if os.Getenv(storetest.EnvPostgresURL) != "" {
		want = "sqlite,postgres"
	}
	if got := strings.Join(ran, ","); got != want {
		t.Errorf("ran %s, want %s", got, want)
	}
}

// TestPostgresSchemasAreIsolatedAndDropped checks that two databases from
// OpenPostgres do not see each other's rows and that each schema is gone
// after its test.
func TestPostgresSchemasAreIsolatedAndDropped(t *testing.T) {
	base := os.Getenv(storetest.EnvPostgresURL)
	if base == "" {
		t.Skip(storetest.EnvPostgresURL + " not set")
	}
	var schemas []string
	t.Run("pair", func(t *testing.T) {
		a, b := storetest.OpenPostgres(t, base), storetest.OpenPostgres(t, base)
		for _, db := range []*store.DB{a, b} {
			var s string
			if err := db.Bun().NewRaw("SELECT current_schema()").Scan(context.Background(), &s); err != nil {
				t.Fatal(err)
			}
			schemas = append(schemas, s)
		}
		if schemas[0] == schemas[1] || !strings.HasPrefix(schemas[0], "test_") {
			t.Fatalf("schemas %v", schemas)
		}
		if err := a.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
			return tx.PutSetting(ctx, "k", "a")
		}); err != nil {
			t.Fatal(err)
		}
		if err := b.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
			_, ok, err := tx.Setting(ctx, "k")
			if ok {
				t.Error("b sees a's setting")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, s := range schemas {
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1", s).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("schema %s still exists after its test", s)
		}
	}
}
