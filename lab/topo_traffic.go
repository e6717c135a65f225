package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// PingResult is the summary line of ping(8).
type PingResult struct {
	Sent, Received int
	Loss           float64 // percent
	RTTMin, RTTAvg float64 // milliseconds (0 without replies)
	RTTMax         float64
}

var (
	pingCount = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingLoss  = regexp.MustCompile(`([\d.]+)% packet loss`)
	pingRTT   = regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/`)
)

// Ping sends count echo requests (200 ms apart) from ns to dst and parses
// the summary. Losing every packet is not an error (Received is 0); an
// error means ping itself could not run.
func Ping(ctx context.Context, ns *NS, dst string, count int) (PingResult, error) {
	out, err := ns.Command(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", dst).CombinedOutput()
	r, ok := parsePing(string(out))
	if !ok {
		return r, fmt.Errorf("lab: ping %s from %s: %v: %s", dst, ns, err, strings.TrimSpace(string(out)))
	}
	return r, nil
}

// parsePing reads the summary lines of `ping -q`.
func parsePing(out string) (r PingResult, ok bool) {
	m := pingCount.FindStringSubmatch(out)
	if m == nil {
		return r, false
	}
	r.Sent, _ = strconv.Atoi(m[1])
	r.Received, _ = strconv.Atoi(m[2])
	if m := pingLoss.FindStringSubmatch(out); m != nil {
		r.Loss, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := pingRTT.FindStringSubmatch(out); m != nil {
		r.RTTMin, _ = strconv.ParseFloat(m[1], 64)
		r.RTTAvg, _ = strconv.ParseFloat(m[2], 64)
		r.RTTMax, _ = strconv.ParseFloat(m[3], 64)
	}
	return r, true
}

// IperfResult is what an iperf3 run measured, seen by the receiver.
type IperfResult struct {
	Seconds     float64
	BitsPerSec  float64 // TCP: received goodput
	Packets     int64   // UDP: datagrams sent
	Lost        int64   // UDP: datagrams sent but not received
	SentPPS     float64 // UDP: datagrams sent per second
	ReceivedPPS float64 // UDP: datagrams received per second of the test
}

// LossPercent returns the UDP loss in percent.
func (r IperfResult) LossPercent() float64 {
	if r.Packets == 0 {
		return 0
	}
	return 100 * float64(r.Lost) / float64(r.Packets)
}

// iperfPort is the port iperf3 servers of traffic tests listen on.
const iperfPort = 5201

// Iperf runs an iperf3 server on dst (bound to dstIP, exiting after one
// test) and a client in src for d. With udp it sends 64-byte frames (18
// bytes of UDP payload) as fast as it can; otherwise one TCP stream.
func Iperf(ctx context.Context, src, dst *NS, dstIP string, d time.Duration, udp bool) (IperfResult, error) {
	var r IperfResult
	srv := dst.Command(ctx, "iperf3", "-s", "-1", "-B", dstIP, "-p", strconv.Itoa(iperfPort))
	if err := srv.Start(); err != nil {
		return r, fmt.Errorf("lab: iperf3 server in %s: %w", dst, err)
	}
	defer func() {
		_ = srv.Process.Kill() // it exits by itself after one test
		_ = srv.Wait()
	}()
	secs := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	args := []string{"-c", dstIP, "-p", strconv.Itoa(iperfPort), "-t", secs, "-J", "--connect-timeout", "2000"}
	if udp {
		args = append(args, "-u", "-l", "18", "-b", "0")
	}
	var (
		out []byte
		err error
	)
	// The server needs a moment to listen; retry refused connections.
	// (iperf3 3.12 with -J exits 0 on "Connection refused": look at the
	// output, not the exit status.)
	// A client whose server vanished can wait forever: bound each run.
	cctx, cancel := context.WithTimeout(ctx, d+20*time.Second)
	defer cancel()
	for try := 0; try < 30; try++ {
		out, err = src.Command(cctx, "iperf3", args...).Output()
		if !strings.Contains(string(out), "Connection refused") || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if perr := parseIperf(out, udp, &r); perr != nil {
		return r, fmt.Errorf("lab: iperf3 %s -> %s (%v): %w", src, dstIP, err, perr)
	}
	return r, nil
}

// parseIperf reads the JSON report (-J) of an iperf3 client into r.
func parseIperf(out []byte, udp bool, r *IperfResult) error {
	var j struct {
		Error string `json:"error"`
		End   struct {
			Sum         iperfSum `json:"sum"`          // UDP
			SumSent     iperfSum `json:"sum_sent"`     // TCP; UDP in 3.12+
			SumReceived iperfSum `json:"sum_received"` // TCP; UDP in 3.12+
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	if j.Error != "" {
		return errors.New(j.Error)
	}
	if !udp {
		s := j.End.SumReceived
		r.Seconds, r.BitsPerSec = s.Seconds, s.BitsPerSecond
		return nil
	}
	// 3.12 reports the sender's count in sum_sent and the receiver's view
	// (highest sequence number seen, and gaps) in sum_received; older
	// versions only have sum.
	sent, recv := j.End.SumSent, j.End.SumReceived
	if sent.Packets == 0 {
		sent, recv = j.End.Sum, j.End.Sum
	}
	r.Seconds, r.Packets, r.BitsPerSec = sent.Seconds, sent.Packets, sent.BitsPerSecond
	received := max(recv.Packets-recv.LostPackets, 0)
	r.Lost = max(r.Packets-received, 0)
	if r.Seconds > 0 {
		r.SentPPS = float64(r.Packets) / r.Seconds
		r.ReceivedPPS = float64(received) / r.Seconds
	}
	return nil
}

type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Packets       int64   `json:"packets"`
	LostPackets   int64   `json:"lost_packets"`
}

// TrafficOptions bounds a traffic test; zero values pick the defaults.
type TrafficOptions struct {
	Pings    int           // echo requests per path (default 5)
	Duration time.Duration // per iperf3 run (default 3 s)
	NoIperf  bool          // ping only
	IperfUDP bool          // UDP with iperf3 -u -l 18 -b 0 instead of UDPFlood
	Log      io.Writer     // progress lines, if set
}

// PathResult is the outcome of one Path.
type PathResult struct {
	Path Path
	OK   bool // reachable (or, for an Isolated path, not reachable)
	Ping PingResult
	TCP  *IperfResult
	UDP  *IperfResult
	Errs []error
}

// Traffic runs every path of t: a ping, then (unless NoIperf) iperf3 TCP
// and the 64-byte UDP flood (UDPFlood, or iperf3 with IperfUDP) where the
// path asks for them. The returned
// error is non-nil when any path's connectivity check failed.
func (t *Topo) Traffic(ctx context.Context, o TrafficOptions) ([]PathResult, error) {
	if o.Pings <= 0 {
		o.Pings = 5
	}
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	var (
		res    []PathResult
		failed []string
	)
	for _, p := range t.Paths {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		pr := PathResult{Path: p}
		src, err1 := t.HostNS(p.From)
		dst, err2 := t.HostNS(p.To)
		to := t.Host(p.To)
		if err := errors.Join(err1, err2); err != nil {
			pr.Errs = append(pr.Errs, err)
			res, failed = append(res, pr), append(failed, p.Name)
			continue
		}
		logf("--- %s: ping %s", p.Name, to.IP())
		if !p.Isolated {
			// Warm up: address resolution and flow set-up are not what
			// the summary should measure.
			_, _ = Ping(ctx, src, to.IP(), 1)
		}
		pr.Ping, err1 = Ping(ctx, src, to.IP(), o.Pings)
		if err1 != nil {
			pr.Errs = append(pr.Errs, err1)
		}
		if p.Isolated {
			pr.OK = err1 == nil && pr.Ping.Received == 0
		} else {
			pr.OK = pr.Ping.Received > 0
		}
		if pr.OK && !p.Isolated && !o.NoIperf {
			if p.TCP {
				logf("--- %s: iperf3 TCP %v", p.Name, o.Duration)
				r, err := Iperf(ctx, src, dst, to.IP(), o.Duration, false)
				if err != nil {
					pr.Errs, pr.OK = append(pr.Errs, err), false
				} else {
					pr.TCP = &r
				}
			}
			if p.UDP {
				var (
					r   IperfResult
					err error
				)
				if o.IperfUDP {
					logf("--- %s: iperf3 UDP, 64-byte frames, %v", p.Name, o.Duration)
					r, err = Iperf(ctx, src, dst, to.IP(), o.Duration, true)
				} else {
					logf("--- %s: UDP flood, 64-byte frames, %v", p.Name, o.Duration)
					r, err = UDPFlood(ctx, src, dst, to.IP(), o.Duration)
				}
				if err != nil {
					pr.Errs = append(pr.Errs, err) // reported, not a connectivity failure
				} else {
					pr.UDP = &r
				}
			}
		}
		if !pr.OK {
			failed = append(failed, p.Name)
		}
		res = append(res, pr)
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("lab: connectivity failed: %s", strings.Join(failed, "; "))
	}
	return res, nil
}

// WriteSummary prints results as a table.
func WriteSummary(w io.Writer, res []PathResult) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tRESULT\tPING rx/tx\tRTT avg\tTCP\tUDP 64B sent\tUDP 64B recv\tUDP loss")
	for _, r := range res {
		verdict := "ok"
		switch {
		case !r.OK && r.Path.Isolated:
			verdict = "LEAK"
		case !r.OK:
			verdict = "FAIL"
		case r.Path.Isolated:
			verdict = "isolated"
		}
		rtt := "-"
		if r.Ping.Received > 0 {
			rtt = fmt.Sprintf("%.3f ms", r.Ping.RTTAvg)
		}
		tcp, sent, recv, loss := "-", "-", "-", "-"
		if r.TCP != nil {
			tcp = fmt.Sprintf("%.2f Gbit/s", r.TCP.BitsPerSec/1e9)
		}
		if r.UDP != nil {
			sent = fmt.Sprintf("%.3f Mpps", r.UDP.SentPPS/1e6)
			recv = fmt.Sprintf("%.3f Mpps", r.UDP.ReceivedPPS/1e6)
			loss = fmt.Sprintf("%.1f%%", r.UDP.LossPercent())
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\n", r.Path.Name, verdict,
			r.Ping.Received, r.Ping.Sent, rtt, tcp, sent, recv, loss)
	}
	tw.Flush()
	for _, r := range res {
		for _, err := range r.Errs {
			fmt.Fprintf(w, "  %s: %v\n", r.Path.Name, err)
		}
	}
}

// IfaceStats is the statistics column of one Interface row.
type IfaceStats struct {
	Name  string
	Stats map[string]uint64 // rx_packets, rx_dropped, tx_packets, tx_dropped...
}

// InterfaceStats reads the statistics column of every Interface through
// ovs-vsctl, sorted by name.
func (t *Topo) InterfaceStats() ([]IfaceStats, error) {
	out, err := t.Xvsd.Vsctl("--format=csv", "--no-headings", "--columns=name,statistics", "list", "Interface")
	if err != nil {
		return nil, err
	}
	return parseIfaceStats(out), nil
}

// parseIfaceStats reads `--format=csv --columns=name,statistics` output:
// lines like  h1,"{rx_bytes=3, rx_dropped=0}"  or  h2,{}.
func parseIfaceStats(out string) []IfaceStats {
	var res []IfaceStats
	for _, line := range strings.Split(out, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ",")
		if !ok {
			continue
		}
		s := IfaceStats{Name: strings.Trim(name, `"`), Stats: map[string]uint64{}}
		rest = strings.Trim(rest, `"{}`)
		for _, kv := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				continue
			}
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				s.Stats[k] = n
			}
		}
		res = append(res, s)
	}
	slices.SortFunc(res, func(a, b IfaceStats) int { return strings.Compare(a.Name, b.Name) })
	return res
}

// WriteIfaceStats prints packet and drop counters per interface.
func WriteIfaceStats(w io.Writer, stats []IfaceStats) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "INTERFACE\trx_packets\trx_dropped\ttx_packets\ttx_dropped\t")
	for _, s := range stats {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", s.Name, s.Stats["rx_packets"], s.Stats["rx_dropped"], s.Stats["tx_packets"], s.Stats["tx_dropped"])
	}
	tw.Flush()
}
