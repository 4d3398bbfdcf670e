package workflow_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/accessbot/accessbot/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files from the encoding/csv and encoding/json reference")

// stdlibAuditJSON is the export line as encoding/json wrote it before the
// hand-written encoder: the reference the encoder must match byte for byte.
type stdlibAuditJSON struct {
	Seq          int64           `json:"seq"`
	Time         string          `json:"time"`
	ActorID      string          `json:"actor"`
	ActorEmail   string          `json:"actor_email,omitempty"`
	Action       workflow.Action `json:"action"`
	RequestID    int64           `json:"request_id,omitempty"`
	RoleID       string          `json:"role_id,omitempty"`
	RoleName     string          `json:"role_name,omitempty"`
	SubjectID    string          `json:"subject,omitempty"`
	SubjectEmail string          `json:"subject_email,omitempty"`
	Details      json.RawMessage `json:"details"`
	PrevHash     string          `json:"prev_hash"`
	Hash         string          `json:"hash"`
}

// stdlibExport is the export as encoding/csv and encoding/json write it.
func stdlibExport(t *testing.T, format string, entries []workflow.AuditEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if format == "csv" {
		cw := csv.NewWriter(bw)
		_ = cw.Write(workflow.AuditCSVHeader)
		for _, e := range entries {
			rid := ""
			if e.RequestID != 0 {
				rid = strconv.FormatInt(e.RequestID, 10)
			}
			_ = cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(workflow.AuditTimeFormat), e.ActorID,
				e.ActorEmail, string(e.Action), rid, e.RoleID, e.RoleName, e.SubjectID, e.SubjectEmail, e.Details, e.PrevHash, e.Hash})
		}
		cw.Flush()
	} else {
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for _, e := range entries {
			details := json.RawMessage(e.Details)
			if !json.Valid(details) {
				details, _ = json.Marshal(e.Details)
			}
			_ = enc.Encode(stdlibAuditJSON{Seq: e.Seq, Time: e.Time.UTC().Format(workflow.AuditTimeFormat), ActorID: e.ActorID,
				ActorEmail: e.ActorEmail, Action: e.Action, RequestID: e.RequestID, RoleID: e.RoleID, RoleName: e.RoleName,
				SubjectID: e.SubjectID, SubjectEmail: e.SubjectEmail, Details: details, PrevHash: e.PrevHash, Hash: e.Hash})
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// trickyEntries covers every escaping rule of both formats.
func trickyEntries() []workflow.AuditEntry {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC)
	strs := []string{"", "plain", "comma,inside", `quote"inside`, "new\nline", "cr\rhere", " leading space", "\tleading tab",
		`\.`, "\u00a0nbsp first", "<html>&amp;", "ctl\x01\x1f\b\f", "back\\slash", "bad utf8 \xff\xfe", "line\u2028sep\u2029",
		"ünïcödé ✓", "\u3000ideographic space"}
	details := []string{"{}", `{"a":1,"b":"x"}`, `{ "spaced" : [1, 2] ,"s":"a b"}`, "not json", `{"html":"<b>&</b>"}`,
		"\"str\"", `{"broken":`, "{\"nl\":\"a\\nb\"}\n"}
	var out []workflow.AuditEntry
	for i, s := range strs {
		out = append(out, workflow.AuditEntry{Seq: int64(i + 1), Time: at.Add(time.Duration(i) * time.Microsecond), ActorID: s,
			ActorEmail: s, Action: workflow.Action(s), RequestID: int64(i % 3), RoleID: s, RoleName: s, SubjectID: s,
			SubjectEmail: s, Details: details[i%len(details)], PrevHash: s, Hash: "h" + s})
	}
	for i, d := range details {
		out = append(out, workflow.AuditEntry{Seq: int64(100 + i), Time: at, ActorID: "U1", Action: "request_created", Details: d})
	}
	return out
}

type sliceReader []workflow.AuditEntry

func (s sliceReader) AuditEntries(_ context.Context, _ workflow.AuditFilter, fn func(*workflow.AuditEntry) error) error {
	for i := range s {
		if err := fn(&s[i]); err != nil {
			return err
		}
	}
	return nil
}

// TestAuditEncodersMatchStdlib: the export's bytes are exactly what
// encoding/csv and encoding/json produced, and what the golden files hold.
func TestAuditEncodersMatchStdlib(t *testing.T) {
	entries := trickyEntries()
	for _, format := range []string{"csv", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			want := stdlibExport(t, format, entries)
			golden := filepath.Join("testdata", "audit_export.golden."+format)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var got bytes.Buffer
			n, err := workflow.WriteAudit(context.Background(), sliceReader(entries), workflow.AuditFilter{}, format, &got)
			if err != nil || n != int64(len(entries)) {
				t.Fatalf("WriteAudit = %d, %v", n, err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				gl, wl := bytes.Split(got.Bytes(), []byte("\n")), bytes.Split(want, []byte("\n"))
				for i := range min(len(gl), len(wl)) {
					if !bytes.Equal(gl[i], wl[i]) {
						t.Fatalf("line %d differs from encoding/%s:\n got %q\nwant %q", i+1, format, gl[i], wl[i])
					}
				}
				t.Fatalf("output differs in length: %d vs %d bytes", got.Len(), len(want))
			}
			file, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), file) {
				t.Fatalf("output differs from %s (run with -update only if the format is meant to change)", golden)
			}
		})
	}
}

