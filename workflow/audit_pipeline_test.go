package workflow

import (
	"errors"
	"testing"
)

func TestPipeline(t *testing.T) {
	produce := func(n int, failAt int64) func(fn func(e *AuditEntry) error) error {
		return func(fn func(e *AuditEntry) error) error {
			var e AuditEntry // reused, as the store does
			for i := 1; i <= n; i++ {
				e.Seq = int64(i)
				if e.Seq == failAt {
					return errors.New("read failed")
				}
				if err := fn(&e); err != nil {
					return err
				}
			}
			return nil
		}
	}
	// Everything arrives once, in order, across many batches.
	var got []int64
	if err := pipeline(produce(3*pipelineBatch+7, 0), func(e *AuditEntry) error {
		got = append(got, e.Seq)
		return nil
	}); err != nil || len(got) != 3*pipelineBatch+7 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("entry %d at position %d", s, i)
		}
	}
	// The consumer's error stops the producer and is returned.
	stop := errors.New("broken")
	n := 0
	err := pipeline(produce(100*pipelineBatch, 0), func(e *AuditEntry) error {
		n++
		if e.Seq == 300 {
			return stop
		}
		return nil
	})
	if err != stop || n != 300 {
		t.Fatalf("consumer error: %v after %d", err, n)
	}
	// The producer's error is returned after what was read is consumed.
	n = 0
	err = pipeline(produce(1000, 600), func(*AuditEntry) error { n++; return nil })
	if err == nil || err.Error() != "read failed" || n > 599 {
		t.Fatalf("producer error: %v after %d", err, n)
	}
}
