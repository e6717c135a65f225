package bench

import (
	"context"
	"fmt"
	"time"

	"xvs/bond"
	"xvs/datapath"
	"xvs/xdp"
)

// XVSConfig configures the xvs DUT.
type XVSConfig struct {
	Mode xdp.Mode // default best-effort (native on veth)
	// Rules, when set, are added to the bridge (ovs-ofctl syntax, ports
	// named "a" and "b"); otherwise the bridge runs OVS's default NORMAL.
	Rules []string
	// Offload turns on the in-kernel flow tier: cached L2 flows are
	// forwarded by the XDP program without reaching userspace.
	Offload bool
	// Bond makes the output side a balance-slb bond (see bond_dut.go).
	Bond bool
	// Stats, if set, receives the datapath counters when the run ends.
	Stats func(dp *datapath.Datapath)
}

// XVS returns the xvs datapath as a DUT: both veth ends as AF_XDP ports
// sharing one UMEM on bridge br0, the whole pipeline (key extraction,
// exact-match and megaflow caches, NORMAL or OpenFlow rules, output
// batching) run by one poller on the DUT's locked, pinned thread. The
// poller sleeps in poll(2) when idle, like xvsd's.
func XVS(cfg XVSConfig) DUT {
	return func(ctx context.Context, ifA, ifB string) error {
		u, err := xdp.NewUMEM(xdp.UMEMConfig{Frames: 16384})
		if err != nil {
			return err
		}
		defer u.Close()
		var off *xdp.Offload
		if cfg.Offload {
			if off, err = xdp.NewOffload(65536); err != nil {
				return err
			}
			defer off.Close()
		}
		a, err := xdp.Open(ifA, xdp.Config{Mode: cfg.Mode, UMEM: u, Offload: off})
		if err != nil {
			return err
		}
		defer a.Close()
		b, err := xdp.Open(ifB, xdp.Config{Mode: cfg.Mode, UMEM: u, Offload: off})
		if err != nil {
			return err
		}
		defer b.Close()
		dp := datapath.New(datapath.Config{})
		if off != nil {
			dp.SetKernelTier(off.Tier())
		}
		if _, err := dp.AddBridge("br0"); err != nil {
			return err
		}
		pa := datapath.PortConfig{Name: "a", Tag: -1, Interfaces: []datapath.InterfaceConfig{{Name: "a", Device: a, OfPortRequest: 1}}}
		if err := dp.SetPort("br0", pa); err != nil {
			return err
		}
		pb := datapath.PortConfig{Name: "b", Tag: -1, Interfaces: []datapath.InterfaceConfig{{Name: "b", Device: b, OfPortRequest: 2}}}
		if cfg.Bond {
			dummy, cleanup, err := downMember(NetNS(ctx))
			if err != nil {
				return err
			}
			defer cleanup()
			d, err := xdp.Open(dummy, xdp.Config{Mode: cfg.Mode, UMEM: u, Offload: off})
			if err != nil {
				return err
			}
			defer d.Close()
			bd, err := bond.New(bond.Config{Name: "bond0", Mode: bond.ModeBalanceSLB, RebalanceInterval: 0,
				Members: []bond.Member{{OfPort: 2, Name: "b", Up: true}, {OfPort: 3, Name: dummy, Up: false}}}, time.Now())
			if err != nil {
				return err
			}
			pb = datapath.PortConfig{Name: "bond0", Tag: -1, Bond: bd, Interfaces: []datapath.InterfaceConfig{
				{Name: "b", Device: b, OfPortRequest: 2}, {Name: dummy, Device: d, OfPortRequest: 3}}}
		}
		if err := dp.SetPort("br0", pb); err != nil {
			return err
		}
		for _, r := range cfg.Rules {
			if err := dp.AddFlow("br0", r); err != nil {
				return fmt.Errorf("rule %q: %w", r, err)
			}
		}
		p := dp.NewPoller(0, 1)
		// Revalidation (MAC ageing, kernel statistics) as xvsd runs it.
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					dp.Revalidate()
				}
			}
		}()
		p.Run(ctx, -1)
		if cfg.Stats != nil {
			cfg.Stats(dp)
		}
		return nil
	}
}
