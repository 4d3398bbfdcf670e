package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/workflow"
)

// auditSelect is the column list every audit read scans, in scanAudit's
// order. The audit readers use database/sql directly, not bun: bun's
// per-row reflection and time conversion were most of an export's time.
const auditSelect = "SELECT seq, at, actor_id, actor_email, action, request_id, role_id, role_name, " +
	"subject_id, subject_email, details, prev_hash, hash FROM audit_log"

// auditSelectPacked is auditSelect for SQLite with the text columns joined
// into one, NUL-separated (concat_ws sizes the result once; a chain of ||
// copied it eleven times). With the pure-Go driver every column read costs
// several calls into SQLite, each taking the connection's mutex; one text
// column per row made exports of a million entries a fifth faster, and its
// fields are substrings of one string. A field holding a NUL itself shows
// as a wrong count of separators, and that row is read again column by
// column (auditScanner.scan).
const auditSelectPacked = "SELECT seq, request_id, concat_ws(char(0), at, actor_id, actor_email, action, role_id, " +
	"role_name, subject_id, subject_email, details, prev_hash, hash) FROM audit_log"

// auditFields is how many text fields a packed row holds.
const auditFields = 11

// queryer runs the per-row fallback query, in the walk's transaction when
// it has one.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// auditScanner reads audit rows into one reused entry, so the walk
// allocates only what the driver itself allocates.
type auditScanner struct {
	e      workflow.AuditEntry
	at     rawTime
	action string
	packed string
	dest   []any // what rows.Scan fills
	full   []any // the columns of auditSelect
}

func newAuditScanner(dialect string) *auditScanner {
	s := &auditScanner{}
	e := &s.e
	s.full = []any{&e.Seq, &s.at, &e.ActorID, &e.ActorEmail, &s.action, &e.RequestID, &e.RoleID, &e.RoleName,
		&e.SubjectID, &e.SubjectEmail, &e.Details, &e.PrevHash, &e.Hash}
	s.dest = s.full
	if dialect == DialectSQLite {
		s.dest = []any{&e.Seq, &e.RequestID, &s.packed}
	}
	return s
}

// selectAudit is the audit query for dialect.
func selectAudit(dialect string) string {
	if dialect == DialectSQLite {
		return auditSelectPacked
	}
	return auditSelect
}

// scan reads the current row of rows into s.e; q reads a row again when
// its packed form is ambiguous.
func (s *auditScanner) scan(ctx context.Context, q queryer, rows *sql.Rows) (*workflow.AuditEntry, error) {
	if err := rows.Scan(s.dest...); err != nil {
		return nil, err
	}
	if len(s.dest) != len(s.full) && !s.unpack() {
		if err := q.QueryRowContext(ctx, auditSelect+" WHERE seq = $1", s.e.Seq).Scan(s.full...); err != nil {
			return nil, fmt.Errorf("entry %d: %w", s.e.Seq, err)
		}
	}
	s.e.Time = time.Time(s.at)
	s.e.Action = workflow.Action(s.action)
	return &s.e, nil
}

// unpack splits s.packed into the entry's text fields, as substrings of it;
// false when it does not hold exactly auditFields fields (some field
// contains a NUL) or the time does not parse.
func (s *auditScanner) unpack() bool {
	e := &s.e
	var at string
	fields := [auditFields]*string{&at, &e.ActorID, &e.ActorEmail, &s.action, &e.RoleID, &e.RoleName, &e.SubjectID,
		&e.SubjectEmail, &e.Details, &e.PrevHash, &e.Hash}
	p := s.packed
	for i, f := range fields {
		if i == auditFields-1 {
			if strings.IndexByte(p, 0) >= 0 {
				return false
			}
			*f = p
			break
		}
		j := strings.IndexByte(p, 0)
		if j < 0 {
			return false
		}
		*f, p = p[:j], p[j+1:]
	}
	return s.at.Scan(at) == nil
}

// rawTime scans an audit time: SQLite's fixed-width text is parsed by hand
// (time.Parse was a tenth of an export), anything else as dbTime does.
type rawTime time.Time

func (t *rawTime) Scan(src any) error {
	if s, ok := src.(string); ok {
		if tm, ok := parseSQLiteTime(s); ok {
			*t = rawTime(tm)
			return nil
		}
	}
	var d dbTime
	if err := d.Scan(src); err != nil {
		return err
	}
	*t = rawTime(d)
	return nil
}

