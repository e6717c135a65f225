package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	x := fs.String("xvsd", "", "")
	n := fs.Int("hosts", 0, "")
	pos, err := parse(fs, []string{"seed", "--xvsd", "/bin/xvsd", "--hosts=3"})
	if err != nil || !slices.Equal(pos, []string{"seed"}) || *x != "/bin/xvsd" || *n != 3 {
		t.Errorf("parse = %v, %v; xvsd=%q hosts=%d", pos, err, *x, *n)
	}
	if _, err := parse(fs, []string{"seed", "--bogus"}); !errors.Is(err, errUsage) {
		t.Errorf("unknown flag: %v", err)
	}
}

func TestLeadingFlags(t *testing.T) {
	got, rest, err := leadingFlags([]string{"--lab", "seed", "--db=unix:/x", "fdb/show", "--lab", "br-ex"}, "lab", "db")
	if err != nil || got["lab"] != "seed" || got["db"] != "unix:/x" || !slices.Equal(rest, []string{"fdb/show", "--lab", "br-ex"}) {
		t.Errorf("leadingFlags = %v, %v, %v", got, rest, err)
	}
	if _, _, err := leadingFlags([]string{"--lab"}, "lab"); err == nil {
		t.Error("--lab without value accepted")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"lab"}, {"frob"}, {"lab", "up"}, {"lab", "frob", "seed"}, {"show", "extra"}} {
		if err := run(context.Background(), args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	if err := run(context.Background(), []string{"lab", "up", "nope"}); err == nil || errors.Is(err, errUsage) {
		t.Errorf("unknown topology: %v", err)
	}
}
