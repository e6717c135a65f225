package bond

import (
	"errors"
	"fmt"
	"strconv"
)

// Mode is a bond's balancing mode, spelled as in OVSDB Port.bond_mode.
type Mode string

// Bond modes. The empty Mode means ModeActiveBackup, with the warning OVS
// logs for it (see Bond.Warnings).
const (
	ModeActiveBackup Mode = "active-backup"
	ModeBalanceSLB   Mode = "balance-slb"
	ModeBalanceTCP   Mode = "balance-tcp"
)

// Defaults and limits taken from OVS's vswitchd/bridge.c.
const (
	DefaultRebalanceInterval = 10000 // ms, other_config:bond-rebalance-interval absent
	MinRebalanceInterval     = 1000  // ms, non-zero values below are raised to it
	DefaultMiimonInterval    = 200   // ms, bond-detect-mode=miimon
)

// Detect modes (other_config:bond-detect-mode).
const (
	DetectCarrier = "carrier"
	DetectMiimon  = "miimon"
)

// LACP settings (Port.lacp). This package never negotiates LACP: a bond
// with LACP "active" or "passive" stays in lacp_status "configured", which
// drops all traffic unless LACPFallbackAB turns it into active-backup,
// exactly what OVS does while no partner answers.
const (
	LACPOff     = "off"
	LACPActive  = "active"
	LACPPassive = "passive"
)

// Member is one interface of a bond as the datapath knows it.
type Member struct {
	OfPort uint32  // OpenFlow port number; non-zero, unique within the bond
	Name   string  // interface name; unique within the bond
	MAC    [6]byte // interface MAC (for Port.bond_active_slave); may be zero
	// Up is the carrier state when the member joins the bond. Like OVS, a
	// member that joins with carrier is enabled at once, without updelay.
	Up bool
}

// Config is the configuration of one bond (the OVSDB Port and its
// other_config keys). All durations are in milliseconds, as in OVSDB.
type Config struct {
	Name    string
	Mode    Mode // "" = active-backup (warning), unknown = active-backup (warning)
	Members []Member
	Basis   uint32 // other_config:bond-hash-basis

	// RebalanceInterval is other_config:bond-rebalance-interval in ms:
	// 0 disables rebalancing, 1..999 is raised to 1000. A caller mapping
	// OVSDB must use DefaultRebalanceInterval when the key is absent.
	RebalanceInterval int

	UpDelay, DownDelay int // Port.bond_updelay/bond_downdelay, ms; <0 means 0

	Primary          string // other_config:bond-primary; only used by active-backup
	AllMembersActive bool   // other_config:all-members-active; only used by balance-slb

	DetectMode     string // "" or "carrier" (default), "miimon"
	MiimonInterval int    // ms; <=0 means 200; ignored in carrier mode

	LACP           string // "" or "off" (default), "active", "passive"
	LACPFallbackAB bool   // other_config:lacp-fallback-ab

	// ActiveMAC is Port.bond_active_slave as stored in OVSDB. New prefers
	// the member with this MAC as the first active member, so the active
	// member survives a restart. Reconfigure ignores it.
	ActiveMAC [6]byte
}

// Errors returned by New and Reconfigure.
var (
	ErrConfig = errors.New("bond: invalid configuration")
)

