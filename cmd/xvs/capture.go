package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// runCapture implements `xvs capture PORT [-w FILE.pcap] [-c N] [-t SECONDS]
// [--dir rx|tx|both] [--lab TOPOLOGY | --ctl SOCKET] [filter...]`: xvsd taps
// the port's frames inside the datapath (bounded, never slowing forwarding)
// and returns them as pcap; with -w they are written to FILE, otherwise
// tcpdump prints them, applying the optional filter.
func runCapture(args []string) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	out := fs.String("w", "", "write the frames to this pcap file")
	count := fs.Int("c", 100, "stop after this many frames (at most 100000)")
	secs := fs.Float64("t", 10, "stop after this many seconds")
	dir := fs.String("dir", "both", "rx, tx or both")
	labName := fs.String("lab", "", "lab whose xvsd to ask (default: the running lab)")
	ctl := fs.String("ctl", "", "xvsd management socket (instead of --lab)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errUsage
	}
	port := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	filter := fs.Args()
	sock := *ctl
	if sock == "" {
		t, err := labTarget(*labName)
		if err != nil {
			return err
		}
		if t == nil {
			return errors.New("no lab is up: give --ctl SOCKET of a running xvsd")
		}
		sock = t.Xvsd.Ctl
	}
	cmd := exec.Command("ovs-appctl", "-t", sock, "--timeout", strconv.Itoa(int(*secs)+30),
		"xvs/capture", port, strconv.Itoa(*count), strconv.FormatFloat(*secs, 'f', -1, 64), *dir)
	cmd.Stderr = os.Stderr
	b64, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("capture on %s: %w", port, err)
	}
	pcap, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
	if err != nil {
		return fmt.Errorf("capture: bad reply from xvsd: %w", err)
	}
	if *out != "" {
		if len(filter) > 0 {
			tmp, err := os.CreateTemp("", "xvs-capture-*.pcap")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if _, err := tmp.Write(pcap); err != nil {
				return err
			}
			tmp.Close()
			return passthrough("tcpdump", append([]string{"-r", tmp.Name(), "-w", *out}, filter...)...)
		}
		return os.WriteFile(*out, pcap, 0o644)
	}
	td := exec.Command("tcpdump", append([]string{"-n", "-e", "-r", "-"}, filter...)...)
	td.Stdin = strings.NewReader(string(pcap))
	td.Stdout, td.Stderr = os.Stdout, os.Stderr
	return td.Run()
}
