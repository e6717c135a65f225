package ovsdb_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// TestCompatRestart: every acknowledged transaction survives a restart;
// ephemeral columns come back empty.
func TestCompatRestart(t *testing.T) {
	forEachInstance(t, func(t *testing.T, in *instance) {
		for _, args := range seedTopology {
			mustVsctl(t, in.sock, args...)
		}
		// Ephemeral columns, as ovs-vswitchd would fill them.
		mustVsctl(t, in.sock, "set", "Interface", "enp2s0", "link_state=up", "mtu=1500", "statistics:rx_packets=7",
			"--", "set", "Port", "ovs-bond", `bond_active_slave="00:11:22:33:44:55"`)
		// Deleted rows must stay deleted.
		mustVsctl(t, in.sock, "add-br", "br-tmp", "--", "del-br", "br-tmp")
		mustVsctl(t, in.sock, "add-br", "br-gone")
		mustVsctl(t, in.sock, "del-br", "br-gone")
		before := sortShow(mustVsctl(t, in.sock, "show"))
		uuidBefore := mustVsctl(t, in.sock, "get", "Bridge", "br-ex", "_uuid")

		in.restart(t)

		if after := sortShow(mustVsctl(t, in.sock, "show")); after != before {
			t.Errorf("show after restart:\n%s\nbefore:\n%s", after, before)
		}
		if got := mustVsctl(t, in.sock, "get", "Bridge", "br-ex", "_uuid"); got != uuidBefore {
			t.Errorf("br-ex UUID %q after restart, was %q", got, uuidBefore)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"get", "Interface", "enp2s0", "link_state", "mtu", "statistics", "mtu_request"}, "[]\n[]\n{}\n1500\n"},
			// bond_active_slave is status but not ephemeral: it persists.
			{[]string{"get", "Port", "ovs-bond", "bond_active_slave", "bond_mode"}, "\"00:11:22:33:44:55\"\nbalance-slb\n"},
			{[]string{"list-br"}, "br-ex\nbr-phy\n"},
			{[]string{"get", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings"}, "\"localnet-network:br-ex\"\n"},
		} {
			if got := mustVsctl(t, in.sock, c.args...); got != c.want {
				t.Errorf("after restart, ovs-vsctl %s = %q, want %q", strings.Join(c.args, " "), got, c.want)
			}
		}
	})
}

// TestClientTCP drives the TCP remote: ovs-vsctl and ovsdb-client over
// tcp:, the server's inactivity probe (an "echo" request after 5 s idle),
// and the disconnection of a client that never answers it. Unix sockets
// get no probe. It waits about 10 s, with both servers in parallel.
func TestClientTCP(t *testing.T) {
	forEachInstance(t, func(t *testing.T, in *instance) {
		t.Parallel()
		if got := mustVsctl(t, in.tcp, "add-br", "br0"); got != "" {
			t.Errorf("add-br over tcp printed %q", got)
		}
		if got := mustVsctl(t, in.sock, "list-br"); got != "br0\n" {
			t.Errorf("list-br over unix after tcp add-br: %q", got)
		}
		if r := ovsdbClient(t, "list-dbs", in.tcp); r.stdout != "Open_vSwitch\n_Server\n" {
			t.Errorf("ovsdb-client list-dbs over tcp: %q %q", r.stdout, r.stderr)
		}

		addr := strings.TrimPrefix(in.tcp, "tcp:")
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		unix, err := net.Dial("unix", in.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close()

		// The idle TCP client gets an echo request after ~5 s.
		start := time.Now()
		silent.SetReadDeadline(start.Add(8 * time.Second))
		dec := json.NewDecoder(silent)
		var m struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("no message on an idle TCP connection after %v: %v", time.Since(start), err)
		}
		if m.Method != "echo" || string(m.ID) == "null" || len(m.ID) == 0 {
			t.Errorf("first message to an idle client: method %q id %s, want an echo request", m.Method, m.ID)
		}
		if d := time.Since(start); d < 3*time.Second {
			t.Errorf("echo probe after %v, want about 5 s of inactivity", d)
		}
		// Unanswered, the connection is dropped about 5 s later.
		silent.SetReadDeadline(time.Now().Add(8 * time.Second))
		var extra json.RawMessage
		if err := dec.Decode(&extra); err == nil {
			t.Errorf("unanswered probe: got %s instead of a close", extra)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("unanswered probe: connection still open after %v", time.Since(start))
		}

		// The unix client, idle all along, was never probed.
		unix.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		buf := make([]byte, 1)
		if n, err := unix.Read(buf); n > 0 {
			t.Errorf("unix client received data while idle")
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("unix client connection: %v", err)
		}
	})
}