// parseSQLiteTime parses "2006-01-02 15:04:05.000000" (sqliteTimeLayout)
// without allocating; ok is false for any other shape.
func parseSQLiteTime(s string) (time.Time, bool) {
	if len(s) != len(sqliteTimeLayout) || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' || s[19] != '.' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	micro, ok7 := num(20, 26)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || month < 1 || month > 12 || day < 1 || day > 31 ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, micro*1000, time.UTC), true
}

// timeArg is t as a query argument for the raw audit queries.
func (db *DB) timeArg(t time.Time) any {
	if db.dialect == DialectSQLite {
		return normTime(t).Format(sqliteTimeLayout)
	}
	return normTime(t)
}

// AuditEntries calls fn for each entry with f.Since <= Time < f.Until (zero
// bounds do not bound) whose action starts with f.ActionPrefix, in Seq order. Rows are read one at a time from a
// database cursor, so memory stays constant however long the log; fn's
// error stops the walk and is returned as is. fn may keep e.
func (db *DB) AuditEntries(ctx context.Context, f workflow.AuditFilter, fn func(e *workflow.AuditEntry) error) error {
	return db.EachAuditEntry(ctx, f, func(e *workflow.AuditEntry) error {
		c := *e
		return fn(&c)
	})
}

// EachAuditEntry is AuditEntries for streaming: e is reused for the next
// row, so fn must not keep it (copy what it needs).
func (db *DB) EachAuditEntry(ctx context.Context, f workflow.AuditFilter, fn func(e *workflow.AuditEntry) error) error {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		args = append(args, db.timeArg(f.Since))
		where = append(where, "at >= $"+strconv.Itoa(len(args)))
	}
	if !f.Until.IsZero() {
		args = append(args, db.timeArg(f.Until))
		where = append(where, "at < $"+strconv.Itoa(len(args)))
	}
	if f.ActionPrefix != "" {
		// substr, not LIKE: "_" in a prefix such as "review_" is literal.
		args = append(args, len(f.ActionPrefix), f.ActionPrefix)
		where = append(where, "substr(action, 1, $"+strconv.Itoa(len(args)-1)+") = $"+strconv.Itoa(len(args)))
	}
	q := selectAudit(db.dialect)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	rows, err := db.read.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return wrap("read audit log", err)
	}
	return db.eachAuditRow(ctx, db.read.DB, rows, fn)
}

// eachAuditRow scans rows of selectAudit (closing them) and calls fn for
// each; q is where they were queried.
func (db *DB) eachAuditRow(ctx context.Context, q queryer, rows *sql.Rows, fn func(e *workflow.AuditEntry) error) error {
	defer func() { _ = rows.Close() }()
	s := newAuditScanner(db.dialect)
	for rows.Next() {
		e, err := s.scan(ctx, q, rows)
		if err != nil {
			return wrap("read audit log", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return wrap("read audit log", err)
	}
	return nil
}

// ReadAuditChain reads the chain head and then every entry up to it, in Seq
// order, in one read-only transaction: a single snapshot (SQLite WAL read
// transaction; PostgreSQL REPEATABLE READ), so entries appended meanwhile
// are neither seen nor mistaken for a break. e is reused for the next row.
func (db *DB) ReadAuditChain(ctx context.Context, fn func(e *workflow.AuditEntry) error) (headSeq int64, headHash string, err error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == DialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.read.DB.BeginTx(ctx, opts)
	if err != nil {
		return 0, "", wrap("read audit chain: begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&headSeq, &headHash); err != nil {
		if err == sql.ErrNoRows {
			return 0, "", wrap("read audit chain", fmt.Errorf("audit_head row is missing"))
		}
		return 0, "", wrap("read audit chain: head", err)
	}
	// Entries past the head are not part of the snapshot's chain (none can
	// exist in one snapshot unless somebody moved the head back, which the
	// walk reports as the last entry not matching the head).
	rows, err := tx.QueryContext(ctx, selectAudit(db.dialect)+" ORDER BY seq")
	if err != nil {
		return 0, "", wrap("read audit chain", err)
	}
	if err := db.eachAuditRow(ctx, tx, rows, fn); err != nil {
		return 0, "", err
	}
	return headSeq, headHash, nil
}
