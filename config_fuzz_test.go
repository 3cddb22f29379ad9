package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParseConfig feeds parseConfig arbitrary text. It must never panic; every
// error must be a *configError that points somewhere (a line inside the text,
// or a key); and what it accepts must hold up: validation passes again without
// change, and each recipient reads back as itself.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(exampleConfig))
	f.Add([]byte(baseConfig))
	seeds, err := filepath.Glob(filepath.Join("testdata", "config", "*.toml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig("fuzz.toml", data)
		if err != nil {
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("error is a %T, not a *configError: %v", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			if ce.File != "fuzz.toml" || ce.Line == 0 && ce.Key == "" || ce.Line < 0 || ce.Line > lines || (ce.Line > 0) != (ce.Col > 0) {
				t.Fatalf("error points nowhere useful (file %q, line %d of %d, col %d, key %q): %v",
					ce.File, ce.Line, lines, ce.Col, ce.Key, err)
			}
			return
		}
		again := *cfg
		if err := again.validate("fuzz.toml", nil); err != nil {
			t.Fatalf("accepted config fails validation again: %v\n%+v", err, cfg)
		}
		if !reflect.DeepEqual(&again, cfg) {
			t.Fatalf("validating again changed the config:\n%+v\n%+v", cfg, &again)
		}
		lists := [][]recipient{cfg.Mattermost.Recipients}
		for role, list := range cfg.RoleToRecipients {
			if len(list) == 0 {
				t.Fatalf("role %q has an empty list", role)
			}
			lists = append(lists, list)
		}
		for _, list := range lists {
			for _, r := range list {
				if back, err := parseRecipient(r.String()); err != nil || back != r {
					t.Fatalf("recipient %#v reads back as %#v, %v", r, back, err)
				}
			}
		}
		if c := cfg.Mattermost.Concurrency; c < 1 || c > 256 {
			t.Fatalf("concurrency %d accepted", c)
		}
	})
}
