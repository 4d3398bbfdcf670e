package main

import (
	"context"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"runtime/debug"
	"strings"
	"time"

	"github.com/accessbot/accessbot/workflow"
)

func runAudit(ctx context.Context, c *cli, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "export":
			return runAuditExport(ctx, c, args[1:])
		case "verify":
			return runAuditVerify(ctx, c, args[1:])
		case "keygen":
			return runAuditKeygen(ctx, c, args[1:])
		case "checkpoint":
			return runAuditCheckpoint(ctx, c, args[1:])
		case "-h", "--help", "help":
			auditUsage(c.stdout)
			return 0
		}
		fmt.Fprintf(c.stderr, "accessbot audit: unknown subcommand %q\n", args[0])
	}
	auditUsage(c.stderr)
	return 2
}

func auditUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: accessbot audit export --format csv|jsonl [--since T] [--until T] [--action PREFIX] [--out FILE]")
	fmt.Fprintln(w, "       accessbot audit verify [--public-key FILE] [--checkpoint FILE]")
	fmt.Fprintln(w, "       accessbot audit keygen --out FILE")
	fmt.Fprintln(w, "       accessbot audit checkpoint")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "export streams the audit log of DATABASE_URL; verify walks its hash chain and signed")
	fmt.Fprintln(w, "checkpoints and exits non-zero naming the first broken entry; keygen makes the ed25519")
	fmt.Fprintln(w, "key that signs checkpoints; checkpoint prints the newest signed checkpoint.")
}

func runAuditExport(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "audit export", "audit export --format csv|jsonl [--since T] [--until T] [--action PREFIX] [--out FILE]",
		"Streams the audit log (constant memory) as CSV or JSON Lines. T is RFC 3339, e.g. 2026-01-31T00:00:00Z;\n"+
			"--since is inclusive, --until exclusive. --action review_ keeps the access-review entries.")
	format := fs.String("format", "csv", "csv or jsonl")
	since := fs.String("since", "", "only entries at or after this time (RFC 3339)")
	until := fs.String("until", "", "only entries before this time (RFC 3339)")
	action := fs.String("action", "", "only entries whose action starts with PREFIX (review_, break_glass_)")
	out := fs.String("out", "", "write to this file instead of stdout")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	filter, err := parseAuditFilter(*since, *until)
	if err != nil {
		return fail(c, "audit export", err)
	}
	filter.ActionPrefix = *action
	if _, err := workflow.ParseExportFormat(*format); err != nil {
		return fail(c, "audit export", err)
	}
	db, code := openMigrated(ctx, c, "audit export")
	if db == nil {
		return code
	}
	defer db.Close()
	w := c.stdout
	if *out != "" {
		// 0600: an audit export names people and what they could access.
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fail(c, "audit export", err)
		}
		defer f.Close()
		if err := f.Chmod(0o600); err != nil {
			return fail(c, "audit export", err)
		}
		w = f
	}
	if err := workflow.RecordExport(ctx, db, workflow.AuditEntry{ActorID: cliActor(), Time: time.Now()}, "cli", filter, *format); err != nil {
		return fail(c, "audit export", err)
	}
	streamingGC()
	n, err := workflow.WriteAudit(ctx, db, filter, *format, w)
	if err != nil {
		return fail(c, "audit export", err)
	}
	if *out != "" {
		fmt.Fprintf(c.stderr, "exported %d entries to %s\n", n, *out)
	}
	return 0
}

// parseAuditFilter reads since/until, from flags or a query (RFC 3339; a
// bare date is midnight UTC).
func parseAuditFilter(since, until string) (workflow.AuditFilter, error) {
	var f workflow.AuditFilter
	var err error
	if f.Since, err = parseTimeFlag("since", since); err != nil {
		return f, err
	}
	if f.Until, err = parseTimeFlag("until", until); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, fmt.Errorf("until (%s) must be after since (%s)", until, since)
	}
	return f, nil
}

func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time like 2026-01-31T00:00:00Z", name, v)
}

// streamingGC tunes the collector of a command that walks the whole log:
// each row leaves a little garbage behind and almost nothing live, so
// collecting at 5× the live heap instead of 2× saves about a tenth of the
// CPU time, and the soft limit keeps the process far below 64 MiB however
// long the log.
func streamingGC() {
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(48 << 20)
}

// cliActor names who ran a CLI export in its audit entry: "cli:USER@HOST".
func cliActor() string {
	user := os.Getenv("USER")
	if u, err := osuser.Current(); err == nil {
		user = u.Username
	}
	host, _ := os.Hostname()
	return "cli:" + user + "@" + host
}

