package workflow

import (
	"context"
	"errors"
	"fmt"
)

// AuditChain is what verification reads; Store satisfies it.
type AuditChain interface {
	AuditReader
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
}

// VerifyReport is the outcome of walking the audit chain.
type VerifyReport struct {
	Entries   int64  // entries read
	OK        bool   // the chain is intact
	BrokenSeq int64  // first entry that does not verify (0 when OK)
	Problem   string // what is wrong with it, in words
}

func (r VerifyReport) String() string {
	if r.OK {
		return fmt.Sprintf("audit log intact: %d entries verified", r.Entries)
	}
	return fmt.Sprintf("audit log BROKEN at entry %d: %s (%d entries read)", r.BrokenSeq, r.Problem, r.Entries)
}

// errBroken stops the walk at the first broken entry.
var errBroken = errors.New("chain broken")

// VerifyAudit walks the whole chain in constant memory: every entry must
// follow the previous one without a gap, name its hash as PrevHash, and hash
// to its stored Hash; the last entry must match the recorded head. An edited
// row fails at that row, a deleted row at the row after the gap.
func VerifyAudit(ctx context.Context, chain AuditChain) (VerifyReport, error) {
	var rep VerifyReport
	prevSeq, prevHash := int64(0), ""
	fail := func(seq int64, format string, args ...any) error {
		rep.BrokenSeq, rep.Problem = seq, fmt.Sprintf(format, args...)
		return errBroken
	}
	err := chain.AuditEntries(ctx, AuditFilter{}, func(e *AuditEntry) error {
		rep.Entries++
		switch {
		case e.Seq != prevSeq+1:
			return fail(prevSeq+1, "entry %d is missing (the entry after %d is %d)", prevSeq+1, prevSeq, e.Seq)
		case e.PrevHash != prevHash:
			return fail(e.Seq, "its previous-hash does not match entry %d: an entry before it was changed or removed", prevSeq)
		case ComputeHash(e.PrevHash, e) != e.Hash:
			return fail(e.Seq, "its content does not match its hash: the entry was modified")
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
	headSeq, headHash, err := chain.AuditHead(ctx)
	if err != nil {
		return rep, fmt.Errorf("verify audit log: read head: %w", err)
	}
	switch {
	case headSeq > prevSeq:
		fail(prevSeq+1, "entries %d to %d are missing from the end of the log", prevSeq+1, headSeq)
	case headSeq < prevSeq || headHash != prevHash:
		fail(prevSeq, "the last entry does not match the recorded head of the chain (head is %d)", headSeq)
	default:
		rep.OK = true
	}
	return rep, nil
}