// normalized returns a copy of c with OVS's defaults and clamps applied,
// plus the warnings OVS would log while doing so.
func (c Config) normalized() (Config, []string, error) {
	var warns []string
	n := c
	n.Members = append([]Member(nil), c.Members...)
	if n.Name == "" {
		return n, nil, fmt.Errorf("%w: empty bond name", ErrConfig)
	}
	if len(n.Members) == 0 {
		return n, nil, fmt.Errorf("%w: bond %s has no members", ErrConfig, n.Name)
	}
	ports := make(map[uint32]bool, len(n.Members))
	names := make(map[string]bool, len(n.Members))
	for _, m := range n.Members {
		switch {
		case m.OfPort == 0:
			return n, nil, fmt.Errorf("%w: bond %s: member %q has ofport 0", ErrConfig, n.Name, m.Name)
		case m.Name == "":
			return n, nil, fmt.Errorf("%w: bond %s: member with ofport %d has no name", ErrConfig, n.Name, m.OfPort)
		case ports[m.OfPort]:
			return n, nil, fmt.Errorf("%w: bond %s: duplicate ofport %d", ErrConfig, n.Name, m.OfPort)
		case names[m.Name]:
			return n, nil, fmt.Errorf("%w: bond %s: duplicate member name %q", ErrConfig, n.Name, m.Name)
		}
		ports[m.OfPort] = true
		names[m.Name] = true
	}

	switch n.Mode {
	case ModeActiveBackup, ModeBalanceSLB, ModeBalanceTCP:
	case "":
		n.Mode = ModeActiveBackup
		warns = append(warns, fmt.Sprintf("port %s: Using the default bond_mode %s. Note that in previous versions, the default bond_mode was balance-slb", n.Name, n.Mode))
	default:
		warns = append(warns, fmt.Sprintf("port %s: unknown bond_mode %s, defaulting to %s", n.Name, n.Mode, ModeActiveBackup))
		n.Mode = ModeActiveBackup
	}

	if n.RebalanceInterval < 0 {
		n.RebalanceInterval = 0
	} else if n.RebalanceInterval > 0 && n.RebalanceInterval < MinRebalanceInterval {
		n.RebalanceInterval = MinRebalanceInterval
	}
	n.UpDelay = max(n.UpDelay, 0)
	n.DownDelay = max(n.DownDelay, 0)

	if n.MiimonInterval <= 0 {
		n.MiimonInterval = DefaultMiimonInterval
	}
	switch n.DetectMode {
	case "", DetectCarrier:
		n.DetectMode = DetectCarrier
		n.MiimonInterval = 0
	case DetectMiimon:
	default:
		warns = append(warns, fmt.Sprintf("port %s: unsupported bond-detect-mode %s, defaulting to carrier", n.Name, n.DetectMode))
		n.DetectMode = DetectCarrier
		n.MiimonInterval = 0
	}

	switch n.LACP {
	case "", LACPOff:
		n.LACP = LACPOff
	case LACPActive, LACPPassive:
	default:
		return n, nil, fmt.Errorf("%w: bond %s: bad lacp value %q", ErrConfig, n.Name, n.LACP)
	}

	// bridge.c only passes bond-primary for active-backup (or with
	// lacp-fallback-ab) and all-members-active only matters for SLB.
	if n.Mode != ModeActiveBackup && !n.LACPFallbackAB {
		n.Primary = ""
	}
	if n.Mode != ModeBalanceSLB {
		n.AllMembersActive = false
	}
	return n, warns, nil
}

// ParseOtherConfig fills the other_config-derived fields of c from an OVSDB
// Port other_config map with OVS's defaults (a missing
// bond-rebalance-interval means 10000 ms) and returns warnings for values
// OVS would reject. It does not touch Name, Mode, Members or the delays.
func (c *Config) ParseOtherConfig(oc map[string]string) []string {
	var warns []string
	getInt := func(key string, def int) int {
		s, ok := oc[key]
		if !ok {
			return def
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			warns = append(warns, fmt.Sprintf("port %s: bad %s %q, using %d", c.Name, key, s, def))
			return def
		}
		return v
	}
	getBool := func(key string) bool { return oc[key] == "true" }

	c.RebalanceInterval = getInt("bond-rebalance-interval", DefaultRebalanceInterval)
	c.Basis = uint32(getInt("bond-hash-basis", 0))
	c.DetectMode = oc["bond-detect-mode"]
	c.MiimonInterval = getInt("bond-miimon-interval", 0)
	c.Primary = oc["bond-primary"]
	c.AllMembersActive = getBool("all-members-active")
	c.LACPFallbackAB = getBool("lacp-fallback-ab")
	return warns
}
