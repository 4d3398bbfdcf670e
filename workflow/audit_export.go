package workflow

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"
)

// Export formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// AuditReader streams audit entries; Store satisfies it.
type AuditReader interface {
	AuditEntries(ctx context.Context, f AuditFilter, fn func(*AuditEntry) error) error
}

// AuditCSVHeader is the first line of a CSV export.
var AuditCSVHeader = []string{"seq", "time", "actor", "actor_email", "action", "request_id", "role_id", "role_name",
	"subject", "subject_email", "details", "prev_hash", "hash"}

// ParseExportFormat checks an export format name ("" means CSV).
func ParseExportFormat(s string) (string, error) {
	switch s {
	case "", FormatCSV:
		return FormatCSV, nil
	case FormatJSONL, "json", "ndjson":
		return FormatJSONL, nil
	}
	return "", Errorf(EINVALID, "Unknown export format %q: use csv or jsonl.", s)
}

// AuditStreamer is an AuditReader that reuses one entry for every row (fn
// must not keep e); the store satisfies it, and exports use it when given.
type AuditStreamer interface {
	EachAuditEntry(ctx context.Context, f AuditFilter, fn func(e *AuditEntry) error) error
}

// WriteAudit streams the entries matching f to w as CSV or JSON Lines, in
// constant memory however large the log. It returns how many it wrote.
// Rows are read on the calling goroutine and encoded on another (see
// pipeline); each entry is encoded into one reused buffer and written
// through one 64 KiB buffered writer, so the loop allocates nothing of its
// own.
func WriteAudit(ctx context.Context, src AuditReader, f AuditFilter, format string, w io.Writer) (int64, error) {
	format, err := ParseExportFormat(format)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	line := make([]byte, 0, 1024)
	if format == FormatCSV {
		if _, err := bw.Write(AppendAuditCSVHeader(line)); err != nil {
			return 0, fmt.Errorf("export audit log: %w", err)
		}
	}
	write := func(e *AuditEntry) error {
		n++
		if format == FormatCSV {
			line = AppendAuditCSV(line, e)
		} else {
			line = append(AppendAuditJSON(line, e), '\n')
		}
		_, err := bw.Write(line)
		line = line[:0]
		return err
	}
	err = pipeline(func(fn func(e *AuditEntry) error) error {
		if st, ok := src.(AuditStreamer); ok {
			return st.EachAuditEntry(ctx, f, fn)
		}
		return src.AuditEntries(ctx, f, fn)
	}, write)
	if err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	return n, nil
}

// AppendAuditCSVHeader appends the CSV header line to dst.
func AppendAuditCSVHeader(dst []byte) []byte {
	for i, h := range AuditCSVHeader {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, h...)
	}
	return append(dst, '\n')
}

// ExportAudit audits that actor exported the log (via "slack", where only
// admins may, or "http", whose caller the HTTP layer authorized with the
// audit token), then streams it like WriteAudit. Errors: EFORBIDDEN, EINVALID.
func (s *Service) ExportAudit(ctx context.Context, actor, via string, f AuditFilter, format string, w io.Writer) (int64, error) {
	if via == "slack" && !s.admins[actor] {
		return 0, Errorf(EFORBIDDEN, "Only bot admins can export the audit log.")
	}
	format, err := ParseExportFormat(format)
	if err != nil {
		return 0, err
	}
	actorEmail := ""
	if actor != SystemActor && via == "slack" {
		actorEmail = s.optionalEmail(ctx, actor)
	}
	if err := RecordExport(ctx, s.store, AuditEntry{ActorID: actor, ActorEmail: actorEmail, Time: s.Now()}, via, f, format); err != nil {
		return 0, err
	}
	return WriteAudit(ctx, s.store, f, format, w)
}

// Updater runs a read-write transaction; Store satisfies it.
type Updater interface {
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
}

// RecordExport appends the audit_exported entry of an export by e.ActorID
// through via ("slack", "http" or "cli") with filter f and format, before
// the export streams, so the export itself shows who took it.
func RecordExport(ctx context.Context, st Updater, e AuditEntry, via string, f AuditFilter, format string) error {
	details := map[string]any{"format": format, "via": via}
	if !f.Since.IsZero() {
		details["since"] = f.Since.UTC().Format(time.RFC3339)
	}
	if !f.Until.IsZero() {
		details["until"] = f.Until.UTC().Format(time.RFC3339)
	}
	if f.ActionPrefix != "" {
		details["action"] = f.ActionPrefix
	}
	e.Action = ActionAuditExported
	e.Details = CanonicalDetails(details)
	err := st.Update(ctx, func(ctx context.Context, tx Tx) error {
		entry := e
		return tx.AppendAudit(ctx, &entry)
	})
	if err != nil {
		return fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	return nil
}