func runAuditVerify(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "audit verify", "audit verify [--public-key FILE] [--checkpoint FILE]",
		"Walks the audit log's hash chain in one consistent snapshot (safe while serve writes). Exits 0\n"+
			"when intact; otherwise exits 1 naming the first entry that was edited, deleted or reordered.\n"+
			"With --public-key, every stored checkpoint's signature is checked, so a chain rewritten by\n"+
			"someone without the signing key fails; after a key rotation, give --public-key once per key,\n"+
			"the current one first. With --checkpoint (a checkpoint kept outside the\n"+
			"database: 'audit checkpoint' output, the audit channel message or the SIEM event), the chain\n"+
			"must still hold that entry with that hash, so a truncated log fails too.")
	var pubFiles stringList
	fs.Var(&pubFiles, "public-key", "ed25519 public key (FILE.pub from 'audit keygen'); repeat it for keys rotated out, the current one first")
	cpFile := fs.String("checkpoint", "", "a checkpoint kept outside the database")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	var o workflow.VerifyOptions
	for i, file := range pubFiles {
		pub, err := readPublicKey(file)
		if err != nil {
			return fail(c, "audit verify", fmt.Errorf("--public-key %s: %w", file, err))
		}
		if i == 0 {
			o.PublicKey = pub
		} else {
			o.OlderKeys = append(o.OlderKeys, pub)
		}
	}
	if *cpFile != "" {
		b, err := os.ReadFile(*cpFile)
		if err != nil {
			return fail(c, "audit verify", fmt.Errorf("--checkpoint: %w", err))
		}
		cp, err := workflow.ParseCheckpoint(b)
		if err != nil {
			return fail(c, "audit verify", fmt.Errorf("--checkpoint %s: %w", *cpFile, err))
		}
		if o.PublicKey != nil {
			if err := cp.VerifyWithAny(o.Keys()); err != nil {
				fmt.Fprintf(c.stderr, "the kept checkpoint is not valid: %v\n", err)
				return 1
			}
		}
		o.Kept = &cp
	}
	db, code := openMigrated(ctx, c, "audit verify")
	if db == nil {
		return code
	}
	defer db.Close()
	streamingGC()
	rep, err := workflow.VerifyAuditWith(ctx, db, o)
	if err != nil {
		return fail(c, "audit verify", err)
	}
	if !rep.OK {
		fmt.Fprintln(c.stderr, rep.String())
		return 1
	}
	fmt.Fprintln(c.stdout, rep.String())
	return 0
}

func runAuditKeygen(_ context.Context, c *cli, args []string) int {
	fs := newFlags(c, "audit keygen", "audit keygen --out FILE",
		"Writes a new ed25519 key pair for signing audit checkpoints: the private key to FILE (mode\n"+
			"0600; give its path to serve as ACCESSBOT_AUDIT_SIGNING_KEY) and the public key to FILE.pub\n"+
			"(for 'audit verify --public-key'; keep a copy away from the database). Never overwrites.")
	out := fs.String("out", "", "where to write the private key (required)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(c.stderr, "accessbot audit keygen: --out FILE is required")
		return 2
	}
	pub, err := writeSigningKey(*out)
	if err != nil {
		return fail(c, "audit keygen", err)
	}
	fmt.Fprintf(c.stdout, "wrote %s (private, 0600) and %s.pub (key id %s)\n", *out, *out, workflow.KeyID(pub))
	return 0
}

func runAuditCheckpoint(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "audit checkpoint", "audit checkpoint",
		"Prints the newest signed checkpoint of the audit log as one JSON line, to keep outside the\n"+
			"database and give to 'audit verify --checkpoint' later.")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	db, code := openMigrated(ctx, c, "audit checkpoint")
	if db == nil {
		return code
	}
	defer db.Close()
	e, err := db.NewestAudit(ctx, workflow.ActionCheckpointSigned)
	if err != nil {
		return fail(c, "audit checkpoint", err)
	}
	if e == nil {
		return fail(c, "audit checkpoint", fmt.Errorf("no signed checkpoint yet (serve writes one every ACCESSBOT_AUDIT_CHECKPOINT_INTERVAL and at shutdown when ACCESSBOT_AUDIT_SIGNING_KEY is set)"))
	}
	cp, err := workflow.ParseCheckpoint([]byte(e.Details))
	if err != nil {
		return fail(c, "audit checkpoint", fmt.Errorf("entry %d: %w", e.Seq, err))
	}
	fmt.Fprintln(c.stdout, cp.JSON())
	return 0
}

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
