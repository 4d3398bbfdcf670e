package main

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/workflow"
)

// TestAuditCommandsNeverCreateADatabase: in a directory without the
// database, verify, export and checkpoint name the missing file and leave
// nothing behind (an empty database would verify as "intact").
func TestAuditCommandsNeverCreateADatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "accessbot.db")
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "export"}, {"audit", "checkpoint"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, []string{"DATABASE_URL=sqlite:" + path}, args...)
			if code != 1 || !strings.Contains(errOut, "no database at "+path) || out != "" {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("left files behind: %v", entries)
			}
		})
	}
}

// migratedDB makes a migrated SQLite database with one entry and returns its
// DATABASE_URL environment.
func migratedDB(t *testing.T) ([]string, *store.DB) {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "accessbot.db")
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(ctx context.Context, tx workflow.Tx) error {
		return tx.AppendAudit(ctx, &workflow.AuditEntry{ActorID: "U1", Action: workflow.ActionPolicyChanged})
	}); err != nil {
		t.Fatal(err)
	}
	return []string{"DATABASE_URL=" + url}, db
}

func TestCLIExportIsAuditedAndPrivate(t *testing.T) {
	env, _ := migratedDB(t)
	out := filepath.Join(t.TempDir(), "audit.csv")
	// An existing, world-readable file is made private too.
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, env, "audit", "export", "--out", out, "--since", "2020-01-01")
	if code != 0 || !strings.Contains(errOut, "exported 2 entries") {
		t.Fatalf("export: %d %s", code, errOut)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v, %v", st.Mode(), err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("rows %v %v", rows, err)
	}
	last := rows[2]
	if last[4] != string(workflow.ActionAuditExported) || !strings.HasPrefix(last[2], "cli:") ||
		last[10] != `{"format":"csv","since":"2020-01-01T00:00:00Z","via":"cli"}` {
		t.Fatalf("export entry %v", last)
	}
	if code, out, _ := runCLI(t, env, "audit", "verify"); code != 0 || !strings.Contains(out, "intact: 2 entries") {
		t.Fatalf("verify after export: %d %s", code, out)
	}
}

// TestCLISignedCheckpoints: keygen, a checkpoint written by the service's
// Checkpointer, `audit checkpoint`, and verify with the key and the kept
// checkpoint; then a rewrite is caught.
func TestCLISignedCheckpoints(t *testing.T) {
	env, db := migratedDB(t)
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	code, out, errOut := runCLI(t, nil, "audit", "keygen", "--out", keyFile)
	if code != 0 || !strings.Contains(out, "key id") {
		t.Fatalf("keygen: %d %s %s", code, out, errOut)
	}
	for file, mode := range map[string]os.FileMode{keyFile: 0o600, keyFile + ".pub": 0o644} {
		if st, err := os.Stat(file); err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v", file, st, err)
		}
	}
	if code, _, errOut := runCLI(t, nil, "audit", "keygen", "--out", keyFile); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("keygen over an existing key: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, env, "audit", "checkpoint"); code != 1 || !strings.Contains(errOut, "no signed checkpoint yet") {
		t.Fatalf("checkpoint before any: %d %s", code, errOut)
	}
	key, err := readSigningKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := (&workflow.Checkpointer{Store: db, Key: key}).Sign(context.Background()); !ok || err != nil {
		t.Fatalf("sign: %v %v", ok, err)
	}
	code, line, errOut := runCLI(t, env, "audit", "checkpoint")
	if code != 0 || strings.Count(line, "\n") != 1 || !strings.Contains(line, `"seq":1`) {
		t.Fatalf("checkpoint: %d %q %s", code, line, errOut)
	}
	kept := filepath.Join(t.TempDir(), "kept.json")
	if err := os.WriteFile(kept, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, env, "audit", "verify", "--public-key", keyFile+".pub", "--checkpoint", kept)
	if code != 0 || !strings.Contains(out, "1 signed checkpoint verified") || !strings.Contains(out, "kept checkpoint matches") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	// A forged kept checkpoint is refused before the walk.
	forged := strings.Replace(line, `"seq":1`, `"seq":2`, 1)
	if err := os.WriteFile(kept, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, env, "audit", "verify", "--public-key", keyFile+".pub", "--checkpoint", kept)
	if code != 1 || !strings.Contains(errOut, "forged") {
		t.Fatalf("forged kept checkpoint: %d %s", code, errOut)
	}
	// The wrong file for the key.
	if code, _, errOut := runCLI(t, env, "audit", "verify", "--public-key", keyFile); code != 1 || !strings.Contains(errOut, "want a PUBLIC KEY") {
		t.Fatalf("private key as public: %d %s", code, errOut)
	}
	// The key is rotated: the old checkpoint verifies when the old key is
	// given after the current one, and only then.
	newFile := filepath.Join(t.TempDir(), "audit-2.key")
	if code, _, errOut := runCLI(t, nil, "audit", "keygen", "--out", newFile); code != 0 {
		t.Fatalf("keygen: %s", errOut)
	}
	newKey, err := readSigningKey(newFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), func(ctx context.Context, tx workflow.Tx) error {
		return tx.AppendAudit(ctx, &workflow.AuditEntry{ActorID: workflow.SystemActor, Action: workflow.ActionPolicyChanged, Time: time.Now(), Details: "{}"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := (&workflow.Checkpointer{Store: db, Key: newKey}).Sign(context.Background()); !ok || err != nil {
		t.Fatalf("sign with the new key: %v %v", ok, err)
	}
	if code, _, errOut := runCLI(t, env, "audit", "verify", "--public-key", newFile+".pub"); code != 1 || !strings.Contains(errOut, "signed by key") {
		t.Fatalf("verify with the new key only: %d %s", code, errOut)
	}
	code, out, errOut = runCLI(t, env, "audit", "verify", "--public-key", newFile+".pub", "--public-key", keyFile+".pub")
	if code != 0 || !strings.Contains(out, "2 signed checkpoints verified") {
		t.Fatalf("verify across the rotation: %d %s %s", code, out, errOut)
	}
}
