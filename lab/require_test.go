package lab

import (
	"fmt"
	"testing"
)

// fakeTB records how a test was stopped.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func TestUnavailable(t *testing.T) {
	t.Setenv("CI", "")
	var f fakeTB
	Unavailable(&f, "no frobnicator")
	if !f.skipped || f.failed {
		t.Fatalf("without CI: skipped=%v failed=%v", f.skipped, f.failed)
	}
	t.Setenv("CI", "true")
	f = fakeTB{}
	Unavailable(&f, "no frobnicator")
	if f.skipped || !f.failed {
		t.Fatalf("with CI=true: skipped=%v failed=%v (%s)", f.skipped, f.failed, f.msg)
	}
	if ok, reason := Available(); ok != (reason == "") {
		t.Fatalf("Available() = %v, %q", ok, reason)
	}
}
