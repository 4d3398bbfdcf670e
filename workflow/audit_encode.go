package workflow

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// The export encoders below write byte for byte what encoding/csv (Comma
// ',', no CRLF) and encoding/json (an Encoder without HTML escaping, on the
// auditJSON struct) write, without their per-row allocations: an export of
// a million entries spent most of its time there. TestAuditEncodersMatchStdlib
// holds them to that.

// AppendAuditCSV appends e as one CSV record (with its newline) to dst.
func AppendAuditCSV(dst []byte, e *AuditEntry) []byte {
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, ',')
	dst = appendAuditTime(dst, e.Time)
	dst = append(dst, ',')
	dst = appendCSVField(dst, e.ActorID)
	dst = append(dst, ',')
	dst = appendCSVField(dst, e.ActorEmail)
	dst = append(dst, ',')
	dst = appendCSVField(dst, string(e.Action))
	dst = append(dst, ',')
	if e.RequestID != 0 {
		dst = strconv.AppendInt(dst, e.RequestID, 10)
	}
	for _, f := range [...]string{e.RoleID, e.RoleName, e.SubjectID, e.SubjectEmail, e.Details, e.PrevHash, e.Hash} {
		dst = append(dst, ',')
		dst = appendCSVField(dst, f)
	}
	return append(dst, '\n')
}

// appendCSVField is encoding/csv's field rule: quote a field holding a
// comma, quote, CR or LF, starting with a space, or equal to `\.`; double
// the quotes inside.
func appendCSVField(dst []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, s[start:i+1]...)
			dst = append(dst, '"')
			start = i + 1
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s == `\.` {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\r', '"', ',':
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// AppendAuditJSON appends e as one JSON Lines object (without the newline)
// to dst: the fields of an export line, empty optional fields left out, and
// Details as JSON when it is valid JSON (a string otherwise).
func AppendAuditJSON(dst []byte, e *AuditEntry) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = appendAuditTime(dst, e.Time)
	dst = append(dst, `","actor":`...)
	dst = appendJSONString(dst, e.ActorID, false)
	if e.ActorEmail != "" {
		dst = append(dst, `,"actor_email":`...)
		dst = appendJSONString(dst, e.ActorEmail, false)
	}
	dst = append(dst, `,"action":`...)
	dst = appendJSONString(dst, string(e.Action), false)
	if e.RequestID != 0 {
		dst = append(dst, `,"request_id":`...)
		dst = strconv.AppendInt(dst, e.RequestID, 10)
	}
	dst = appendJSONOptional(dst, `,"role_id":`, e.RoleID)
	dst = appendJSONOptional(dst, `,"role_name":`, e.RoleName)
	dst = appendJSONOptional(dst, `,"subject":`, e.SubjectID)
	dst = appendJSONOptional(dst, `,"subject_email":`, e.SubjectEmail)
	dst = append(dst, `,"details":`...)
	dst = appendJSONDetails(dst, e.Details)
	dst = append(dst, `,"prev_hash":`...)
	dst = appendJSONString(dst, e.PrevHash, false)
	dst = append(dst, `,"hash":`...)
	dst = appendJSONString(dst, e.Hash, false)
	return append(dst, '}')
}

// appendJSONOptional appends key and s unless s is empty (omitempty).
func appendJSONOptional(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendJSONString(append(dst, key...), s, false)
}

// appendJSONDetails writes details as a json.RawMessage is written: compact
// when valid JSON; otherwise as a string (json.Marshal, so HTML-escaped).
func appendJSONDetails(dst []byte, details string) []byte {
	start := len(dst)
	dst = append(dst, details...) // the bytes to check, in place, without a copy of their own
	raw := dst[start:]
	valid, compact := validJSON(raw)
	switch {
	case !valid:
		return appendJSONString(dst[:start], details, true)
	case compact: // the stored form always is
		return dst
	}
	var buf bytes.Buffer
	_ = json.Compact(&buf, raw) // valid, so it cannot fail
	return append(dst[:start], buf.Bytes()...)
}

// appendAuditTime appends t.UTC().Format(AuditTimeFormat) to dst, about
// ten times faster than time's general formatter.
func appendAuditTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, AuditTimeFormat)
	}
	hour, minute, sec := t.Clock()
	micro := t.Nanosecond() / 1000
	dst = append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.')
	for d := 100000; d > 0; d /= 10 {
		dst = append(dst, byte('0'+micro/d%10))
	}
	return append(dst, 'Z')
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding.
func appendJSONString(dst []byte, s string, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!escapeHTML || (b != '<' && b != '>' && b != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
