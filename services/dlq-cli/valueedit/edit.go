package valueedit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/tidwall/sjson"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// Set applies assignments of the form path=value to a JSON value. path is
// dot-separated (data.quantity, data.items.0.sku); value is taken as JSON
// when it parses as JSON (4, true, null, {"a":1}, "quoted") and as a string
// otherwise (Lisbon). Set fails on a value that is not a JSON object.
func Set(value []byte, assignments []string) ([]byte, error) {
	if !json.Valid(value) || !bytes.HasPrefix(bytes.TrimSpace(value), []byte("{")) {
		return nil, errors.New("the record's value is not a JSON object: use the editor ($EDITOR) instead of --set")
	}
	out := value
	for _, a := range assignments {
		path, raw, ok := strings.Cut(a, "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("--set %q: want path=value, e.g. data.quantity=4", a)
		}
		var err error
		if json.Valid([]byte(raw)) {
			out, err = sjson.SetRawBytes(out, path, []byte(raw))
		} else {
			out, err = sjson.SetBytes(out, path, raw)
		}
		if err != nil {
			return nil, fmt.Errorf("--set %q: %w", a, err)
		}
	}
	return out, nil
}

// Pretty indents a JSON value for reading and editing; other bytes are
// returned unchanged.
func Pretty(value []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, value, "", "  "); err != nil {
		return value
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// Compact removes the insignificant white space an editor session adds, so
// the corrected record is as compact as the services write them. Invalid
// JSON is returned unchanged (validation reports it).
func Compact(value []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, value); err != nil {
		return value
	}
	return buf.Bytes()
}

// Diff returns a unified diff of the two values, pretty-printed, labelled
// with fromName and toName; empty when they are equal.
func Diff(before, after []byte, fromName, toName string) (string, error) {
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(string(Pretty(before))),
		B:        difflib.SplitLines(string(Pretty(after))),
		FromFile: fromName,
		ToFile:   toName,
		Context:  3,
	})
	if err != nil {
		return "", fmt.Errorf("diff: %w", err)
	}
	return d, nil
}

// Editor runs a person's editor on a copy of a value.
type Editor struct {
	// Command is $VISUAL or $EDITOR, e.g. "vim" or "code --wait"; it is
	// split on spaces and the file name is appended.
	Command string
	// Stdin, Stdout and Stderr are the terminal the editor runs on.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// TempDir holds the file; empty means os.TempDir.
	TempDir string
}

// Edit writes value (pretty-printed) to a temporary file, runs the editor
// on it and returns what the person saved.
func (e Editor) Edit(ctx context.Context, value []byte) ([]byte, error) {
	args := strings.Fields(e.Command)
	if len(args) == 0 {
		return nil, errors.New("no editor: set $EDITOR (or $VISUAL), or give the changes with --set path=value")
	}
	f, err := os.CreateTemp(e.TempDir, "dlq-edit-*.json")
	if err != nil {
		return nil, fmt.Errorf("create the file to edit: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	if _, err := f.Write(Pretty(value)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], name)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.Stdin, e.Stdout, e.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("editor %q: %w", e.Command, err)
	}
	edited, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read the edited file: %w", err)
	}
	return edited, nil
}

// Validate decodes value strictly as the event it claims to be (its
// CloudEvents type): the check the consuming service makes, so a corrected
// record that passes here is not dead-lettered again as poison. key is the
// record key, which a redrive keeps: the event's subject must still match
// it (the contract keys records by order id, except ContainerAssignedToOrder,
// keyed by container id), because an edit fixes an order's data, it does not
// move it to another order.
func Validate(value, key []byte) (events.Envelope, error) {
	env, err := events.Decode(value)
	if err == nil {
		err = validateData(env)
	}
	if err != nil {
		return events.Envelope{}, fmt.Errorf("the edited value is not a valid event: %w", err)
	}
	if key != nil && env.Type != events.TypeContainerAssignedToOrder && env.Subject != string(key) {
		return events.Envelope{}, fmt.Errorf("the edited event's subject %q differs from the record key %q: an edit may fix an order's data, not change which order it is", env.Subject, key)
	}
	return env, nil
}

// validateData decodes the event's data strictly as its type's payload
// (events.Decode checks the envelope only).
func validateData(env events.Envelope) error {
	var err error
	switch env.Type {
	case events.TypeOrderCreated:
		_, err = events.DecodeData[events.OrderCreated](env)
	case events.TypeContainerAllocated:
		_, err = events.DecodeData[events.ContainerAllocated](env)
	case events.TypeOrderRejected:
		_, err = events.DecodeData[events.OrderRejected](env)
	case events.TypeContainerAssignedToOrder:
		_, err = events.DecodeData[events.ContainerAssignedToOrder](env)
	default:
		err = fmt.Errorf("event type %q has no payload definition", env.Type)
	}
	return err
}
