package workflow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

// canonicalEntry fixes the field order and spelling the hash covers.
type canonicalEntry struct {
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
}

// AuditTimeFormat is how entry times are written in hashes and exports.
const AuditTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// ComputeHash returns the chain hash of e given the previous entry's hash.
// It covers every field but PrevHash and Hash themselves, so editing any
// stored column of any row, or deleting a row, breaks the chain.
func ComputeHash(prevHash string, e *AuditEntry) string {
	c := canonicalEntry{
		Seq:          e.Seq,
		Time:         e.Time.UTC().Format(AuditTimeFormat),
		ActorID:      e.ActorID,
		ActorEmail:   e.ActorEmail,
		Action:       string(e.Action),
		RequestID:    e.RequestID,
		RoleID:       e.RoleID,
		RoleName:     e.RoleName,
		SubjectID:    e.SubjectID,
		SubjectEmail: e.SubjectEmail,
		Details:      e.Details,
	}
	b, err := json.Marshal(c)
	if err != nil {
		// Only strings and integers: Marshal cannot fail.
		panic(fmt.Sprintf("audit: marshal canonical entry: %v", err))
	}
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
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
