package bond

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"
)

// Command errors, worded as OVS's unixctl replies.
var (
	ErrNoSuchMember     = errors.New("no such member")
	ErrNotSLB           = errors.New("not an SLB bond")
	ErrBadHash          = errors.New("bad hash")
	ErrMigrateDisabled  = errors.New("cannot migrate to disabled member")
	ErrActivateDisabled = errors.New("cannot make disabled member active")
)

// Migrate moves SLB bucket hash (decimal digits, taken modulo 256 like
// OVS) to member memberName: `ovs-appctl bond/migrate PORT HASH MEMBER`.
// It returns "migrated", or ErrNotSLB, ErrBadHash, ErrNoSuchMember,
// ErrMigrateDisabled. Like OVS the move is not permanent: rebalancing and
// failover may move the bucket again.
func (b *Bond) Migrate(hash string, memberName string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.Mode != ModeBalanceSLB || !b.hasTable {
		return "", ErrNotSLB
	}
	var h uint64
	for _, c := range []byte(hash) {
		if c < '0' || c > '9' {
			return "", ErrBadHash
		}
		h = h*10 + uint64(c-'0')
	}
	i := b.lookupName(memberName)
	if i < 0 {
		return "", ErrNoSuchMember
	}
	if !b.members[i].enabled {
		return "", ErrMigrateDisabled
	}
	bucket := uint8(h)
	if b.bucket[bucket] != i {
		b.bucket[bucket] = i
		b.dirty = true
	}
	b.ev.Moved.Add(bucket)
	b.publish()
	return "migrated", nil
}

// EnableMember and DisableMember implement bond/enable-member and
// bond/disable-member: they enable or disable the member at once, skipping
// any delay, and reply "enabled"/"disabled". Like OVS they are not sticky:
// the next Run re-applies the carrier state (with its delay), so disabling
// a member whose carrier is up is undone after updelay.
func (b *Bond) EnableMember(name string) (string, error) { return b.enableMember(name, true) }

// DisableMember: see EnableMember.
func (b *Bond) DisableMember(name string) (string, error) { return b.enableMember(name, false) }

func (b *Bond) enableMember(name string, en bool) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.lookupName(name)
	if i < 0 {
		return "", ErrNoSuchMember
	}
	b.setEnabled(i, en)
	if !en && b.members[i].carrier {
		// Not sticky: the next Run re-enables a member whose carrier is
		// up before it looks at the active member (OVS's bond_run order),
		// so the active member does not move; only buckets leave it.
		b.fillBuckets()
	} else {
		b.settle(b.lastNow, -1)
	}
	b.publish()
	return enabledText(en), nil
}

// SetActiveMember implements bond/set-active-member: "done" when the
// active member changed (learning packets are requested), "no change"
// when it already was active, ErrNoSuchMember or ErrActivateDisabled.
// Not permanent: in active-backup an enabled primary takes over again at
// the next Run.
func (b *Bond) SetActiveMember(name string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.lookupName(name)
	if i < 0 {
		return "", ErrNoSuchMember
	}
	if !b.members[i].enabled {
		return "", ErrActivateDisabled
	}
	if b.active == i {
		return "no change", nil
	}
	b.active = i
	b.logf("bond %s: active member is now %s", b.cfg.Name, b.members[i].Name)
	b.sendLearning = true
	b.activeChanged()
	b.publish()
	return "done", nil
}

// MemberStatus is one member's state for OVSDB write-back and display.
type MemberStatus struct {
	OfPort    uint32
	Name      string
	Enabled   bool
	Active    bool
	MayEnable bool // link (carrier or miimon) up
}

// Status is the bond's state for OVSDB write-back.
type Status struct {
	Mode   Mode
	Active uint32 // ofport of the active member, 0 if none
	// ActiveMAC is the MAC for Port.bond_active_slave (OVS writes it as
	// "xx:xx:xx:xx:xx:xx"); zero when no member is active.
	ActiveMAC [6]byte
	LACP      string // lacp_status: "off" or "configured"
	Members   []MemberStatus
	// Note explains a bond that cannot forward, e.g. balance-tcp
	// without LACP; empty otherwise.
	Note string
}

// Status returns a copy of the bond's state.
func (b *Bond) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Status{Mode: b.cfg.Mode, ActiveMAC: b.activeMAC, LACP: b.lacp.String()}
	if b.active >= 0 {
		s.Active = b.members[b.active].OfPort
	}
	for i, m := range b.members {
		s.Members = append(s.Members, MemberStatus{OfPort: m.OfPort, Name: m.Name,
			Enabled: m.enabled, Active: i == b.active, MayEnable: m.carrier})
	}
	switch {
	case b.lacp == lacpConfigured && !b.cfg.LACPFallbackAB:
		s.Note = "LACP configured but not negotiated: all traffic dropped"
	case b.lacp == lacpOff && b.cfg.Mode == ModeBalanceTCP:
		s.Note = "balance-tcp requires LACP: all traffic dropped"
	}
	return s
}

// ListHeader is the first line of bond/list.
const ListHeader = "bond\ttype\trecircID\tmembers"

// List returns this bond's bond/list line (without newline):
// name, mode, recirculation id (always 0: this datapath does not
// recirculate), members in configuration order.
func (b *Bond) List() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, len(b.members))
	for i, m := range b.members {
		names[i] = m.Name
	}
	return fmt.Sprintf("%s\t%s\t%d\t%s", b.cfg.Name, b.cfg.Mode, 0, strings.Join(names, ", "))
}

