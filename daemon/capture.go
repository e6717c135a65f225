package daemon

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"xvs/datapath"
)

// cmdCapture implements `xvs/capture IFACE [COUNT] [SECONDS] [rx|tx|both]`:
// it taps the interface's frames in the datapath (bounded; forwarding is
// never slowed down by a full tap) and replies with a pcap file, base64
// encoded, which `xvs capture` writes out or hands to tcpdump.
func (d *Daemon) cmdCapture(a []string) (string, error) {
	cfg := datapath.CaptureConfig{Iface: a[0], Max: 100, Timeout: 10 * time.Second}
	if len(a) > 1 {
		n, err := strconv.Atoi(a[1])
		if err != nil || n <= 0 {
			return "", fmt.Errorf("bad frame count %q", a[1])
		}
		cfg.Max = n
	}
	if len(a) > 2 {
		s, err := strconv.ParseFloat(a[2], 64)
		if err != nil || s <= 0 || s > 600 {
			return "", fmt.Errorf("bad duration %q (seconds, at most 600)", a[2])
		}
		cfg.Timeout = time.Duration(s * float64(time.Second))
	}
	if len(a) > 3 {
		switch a[3] {
		case "rx":
			cfg.RX = true
		case "tx":
			cfg.TX = true
		case "both":
		default:
			return "", fmt.Errorf("bad direction %q (rx, tx or both)", a[3])
		}
	}
	frames, missed, err := d.dp.Capture(cfg)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return "", err
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(f.Data), Length: f.Len}
		if err := w.WritePacket(ci, f.Data); err != nil {
			return "", err
		}
	}
	if missed > 0 {
		d.log.Info("capture", "iface", a[0], "frames", len(frames), "missed", missed)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
