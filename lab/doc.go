// Package lab builds and tears down network-namespace topologies for tests,
// benchmarks and the `xvs lab` command.
//
// # Concepts
//
// A Lab owns a name prefix (always starting with "xvs", e.g. "xvs3fa2") and
// everything whose name starts with it: named network namespaces under
// /run/netns and links in the root namespace (bridges, veth ends left in the
// root). Namespaces created by a Lab are called Prefix+"-"+name. Links
// created inside a lab namespace may have any name (names are per
// namespace); links created in the root namespace must carry the prefix so
// that Cleanup can find them.
//
// Cleanup(prefix) removes every namespace and root link with that prefix. It
// is idempotent and needs no state from the process that created them, so
// it also recovers from a crashed test. Each Lab records its prefix and pid
// under /run/xvs-lab; CleanupStale removes labs whose process is gone.
//
// # Safety
//
// Addresses are restricted to the lab ranges 198.18.0.0/15 and
// 2001:db8::/32 (AddAddr refuses anything else), and names to the "xvs"
// prefix, so a lab never touches the host's own configuration.
//
// # Threads and namespaces
//
// The network namespace is a property of an OS thread. NS.Do runs a
// function on a fresh goroutine locked to its OS thread, switches that
// thread into the namespace and switches it back afterwards; if the switch
// back fails the goroutine exits still locked, so the Go runtime discards
// the thread instead of reusing it in the wrong namespace. Sockets and file
// descriptors opened inside Do stay bound to the namespace after Do
// returns, which is how Raw and the xdp devices are used from tests.
// Link configuration uses a netlink handle opened in the namespace and
// never switches the calling thread.
//
// # Tests
//
// Require(t) implements the project rule for privileged tests: without
// root or namespace support a test is skipped, unless CI=true, where it
// fails, because a skip there would hide a broken setup. New(t) combines
// Require with a unique prefix and a t.Cleanup that removes the lab.
//
// Raw sends and receives whole Ethernet frames on an interface inside a
// namespace through an AF_PACKET socket, re-inserting the 802.1Q tag that
// the kernel strips into auxiliary data on receive, so tests see frames as
// they were on the wire.
package lab
