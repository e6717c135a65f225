package datapath

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// The VLAN truth table captured from real Open vSwitch 3.1 (see
// testdata/README-vlan.md and bench/scripts/capture-ovs-vlan.py): for every
// port configuration and input frame kind, what NORMAL emits on each port.

type ovsVLANPort struct {
	Name        string            `json:"name"`
	Tag         *int              `json:"tag"`
	Trunks      []uint16          `json:"trunks"`
	VLANMode    string            `json:"vlan_mode"`
	Local       bool              `json:"local"`
	OtherConfig map[string]string `json:"other_config"`
}

type ovsVLANOut struct {
	Port string `json:"port"`
	VID  *int   `json:"vid"`
	PCP  int    `json:"pcp"`
}

type ovsVLANCase struct {
	InPort  string       `json:"in_port"`
	InVID   *int         `json:"in_vid"`
	InPCP   int          `json:"in_pcp"`
	Outputs []ovsVLANOut `json:"outputs"`
	Drop    string       `json:"drop_reason"`
}

func TestVLANTruthTableOVS31(t *testing.T) {
	data, err := os.ReadFile("testdata/ovs-vlan-truth.json")
	if err != nil {
		t.Fatal(err)
	}
	var tt struct {
		Ports []ovsVLANPort `json:"ports"`
		Cases []ovsVLANCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &tt); err != nil {
		t.Fatal(err)
	}
	tb := newTestBridge(t, "br0")
	for _, p := range tt.Ports {
		pc := PortConfig{Name: p.Name, Tag: -1, Trunks: p.Trunks, Interfaces: []InterfaceConfig{{Name: p.Name}}}
		if p.Tag != nil {
			pc.Tag = *p.Tag
		}
		if p.VLANMode != "" {
			m, err := ParseVLANMode(p.VLANMode)
			if err != nil {
				t.Fatal(err)
			}
			pc.Mode, pc.ModeSet = m, true
		}
		pt, err := ParsePriorityTags(p.OtherConfig["priority-tags"])
		if err != nil {
			t.Fatal(err)
		}
		pc.PriorityTags = pt
		tb.addPort("br0", pc)
	}
	bad := 0
	for i, c := range tt.Cases {
		vid := -1
		if c.InVID != nil {
			vid = *c.InVID
		}
		tb.dp.FDBFlush("")
		src := [6]byte{0x00, 0x00, 0x5e, 0x00, 0x01, byte(i)}
		tb.send(c.InPort, buildFrame(frameSpec{src: src, dst: bcast, vid: vid, pcp: c.InPCP}))
		got := tb.sent()
		var gotS, wantS []string
		for p, fs := range got {
			for _, f := range fs {
				v, pcp := frameVLAN(f)
				if v < 0 {
					gotS = append(gotS, fmt.Sprintf("%s:untagged", p))
				} else {
					gotS = append(gotS, fmt.Sprintf("%s:%d/%d", p, v, pcp))
				}
			}
		}
		for _, o := range c.Outputs {
			if o.VID == nil {
				wantS = append(wantS, fmt.Sprintf("%s:untagged", o.Port))
			} else {
				wantS = append(wantS, fmt.Sprintf("%s:%d/%d", o.Port, *o.VID, o.PCP))
			}
		}
		sort.Strings(gotS)
		sort.Strings(wantS)
		if strings.Join(gotS, " ") != strings.Join(wantS, " ") {
			bad++
			t.Errorf("in %s vid %d pcp %d:\n  got  %v\n  want %v %s", c.InPort, vid, c.InPCP, gotS, wantS, c.Drop)
		}
	}
	t.Logf("%d cases, %d mismatches", len(tt.Cases), bad)
}
