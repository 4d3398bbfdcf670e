package workflow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Action names what an audit entry records.
type Action string

// Audit actions.
const (
	ActionRequestCreated    Action = "request_created"
	ActionApprovalRecorded  Action = "approval_recorded" // one of several required approvals
	ActionRequestApproved   Action = "request_approved"
	ActionRequestDenied     Action = "request_denied"
	ActionRequestCancelled  Action = "request_cancelled"
	ActionRequestExpired    Action = "request_expired"
	ActionExecutionStarted  Action = "execution_started"
	ActionExecutionRetry    Action = "execution_retry_scheduled"
	ActionMembershipAdded   Action = "membership_added"
	ActionMembershipRemoved Action = "membership_removed"
	ActionExecutionFailed   Action = "execution_failed"
	ActionRevokeRequested   Action = "revocation_requested"
	ActionGrantRevoked      Action = "grant_revoked"
	ActionGrantExtended     Action = "grant_extended"
	ActionGrantDone         Action = "grant_ended_by_holder"
	ActionGrantSuperseded   Action = "grant_superseded"
	ActionRevocationOverdue Action = "revocation_overdue"
	ActionOwnerAdded        Action = "owner_added"
	ActionOwnerRemoved      Action = "owner_removed"
	ActionPolicyChanged     Action = "policy_changed"
	ActionAuditExported     Action = "audit_exported"
	ActionDriftDetected     Action = "drift_detected"
)

// SystemActor is the actor of entries no person caused (scheduler, workers).
const SystemActor = "system"

// AuditEntry is one row of the append-only, hash-chained audit log.
type AuditEntry struct {
	Seq          int64     // 1, 2, 3… without gaps; assigned by the store
	Time         time.Time // UTC, microsecond precision
	ActorID      string    // Slack user id, or SystemActor
	ActorEmail   string
	Action       Action
	RequestID    int64 // 0 when not about a request
	RoleID       string
	RoleName     string
	SubjectID    string // Slack user id of whose access changes
	SubjectEmail string
	Details      string // a JSON object, compact, keys sorted
	PrevHash     string // Hash of entry Seq-1; "" for the first
	Hash         string // hex SHA-256 over PrevHash and the canonical entry
}

// AuditTimeFormat is how entry times are written in hashes and exports.
const AuditTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// ComputeHash returns the chain hash of e given the previous entry's hash:
// the hex SHA-256 of prevHash, a newline and the entry's canonical JSON
// (see appendCanonical). It covers every field but PrevHash and Hash
// themselves, so editing any stored column of any row, or deleting a row,
// breaks the chain.
func ComputeHash(prevHash string, e *AuditEntry) string {
	var sum [64]byte
	chainHash(&sum, prevHash, e)
	return string(sum[:])
}

// hashMatches reports whether e's stored Hash is its chain hash, without
// allocating: verification calls it for every entry.
func hashMatches(e *AuditEntry) bool {
	var sum [64]byte
	chainHash(&sum, e.PrevHash, e)
	return string(sum[:]) == e.Hash
}

// hashState is a reusable encoding buffer.
type hashState struct{ buf []byte }

var hashStates = sync.Pool{New: func() any { return &hashState{buf: make([]byte, 0, 1024)} }}

func chainHash(out *[64]byte, prevHash string, e *AuditEntry) {
	st := hashStates.Get().(*hashState)
	st.buf = append(st.buf[:0], prevHash...)
	st.buf = append(st.buf, '\n')
	st.buf = appendCanonical(st.buf, e)
	sum := sha256.Sum256(st.buf)
	hex.Encode(out[:], sum[:])
	if cap(st.buf) <= 64<<10 {
		hashStates.Put(st)
	}
}

// appendCanonical appends the canonical form the hash covers: the JSON
// encoding/json.Marshal gives (HTML-escaped strings) of
//
//	{"seq","time","actor","actor_email","action","request_id","role_id",
//	 "role_name","subject","subject_email","details"}
//
// in that order, with Details as a string. TestCanonicalMatchesMarshal
// holds it to json.Marshal, so existing chains keep verifying.
func appendCanonical(dst []byte, e *AuditEntry) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = appendAuditTime(dst, e.Time)
	dst = append(dst, `","actor":`...)
	dst = appendJSONString(dst, e.ActorID, true)
	dst = append(dst, `,"actor_email":`...)
	dst = appendJSONString(dst, e.ActorEmail, true)
	dst = append(dst, `,"action":`...)
	dst = appendJSONString(dst, string(e.Action), true)
	dst = append(dst, `,"request_id":`...)
	dst = strconv.AppendInt(dst, e.RequestID, 10)
	dst = append(dst, `,"role_id":`...)
	dst = appendJSONString(dst, e.RoleID, true)
	dst = append(dst, `,"role_name":`...)
	dst = appendJSONString(dst, e.RoleName, true)
	dst = append(dst, `,"subject":`...)
	dst = appendJSONString(dst, e.SubjectID, true)
	dst = append(dst, `,"subject_email":`...)
	dst = appendJSONString(dst, e.SubjectEmail, true)
	dst = append(dst, `,"details":`...)
	dst = appendJSONString(dst, e.Details, true)
	return append(dst, '}')
}

// Seal fills Time's precision, PrevHash and Hash of e, the entry after prev
// (nil for the first entry). Stores call it inside the appending transaction.
func Seal(e *AuditEntry, prevSeq int64, prevHash string) {
	e.Seq = prevSeq + 1
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.PrevHash = prevHash
	e.Hash = ComputeHash(prevHash, e)
}

// CanonicalDetails renders details as a compact JSON object with sorted keys
// ("{}" for none), the form stored and hashed.
func CanonicalDetails(details map[string]any) string {
	if len(details) == 0 {
		return "{}"
	}
	// encoding/json sorts map keys, which is what makes this canonical.
	b, err := json.Marshal(details)
	if err != nil {
		return fmt.Sprintf(`{"unencodable_details":%q}`, err.Error())
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// AuditFilter bounds an export. Zero times do not bound.
type AuditFilter struct {
	Since time.Time // entries at or after
	Until time.Time // entries before
	// ActionPrefix keeps the entries whose action starts with it
	// ("review_" gives every review decision).
	ActionPrefix string
}
