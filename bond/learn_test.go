package bond

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestLearningPacket(t *testing.T) {
	mac := [6]byte{0x50, 0x54, 0x00, 0x00, 0x00, 0x07}
	want := "ffffffffffff" + "505400000007" + "8035" +
		"0001" + "0800" + "06" + "04" + "0003" +
		"505400000007" + "00000000" + "505400000007" + "00000000"
	buf := make([]byte, 64)
	n := LearningPacket(buf, mac, 0)
	if got := hex.EncodeToString(buf[:n]); got != want {
		t.Errorf("untagged RARP\n got %s\nwant %s", got, want)
	}
	wantTagged := "ffffffffffff" + "505400000007" + "8100" + "000a" + want[24:]
	n = LearningPacket(buf, mac, 10)
	if got := hex.EncodeToString(buf[:n]); got != wantTagged || n != LearningPacketLenTagged {
		t.Errorf("tagged RARP\n got %s\nwant %s", got, wantTagged)
	}
	if LearningPacket(buf[:45], mac, 10) != 0 || LearningPacket(buf[:41], mac, 0) != 0 {
		t.Error("short buffer accepted")
	}
	if n := testing.AllocsPerRun(100, func() { LearningPacket(buf, mac, 10) }); n != 0 {
		t.Errorf("LearningPacket allocates %v", n)
	}
}

func TestAnnouncerSpreads(t *testing.T) {
	const macs, perTick = 8192, 256
	entries := make([]Learned, macs)
	for i := range entries {
		entries[i] = Learned{MAC: macN(i), VLAN: uint16(i % 3)}
	}
	a := NewAnnouncer(perTick, macs)
	a.Start(entries)
	entries[0].MAC = [6]byte{} // Start copied
	batch := make([]Learned, 1024)
	var got []Learned
	ticks := 0
	for a.Pending() > 0 {
		n := a.Next(batch)
		if n > perTick {
			t.Fatalf("tick %d released %d entries, max %d", ticks, n, perTick)
		}
		got = append(got, batch[:n]...)
		ticks++
	}
	if ticks != macs/perTick || len(got) != macs {
		t.Fatalf("%d ticks, %d entries", ticks, len(got))
	}
	for i, e := range got {
		if e.MAC != macN(i) || e.VLAN != uint16(i%3) {
			t.Fatalf("entry %d = %v", i, e)
		}
	}
	if a.Next(batch) != 0 {
		t.Error("Next after drain returned entries")
	}
	// A new failover replaces pending work; overflow is counted.
	small := NewAnnouncer(4, 10)
	small.Start(make([]Learned, 12))
	small.Next(batch)
	small.Start(make([]Learned, 3))
	if small.Pending() != 3 || small.Dropped() != 2 {
		t.Errorf("pending %d dropped %d", small.Pending(), small.Dropped())
	}
	a.Start(entries)
	if n := testing.AllocsPerRun(10, func() { a.Next(batch[:8]) }); n != 0 {
		t.Errorf("Next allocates %v", n)
	}
}

// A learning packet goes out on the member Select picks for its MAC.
func TestLearningAfterFailover(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2"))
	b.Run(t0)
	b.SetCarrier(1, false, at(1))
	ev := b.Run(at(1))
	if !ev.SendLearning {
		t.Fatal("no learning request after failover")
	}
	buf := make([]byte, 64)
	for i := 0; i < 50; i++ {
		mac := macN(i)
		m, _, ok := b.Select(mac, 5)
		n := LearningPacket(buf, mac, 5)
		if !ok || m != 2 || n == 0 || !bytes.Equal(buf[6:12], mac[:]) {
			t.Fatalf("MAC %d: member %d ok %v", i, m, ok)
		}
	}
}
