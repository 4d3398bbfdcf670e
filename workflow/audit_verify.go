package workflow

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// AuditChain is what verification reads; the store satisfies it.
type AuditChain interface {
	// ReadAuditChain reads the head (the newest entry's Seq and Hash as
	// recorded apart from the entries) and every entry in Seq order, in one
	// consistent snapshot, so entries appended meanwhile are not mistaken
	// for a break. e is reused for the next entry.
	ReadAuditChain(ctx context.Context, fn func(e *AuditEntry) error) (headSeq int64, headHash string, err error)
}

// VerifyOptions anchor verification outside the database.
type VerifyOptions struct {
	// PublicKey, when set, checks every stored checkpoint's signature, and
	// requires at least one.
	PublicKey ed25519.PublicKey
	// OlderKeys are keys that signed earlier checkpoints, before the signing
	// key was rotated. A checkpoint must verify with the key its KeyID
	// names among PublicKey and OlderKeys.
	OlderKeys []ed25519.PublicKey
	// Kept, when set, is a checkpoint kept outside the database: the chain
	// must still hold entry Kept.Seq with hash Kept.Hash.
	Kept *Checkpoint
}

// Keys are the public keys a checkpoint may verify with, the current one
// first; none without PublicKey.
func (o VerifyOptions) Keys() []ed25519.PublicKey {
	if o.PublicKey == nil {
		return nil
	}
	return append([]ed25519.PublicKey{o.PublicKey}, o.OlderKeys...)
}

// VerifyReport is the outcome of walking the audit chain.
type VerifyReport struct {
	Entries     int64  // entries read
	Checkpoints int64  // signed checkpoints found in the chain
	NewestCheck int64  // entry the newest stored checkpoint signs (0: none)
	KeptOK      bool   // the kept checkpoint matched
	Signed      bool   // checkpoint signatures were checked with a public key
	OK          bool   // the chain is intact
	BrokenSeq   int64  // first entry that does not verify (0 when OK)
	Problem     string // what is wrong with it, in words
}

func (r VerifyReport) String() string {
	if !r.OK {
		return fmt.Sprintf("audit log BROKEN at entry %d: %s (%d entries read)", r.BrokenSeq, r.Problem, r.Entries)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "audit log intact: %d entries verified", r.Entries)
	if r.Signed {
		noun := "checkpoints"
		if r.Checkpoints == 1 {
			noun = "checkpoint"
		}
		fmt.Fprintf(&b, "; %d signed %s verified with the public key (the newest signs entry %d", r.Checkpoints, noun, r.NewestCheck)
		if after := r.Entries - r.NewestCheck - 1; after > 0 {
			fmt.Fprintf(&b, "; %d newer entries are not signed yet", after)
		}
		b.WriteString(")")
	}
	if r.KeptOK {
		b.WriteString("; the kept checkpoint matches")
	}
	return b.String()
}

// errBroken stops the walk at the first broken entry.
var errBroken = errors.New("chain broken")

// VerifyAudit walks the whole chain with no outside anchor; see
// VerifyAuditWith.
func VerifyAudit(ctx context.Context, chain AuditChain) (VerifyReport, error) {
	return VerifyAuditWith(ctx, chain, VerifyOptions{})
}

// VerifyAuditWith walks the whole chain in constant memory: every entry must
// follow the previous one without a gap, name its hash as PrevHash, and hash
// to its stored Hash; the last entry must match the recorded head. An edited
// row fails at that row, a deleted row at the row after the gap. Every
// checkpoint_signed entry must sign the entry just before it; with
// o.PublicKey its signature must verify, so a chain rewritten and rehashed
// by someone without the key fails at the first checkpoint after the
// change. With o.Kept the chain must still hold that entry and hash, so a
// truncation (even with the head moved back) fails too.
func VerifyAuditWith(ctx context.Context, chain AuditChain, o VerifyOptions) (VerifyReport, error) {
	rep := VerifyReport{Signed: o.PublicKey != nil}
	keys := o.Keys()
	prevSeq, prevHash := int64(0), ""
	fail := func(seq int64, format string, args ...any) error {
		rep.BrokenSeq, rep.Problem = seq, fmt.Sprintf(format, args...)
		return errBroken
	}
	var headSeq int64
	var headHash string
	// Rows are read on this goroutine and checked on another (pipeline).
	err := pipeline(func(fn func(e *AuditEntry) error) error {
		var err error
		headSeq, headHash, err = chain.ReadAuditChain(ctx, fn)
		return err
	}, func(e *AuditEntry) error {
		rep.Entries++
		switch {
		case e.Seq != prevSeq+1:
			return fail(prevSeq+1, "entry %d is missing (the entry after %d is %d)", prevSeq+1, prevSeq, e.Seq)
		case e.PrevHash != prevHash:
			return fail(e.Seq, "its previous-hash does not match entry %d: an entry before it was changed or removed", prevSeq)
		case !hashMatches(e):
			return fail(e.Seq, "its content does not match its hash: the entry was modified")
		}
		if o.Kept != nil && e.Seq == o.Kept.Seq && e.Hash != o.Kept.Hash {
			return fail(e.Seq, "its hash differs from the kept checkpoint's (%s…): the chain was rewritten", short(o.Kept.Hash))
		}
		if e.Action == ActionCheckpointSigned {
			var cp Checkpoint
			if err := json.Unmarshal([]byte(e.Details), &cp); err != nil {
				return fail(e.Seq, "it is a checkpoint whose details cannot be read: %v", err)
			}
			if cp.Seq != e.Seq-1 || cp.Hash != e.PrevHash {
				return fail(e.Seq, "it is a checkpoint of entry %d (%s…), not of the entry before it", cp.Seq, short(cp.Hash))
			}
			if o.PublicKey != nil {
				if err := cp.VerifyWithAny(keys); err != nil {
					return fail(e.Seq, "it is a checkpoint of entry %d, but %v", cp.Seq, err)
				}
			}
			rep.Checkpoints++
			rep.NewestCheck = cp.Seq
		}
		prevSeq, prevHash = e.Seq, e.Hash
		return nil
	})
	if err != nil && !errors.Is(err, errBroken) {
		return rep, fmt.Errorf("verify audit log: %w", err)
	}
	if rep.Problem != "" {
		return rep, nil
	}
	switch {
	case headSeq > prevSeq:
		fail(prevSeq+1, "entries %d to %d are missing from the end of the log", prevSeq+1, headSeq)
	case headSeq < prevSeq || headHash != prevHash:
		fail(prevSeq, "the last entry does not match the recorded head of the chain (head is %d)", headSeq)
	case o.Kept != nil && o.Kept.Seq > prevSeq:
		fail(prevSeq+1, "the log ends at entry %d but the kept checkpoint signs entry %d: entries were removed from the end", prevSeq, o.Kept.Seq)
	case o.PublicKey != nil && rep.Checkpoints == 0:
		fail(prevSeq, "no signed checkpoint in the log: none was written yet, or they were removed")
	default:
		rep.OK = true
		rep.KeptOK = o.Kept != nil
	}
	return rep, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
