package workflow

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
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

// auditJSON is one line of a JSON Lines export.
type auditJSON struct {
	Seq          int64           `json:"seq"`
	Time         string          `json:"time"`
	ActorID      string          `json:"actor"`
	ActorEmail   string          `json:"actor_email,omitempty"`
	Action       Action          `json:"action"`
	RequestID    int64           `json:"request_id,omitempty"`
	RoleID       string          `json:"role_id,omitempty"`
	RoleName     string          `json:"role_name,omitempty"`
	SubjectID    string          `json:"subject,omitempty"`
	SubjectEmail string          `json:"subject_email,omitempty"`
	Details      json.RawMessage `json:"details"`
	PrevHash     string          `json:"prev_hash"`
	Hash         string          `json:"hash"`
}

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

// WriteAudit streams the entries matching f to w as CSV or JSON Lines, in
// constant memory however large the log. It returns how many it wrote.
func WriteAudit(ctx context.Context, src AuditReader, f AuditFilter, format string, w io.Writer) (int64, error) {
	format, err := ParseExportFormat(format)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	var write func(e *AuditEntry) error
	flush := func() error { return nil }
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(AuditCSVHeader); err != nil {
			return 0, err
		}
		row := make([]string, len(AuditCSVHeader))
		write = func(e *AuditEntry) error {
			row[0] = strconv.FormatInt(e.Seq, 10)
			row[1] = e.Time.UTC().Format(AuditTimeFormat)
			row[2], row[3], row[4] = e.ActorID, e.ActorEmail, string(e.Action)
			row[5] = ""
			if e.RequestID != 0 {
				row[5] = strconv.FormatInt(e.RequestID, 10)
			}
			row[6], row[7], row[8], row[9] = e.RoleID, e.RoleName, e.SubjectID, e.SubjectEmail
			row[10], row[11], row[12] = e.Details, e.PrevHash, e.Hash
			return cw.Write(row)
		}
		flush = func() error { cw.Flush(); return cw.Error() }
	case FormatJSONL:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(e *AuditEntry) error {
			details := json.RawMessage(e.Details)
			if !json.Valid(details) {
				details, _ = json.Marshal(e.Details)
			}
			return enc.Encode(auditJSON{Seq: e.Seq, Time: e.Time.UTC().Format(AuditTimeFormat), ActorID: e.ActorID,
				ActorEmail: e.ActorEmail, Action: e.Action, RequestID: e.RequestID, RoleID: e.RoleID, RoleName: e.RoleName,
				SubjectID: e.SubjectID, SubjectEmail: e.SubjectEmail, Details: details, PrevHash: e.PrevHash, Hash: e.Hash})
		}
	}
	err = src.AuditEntries(ctx, f, func(e *AuditEntry) error {
		n++
		return write(e)
	})
	if err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	if err := flush(); err != nil {
		return n, fmt.Errorf("export audit log: %w", err)
	}
	return n, bw.Flush()
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
