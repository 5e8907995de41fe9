package events_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// FuzzDecode checks that the decoder never panics, that everything it
// rejects is a typed permanent error, and that everything it accepts
// re-encodes (no larger than the input) to bytes that decode to the same
// envelope and re-encode identically. The seed corpus in
// testdata/fuzz/FuzzDecode holds valid events of every type and each kind of
// bad input; plain `go test` runs it.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(validOrderCreated))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := events.Decode(b)
		if err != nil {
			checkTypedPermanent(t, err)
			return
		}
		if _, _, err := events.DecodeOrderCreated(b); err != nil {
			checkTypedPermanent(t, err)
		}
		enc, err := events.Encode(env)
		if err != nil {
			t.Fatalf("Encode of an accepted event failed: %v\ninput: %q", err, b)
		}
		if len(enc) > len(b) {
			t.Errorf("re-encoding grew the event from %d to %d bytes:\ninput:   %q\nencoded: %q", len(b), len(enc), b, enc)
		}
		again, err := events.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(env)) failed: %v\nencoded: %q", err, enc)
		}
		if diff := cmp.Diff(env, again); diff != "" {
			t.Fatalf("round trip changed the envelope (-first +second):\n%s", diff)
		}
		enc2, err := events.Encode(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("second encoding differs (%v):\n%q\n%q", err, enc, enc2)
		}
	})
}

func checkTypedPermanent(t *testing.T, err error) {
	t.Helper()
	if !failure.IsPermanent(err) {
		t.Fatalf("error is not permanent: %v", err)
	}
	if de, ok := errors.AsType[*events.DecodeError](err); !ok || de.Kind == "" || de.Problem == "" {
		t.Fatalf("error does not wrap a complete *DecodeError: %v", err)
	}
}

// TestSeedCorpusIsLabelledCorrectly keeps the committed corpus honest: every
// "valid-" seed decodes with its data, every "bad-" seed is rejected.
func TestSeedCorpusIsLabelledCorrectly(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus found: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			b := readSeed(t, file)
			err := decodeAll(b)
			switch {
			case strings.HasPrefix(name, "valid-") && err != nil:
				t.Errorf("valid seed rejected: %v", err)
			case strings.HasPrefix(name, "bad-") && err == nil:
				t.Error("bad seed accepted")
			case !strings.HasPrefix(name, "valid-") && !strings.HasPrefix(name, "bad-"):
				t.Error(`seed name must start with "valid-" or "bad-"`)
			}
		})
	}
}

// decodeAll decodes the envelope and then its data by type.
func decodeAll(b []byte) error {
	env, err := events.Decode(b)
	if err != nil {
		return err
	}
	switch env.Type {
	case events.TypeOrderCreated:
		_, err = events.DecodeData[events.OrderCreated](env)
	case events.TypeContainerAllocated:
		_, err = events.DecodeData[events.ContainerAllocated](env)
	case events.TypeOrderRejected:
		_, err = events.DecodeData[events.OrderRejected](env)
	case events.TypeContainerAssignedToOrder:
		_, err = events.DecodeData[events.ContainerAssignedToOrder](env)
	}
	return err
}

// readSeed reads a file in the "go test fuzz v1" format holding one []byte.
func readSeed(t *testing.T, file string) []byte {
	t.Helper()
	b, err := events.ReadFuzzSeed(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