// Show returns the bond/show text of this bond at time now, in OVS 3.1's
// layout (ending with an empty line). "next rebalance" and the delay
// timers are printed relative to now.
func (b *Bond) Show(now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	p("---- %s ----\n", b.cfg.Name)
	p("bond_mode: %s\n", b.cfg.Mode)
	p("bond may use recirculation: no, Recirc-ID : -1\n")
	p("bond-hash-basis: %d\n", b.cfg.Basis)
	p("lb_output action: disabled, bond-id: -1\n")
	if b.cfg.Mode == ModeBalanceSLB {
		p("all members active: %t\n", b.cfg.AllMembersActive)
	}
	p("updelay: %d ms\n", b.cfg.UpDelay)
	p("downdelay: %d ms\n", b.cfg.DownDelay)
	if b.balanced() {
		p("next rebalance: %d ms\n", b.nextRebalance.Sub(now).Milliseconds())
	}
	p("lacp_status: %s\n", b.lacp)
	p("lacp_fallback_ab: %t\n", b.cfg.LACPFallbackAB)
	primary := "<none>"
	if b.cfg.Primary != "" {
		primary = b.cfg.Primary
		if b.lookupName(b.cfg.Primary) < 0 {
			primary += " (no such member)"
		}
	}
	p("active-backup primary: %s\n", primary)
	activeName := "none"
	for _, m := range b.members {
		if b.activeMAC != ([6]byte{}) && m.MAC == b.activeMAC {
			activeName = m.Name
			break
		}
	}
	p("active member mac: %s(%s)\n", net.HardwareAddr(b.activeMAC[:]), activeName)

	idx := make([]int, len(b.members))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(x, y int) bool { return b.members[idx[x]].Name < b.members[idx[y]].Name })
	for _, i := range idx {
		m := b.members[i]
		p("\nmember %s: %s\n", m.Name, enabledText(m.enabled))
		if i == b.active {
			p("  active member\n")
		}
		if m.delayArmed {
			kind := "updelay"
			if m.enabled {
				kind = "downdelay"
			}
			p("  %s expires in %d ms\n", kind, m.delayUntil.Sub(now).Milliseconds())
		}
		p("  may_enable: %t\n", m.carrier)
		if !b.balanced() || !b.hasTable {
			continue
		}
		for h, mi := range b.bucket {
			if mi != i {
				continue
			}
			if k := (b.load[h] + b.tx[h].Load()) / 1024; k > 0 {
				p("  hash %d: %d kB load\n", h, k)
			}
		}
	}
	p("\n")
	return sb.String()
}

// Errors of HashCommand, worded as OVS's replies.
var (
	ErrInvalidMAC   = errors.New("invalid mac")
	ErrInvalidVLAN  = errors.New("invalid vlan")
	ErrInvalidBasis = errors.New("invalid basis")
)

// HashCommand implements `ovs-appctl bond/hash MAC [VLAN] [BASIS]` and
// returns the bucket as a decimal string. It accepts what OVS's scanf-based
// parser accepts: one or two hex digits per MAC octet, decimal numbers
// with trailing garbage ignored, negative or oversized values wrapped.
func HashCommand(args ...string) (string, error) {
	if len(args) < 1 || len(args) > 3 {
		return "", fmt.Errorf("bond/hash: want MAC [VLAN] [BASIS], got %d arguments", len(args))
	}
	var vlan, basis uint64
	var ok bool
	if len(args) > 1 {
		if vlan, ok = scanUint(args[1]); !ok {
			return "", ErrInvalidVLAN
		}
	}
	if len(args) > 2 {
		if basis, ok = scanUint(args[2]); !ok {
			return "", ErrInvalidBasis
		}
	}
	mac, ok := scanMAC(args[0])
	if !ok {
		return "", ErrInvalidMAC
	}
	return fmt.Sprint(Bucket(mac, uint16(vlan), uint32(basis))), nil
}

// scanUint mimics scanf("%u"): optional sign, at least one digit, stops
// at the first non-digit; saturates at 2^64-1 and negates on '-'.
func scanUint(s string) (uint64, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v uint64
	n := 0
	for ; n < len(s) && s[n] >= '0' && s[n] <= '9'; n++ {
		d := uint64(s[n] - '0')
		if v > (^uint64(0)-d)/10 {
			v = ^uint64(0)
		} else {
			v = v*10 + d
		}
	}
	if n == 0 {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// scanMAC mimics OVS's ETH_ADDR_SCAN_FMT: six groups of one or two hex
// digits separated by ':'; anything after the sixth group is ignored.
func scanMAC(s string) ([6]byte, bool) {
	var mac [6]byte
	for i := range mac {
		if i > 0 {
			if s == "" || s[0] != ':' {
				return mac, false
			}
			s = s[1:]
		}
		n := 0
		var v byte
		for ; n < 2 && n < len(s); n++ {
			d, ok := hexDigit(s[n])
			if !ok {
				break
			}
			v = v<<4 | d
		}
		if n == 0 {
			return mac, false
		}
		mac[i] = v
		s = s[n:]
	}
	return mac, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Loads returns each bucket's load in bytes as rebalancing sees it (the
// decayed history plus what was accounted since the last rebalance).
func (b *Bond) Loads() (loads [256]uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for h := range loads {
		loads[h] = b.load[h] + b.tx[h].Load()
	}
	return loads
}
