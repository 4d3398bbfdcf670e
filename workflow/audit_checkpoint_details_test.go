package workflow

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"
)

// TestCheckpointDetailsAsBeforeTheyWereBuiltDirectly: a checkpoint_signed
// entry's details, built from the fields, are byte for byte what the
// earlier Marshal, decode, CanonicalDetails round trip stored, so the
// entries of both versions look alike.
func TestCheckpointDetailsAsBeforeTheyWereBuiltDirectly(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{1, 42, 1 << 53, 1<<63 - 1} {
		cp := SignCheckpoint(key, seq, "ab<&>cd", time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.UTC))
		b, err := json.Marshal(cp)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if got, want := cp.details(), CanonicalDetails(m); got != want {
			t.Errorf("seq %d: details %s, want %s", seq, got, want)
		}
	}
}
