package main

import (
	"context"
	"fmt"
	"io"
	"os"
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
	fmt.Fprintln(w, "       accessbot audit verify")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "export streams the audit log of DATABASE_URL; verify walks its hash chain and")
	fmt.Fprintln(w, "exits non-zero naming the first broken entry.")
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
		f, err := os.Create(*out)
		if err != nil {
			return fail(c, "audit export", err)
		}
		defer f.Close()
		w = f
	}
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

func runAuditVerify(ctx context.Context, c *cli, args []string) int {
	fs := newFlags(c, "audit verify", "audit verify",
		"Walks the audit log's hash chain. Exits 0 when intact; otherwise exits 1 naming the first\n"+
			"entry that was edited, deleted or reordered.")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	db, code := openMigrated(ctx, c, "audit verify")
	if db == nil {
		return code
	}
	defer db.Close()
	rep, err := workflow.VerifyAudit(ctx, db)
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