func TestAuditEncodersDoNotAllocate(t *testing.T) {
	e := workflow.AuditEntry{Seq: 12345, Time: time.Now(), ActorID: "U0123456", ActorEmail: "a@example.com",
		Action: workflow.ActionRequestApproved, RequestID: 77, RoleID: "0190-abc", RoleName: "Engineering", SubjectID: "U0999",
		SubjectEmail: "b@example.com", Details: `{"reason":"on call, \"urgent\"","via":"slack"}`, PrevHash: "ab12", Hash: "cd34"}
	buf := make([]byte, 0, 4096)
	for name, fn := range map[string]func(){
		"csv":  func() { buf = workflow.AppendAuditCSV(buf[:0], &e) },
		"json": func() { buf = workflow.AppendAuditJSON(buf[:0], &e) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %.1f allocations per entry", name, n)
		}
	}
}

// stdlibCanonical is the canonical entry as json.Marshal wrote it when the
// chain was first defined: the hand-written form must stay identical, or
// existing logs would stop verifying.
func stdlibCanonicalHash(prevHash string, e *workflow.AuditEntry) string {
	c := struct {
		Seq          int64  `json:"seq"`
		Time         string `json:"time"`
		ActorID      string `json:"actor"`
		ActorEmail   string `json:"actor_email"`
		Action       string `json:"action"`
		RequestID    int64  `json:"request_id"`
		RoleID       string `json:"role_id"`
		RoleName     string `json:"role_name"`
		SubjectID    string `json:"subject"`
		SubjectEmail string `json:"subject_email"`
		Details      string `json:"details"`
	}{e.Seq, e.Time.UTC().Format(workflow.AuditTimeFormat), e.ActorID, e.ActorEmail, string(e.Action), e.RequestID,
		e.RoleID, e.RoleName, e.SubjectID, e.SubjectEmail, e.Details}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(append([]byte(prevHash+"\n"), b...))
	return hex.EncodeToString(sum[:])
}

func TestCanonicalMatchesMarshal(t *testing.T) {
	for _, e := range trickyEntries() {
		if got, want := workflow.ComputeHash(e.PrevHash, &e), stdlibCanonicalHash(e.PrevHash, &e); got != want {
			t.Errorf("entry %d (%q): hash %s, json.Marshal gives %s", e.Seq, e.ActorID, got, want)
		}
	}
	// A hash fixed when the chain was defined (json.Marshal), so a change
	// of the canonical form cannot go unnoticed.
	e := workflow.AuditEntry{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ActorID: "U1", ActorEmail: "a@x",
		Action: workflow.ActionRequestApproved, RequestID: 3, RoleID: "r", RoleName: "R&D <ops>", SubjectID: "U2", SubjectEmail: "b@x",
		Details: `{"reason":"a \"b\""}`}
	const pinned = "3d1b04cd67d7942e8cd5e277c4fcc64fcf1f8174a4df0a1f706f6874a64cfe91"
	if got := workflow.ComputeHash("prev", &e); got != pinned || stdlibCanonicalHash("prev", &e) != pinned {
		t.Errorf("hash %s (json.Marshal: %s), pinned %s", got, stdlibCanonicalHash("prev", &e), pinned)
	}
	if n := testing.AllocsPerRun(100, func() { _ = workflow.ComputeHash("prev", &e) }); n > 1 {
		t.Errorf("%.0f allocations per hash", n)
	}
}
