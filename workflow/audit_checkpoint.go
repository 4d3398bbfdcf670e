package workflow

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// ActionCheckpointSigned records a signed checkpoint of the chain; its
// Details are the Checkpoint as JSON.
const ActionCheckpointSigned Action = "checkpoint_signed"

// Checkpoint is a signed statement that entry Seq of the audit log has hash
// Hash, made at Time (after Certificate Transparency's signed tree heads).
// Kept outside the database — in Slack, a SIEM, a file — it proves later
// that the chain still holds that entry unchanged: a rewrite, a renumbering
// or a truncation of the chain cannot keep it valid without the signing key.
type Checkpoint struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`      // UTC, AuditTimeFormat
	KeyID     string `json:"key_id"`    // KeyID of the signing key
	Signature string `json:"signature"` // base64 ed25519 signature of SignedMessage
}

// SignedMessage is the exact byte string the signature covers.
func (c Checkpoint) SignedMessage() []byte {
	return fmt.Appendf(nil, "accessbot audit checkpoint v1\nseq %d\nhash %s\ntime %s\n", c.Seq, c.Hash, c.Time)
}

// KeyID names a public key in checkpoints: the first 16 hex digits of the
// SHA-256 of the raw key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// SignCheckpoint signs {seq, hash, at} with key.
func SignCheckpoint(key ed25519.PrivateKey, seq int64, hash string, at time.Time) Checkpoint {
	c := Checkpoint{Seq: seq, Hash: hash, Time: at.UTC().Format(AuditTimeFormat),
		KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.SignedMessage()))
	return c
}

// Verify checks c's signature with pub.
func (c Checkpoint) Verify(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("its signature is not a base64 ed25519 signature")
	}
	if !ed25519.Verify(pub, c.SignedMessage(), sig) {
		if c.KeyID != KeyID(pub) {
			return fmt.Errorf("its signature does not verify with the given public key (signed by key %q, the given key is %q)", c.KeyID, KeyID(pub))
		}
		return errors.New("its signature does not verify with the given public key: the checkpoint was forged or altered")
	}
	return nil
}

// VerifyWithAny checks c's signature with the key among keys that its KeyID
// names (the current key and those it replaced), or with the first key when
// none is named.
func (c Checkpoint) VerifyWithAny(keys []ed25519.PublicKey) error {
	if len(keys) == 0 {
		return errors.New("no public key to check its signature with")
	}
	for _, k := range keys {
		if KeyID(k) == c.KeyID {
			return c.Verify(k)
		}
	}
	return c.Verify(keys[0])
}

// JSON renders c as one compact line (no newline).
func (c Checkpoint) JSON() string {
	b, _ := json.Marshal(c) // strings and an integer: cannot fail
	return string(b)
}

// ParseCheckpoint reads a checkpoint as `accessbot audit checkpoint` prints
// it, as posted to the audit channel (the JSON inside the message), or as a
// checkpoint_signed entry of an export or of the SIEM stream (the entry's
// details).
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	start, end := bytes.IndexByte(b, '{'), bytes.LastIndexByte(b, '}')
	if start < 0 || end < start {
		return Checkpoint{}, errors.New("no checkpoint JSON found")
	}
	var c Checkpoint
	b = b[start : end+1]
	for range 3 { // a Splunk event holds an entry, which holds the checkpoint
		var v map[string]json.RawMessage
		if err := json.Unmarshal(b, &v); err != nil {
			return Checkpoint{}, fmt.Errorf("not a checkpoint: %w", err)
		}
		if inner, ok := v["event"]; ok {
			b = inner
			continue
		}
		if inner, ok := v["details"]; ok && v["signature"] == nil {
			// An entry's details: an object, or a string holding one.
			var s string
			if json.Unmarshal(inner, &s) == nil {
				inner = []byte(s)
			}
			b = inner
			continue
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return Checkpoint{}, fmt.Errorf("not a checkpoint: %w", err)
		}
		break
	}
	if c.Seq < 1 || c.Hash == "" || c.Signature == "" {
		return Checkpoint{}, errors.New("not a checkpoint: seq, hash and signature are required")
	}
	return c, nil
}

// CheckpointStore is what the Checkpointer needs from the database.
type CheckpointStore interface {
	// AppendCheckpoint appends the entry build returns, in one transaction
	// that holds the chain head's lock: build gets the head (the newest
	// entry's Seq, Hash and Action; "" when that entry is missing), so the
	// entry it returns is the very next one.
	AppendCheckpoint(ctx context.Context, build func(headSeq int64, headHash string, headAction Action) (*AuditEntry, error)) (*AuditEntry, error)
}

// Checkpointer signs the head of the audit chain with an ed25519 key, stores
// the checkpoint as an audit entry and publishes it outside the database.
type Checkpointer struct {
	Store   CheckpointStore
	Key     ed25519.PrivateKey
	Clock   Clock
	Logger  zerolog.Logger
	Publish func(ctx context.Context, c Checkpoint) error // nil: not published beyond the log and its stream
}

// Sign writes a checkpoint of the current head, unless the newest entry is
// already a checkpoint (nothing new to sign). It returns the checkpoint and
// whether one was written, and publishes it (a publishing error is logged:
// the checkpoint is stored, and the SIEM stream carries it).
func (c *Checkpointer) Sign(ctx context.Context) (Checkpoint, bool, error) {
	clock := c.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	var cp Checkpoint
	e, err := c.Store.AppendCheckpoint(ctx, func(headSeq int64, headHash string, headAction Action) (*AuditEntry, error) {
		if headSeq == 0 || headAction == ActionCheckpointSigned {
			return nil, nil
		}
		now := clock.Now().UTC().Truncate(time.Microsecond)
		cp = SignCheckpoint(c.Key, headSeq, headHash, now)
		return &AuditEntry{Time: now, ActorID: SystemActor, Action: ActionCheckpointSigned, Details: cp.details()}, nil
	})
	if err != nil || e == nil {
		if err != nil {
			err = fmt.Errorf("sign audit checkpoint: %w", err)
		}
		return Checkpoint{}, false, err
	}
	c.Logger.Info().Int64("seq", cp.Seq).Str("hash", cp.Hash).Str("key_id", cp.KeyID).Int64("entry", e.Seq).
		Msg("audit checkpoint signed")
	if c.Publish != nil {
		if err := c.Publish(ctx, cp); err != nil {
			c.Logger.Error().Err(err).Int64("seq", cp.Seq).Msg("audit checkpoint stored but not published")
		}
	}
	return cp, true, nil
}

// details is c as a checkpoint_signed entry's Details: its JSON fields in
// the canonical (sorted, compact) form.
func (c Checkpoint) details() string {
	return CanonicalDetails(map[string]any{"seq": c.Seq, "hash": c.Hash, "time": c.Time, "key_id": c.KeyID,
		"signature": c.Signature})
}

// Run signs a checkpoint every interval until ctx ends. The caller signs
// the last one at shutdown, with a context of its own.
func (c *Checkpointer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, _, err := c.Sign(ctx); err != nil && ctx.Err() == nil {
				c.Logger.Error().Err(err).Msg("audit checkpoint failed; retrying at the next interval")
			}
		}
	}
}
