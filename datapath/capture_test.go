package datapath

import (
	"bytes"
	"testing"
	"time"
)

func TestCaptureIsBoundedAndSeesBothDirections(t *testing.T) {
	tb := newTestBridge(t, "br0")
	tb.addPort("br0", port("p1", -1, ""))
	tb.addPort("br0", port("p2", 10, ""))
	f := buildFrame(frameSpec{src: mac(1), dst: bcast, vid: -1})
	done := make(chan struct{})
	var frames []CapturedFrame
	var missed uint64
	go func() {
		defer close(done)
		var err error
		frames, missed, err = tb.dp.Capture(CaptureConfig{Iface: "p1", Max: 4, Timeout: 5 * time.Second})
		if err != nil {
			t.Error(err)
		}
	}()
	// Wait for the tap, then push traffic both ways.
	deadline := time.Now().Add(2 * time.Second)
	no := tb.dp.findIface("p1").dpPort
	for time.Now().Before(deadline) && tb.dp.snap.Load().ports[no].tap.Load() == nil {
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		tb.send("p1", f)
		tb.send("p2", buildFrame(frameSpec{src: mac(2), dst: bcast, vid: -1}))
	}
	<-done
	tb.sent()
	if len(frames) != 4 {
		t.Fatalf("captured %d frames, want 4 (bounded)", len(frames))
	}
	var rx, tx int
	for _, c := range frames {
		if c.Sent {
			tx++
		} else {
			rx++
			if !bytes.Equal(c.Data, f) {
				t.Fatalf("received frame altered in capture")
			}
		}
	}
	if rx == 0 || tx == 0 {
		t.Fatalf("rx %d tx %d: want both directions", rx, tx)
	}
	_ = missed
	// The tap is gone: a new capture may start.
	if _, _, err := tb.dp.Capture(CaptureConfig{Iface: "p1", Timeout: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
}
