// Package unixctl is the server side of Open vSwitch's unixctl management
// protocol, so that the real ovs-appctl drives an xvs daemon exactly as it
// drives ovs-vswitchd:
//
//	ovs-appctl -t /run/xvs/xvsd.ctl bond/show bond0
//
// # Protocol
//
// JSON-RPC 1.0 over a Unix stream socket, one JSON object per message with
// no framing. ovs-appctl (3.1) opens a connection, sends one request and
// reads one reply; it calls nothing before the command. The request is
//
//	{"id":0,"method":"bond/show","params":["bond0"]}
//
// with every argument a string, and the reply, with the text always
// ending in a newline when it is not empty, is
//
//	{"id":0,"result":"TEXT","error":null}   success: printed to stdout, exit 0
//	{"id":0,"error":"TEXT"}                 failure: printed to stderr, exit 2
//
// (ovs-appctl then adds "ovs-appctl: TARGET: server returned an error" to
// stderr). Before a handler runs, the server checks, in OVS's order and
// with its wording: unknown command (`"foo" is not a valid command (use
// "list-commands" to see a list of valid commands)`), too few arguments
// (`"cmd" command requires at least N arguments`), too many (`"cmd"
// command takes at most N arguments`), non-string argument (`"cmd"
// command has non-string argument`). These forms were checked on the wire
// against ovsdb-server 3.1 and are asserted in the tests. The --format
// json option of ovs-appctl (the hidden "set-options" command) appeared
// in OVS 3.4 and is not implemented.
//
// Anything else ends the connection, as in OVS: malformed JSON, a message
// that is not an object, an object with members other than method,
// params, result, error and id, a notification (null or missing id), a
// reply, a request without a params array, or a message longer than
// MaxMessageSize. Other connections are unaffected.
//
// # Commands
//
// New registers the built-ins list-commands ("The available commands
// are:" and one "  %-23s %s" line per command, sorted), version (the text
// of SetVersion) and exit (replies, then calls the OnExit function).
// Register adds or replaces commands at any time.
//
// # Concurrency and lifetimes
//
// Listen starts one accept goroutine and one goroutine per connection. A
// connection's requests run one at a time, in order (a pipelining client
// gets its replies in order); handlers of different connections run
// concurrently, so handlers must be safe for concurrent use. The server's
// mutex protects the command table, version, exit function, logger and
// connection set; it is never held while a handler runs. Close closes the
// listener and every connection and waits until all handlers have
// returned, so a handler must not block forever, and must not call Close
// itself (the exit function may: it runs in its own goroutine after the
// reply is written). The socket file is created with SocketMode (0750)
// and removed by Close only if it is still the one Listen created.
// Paths longer than sun_path allows are reached through /proc/self/fd, as
// OVS does. The number of connections is not limited: the socket's mode
// decides who may connect.
//
// ovs-appctl -t accepts a socket path, which is what this package serves.
// For a bare name (ovs-appctl -t xvsd, or no -t at all, meaning
// ovs-vswitchd) ovs-appctl reads $OVS_RUNDIR/NAME.pid and connects to
// $OVS_RUNDIR/NAME.PID.ctl; a daemon that wants that writes the pidfile
// and listens on that path.
//
// A handler panic is recovered, logged, and reported to the client as a
// failed command; protocol problems are logged at most a few times per
// interval.
package unixctl
