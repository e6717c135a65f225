// Package ovsdb is xvs's OVSDB server: an RFC 7047 database engine with
// Open vSwitch's extensions, a JSON-RPC server that real ovs-vsctl,
// ovsdb-client and the OVS IDLs talk to, and an in-process API for the
// xvs daemon.
//
// # Concepts
//
// A Schema (ParseSchema, BuiltinSchema for Open_vSwitch) describes tables,
// columns and their types. A Database (Open) holds the committed rows of
// one schema in memory and appends every commit to a durable log file. A
// Server (NewServer, Listen) serves databases plus the read-only _Server
// database, whose Database table (name, model "standalone", connected,
// leader, schema text) is what ovs-vsctl and the IDLs read the schema from.
//
// Values. A Row maps column names to Go values:
//
//	scalar column (min 1, max 1, no value type): int64, float64, bool, string or UUID
//	other columns without a value type:           Set  (sorted, distinct atoms)
//	columns with a value type:                    Map  (map[any]any of atoms)
//
// Rows, Sets and Maps handed out by Read and Watch are shared with the
// database and must never be modified. Defaults: 0, 0.0, false, "", the
// zero UUID, the empty Set and Map.
//
// Transactions (Database.Transact, or "transact" on the wire) run the ops
// in order on a private overlay of changed rows; the first failing op puts
// its error object in the results followed by nulls for the others. At
// commit the engine garbage-collects rows of non-root tables that no strong
// reference reaches (including rows inserted by the same transaction),
// removes weak references to rows that do not exist, checks referential
// integrity, maxRows and index uniqueness (an error found then is appended
// as an extra result), writes the log record and applies the change. A
// "wait" op with a timeout blocks the transaction until a later commit
// satisfies it, the timeout passes ("timed out") or the client cancels it.
//
// Monitors: "monitor" (update), "monitor_cond" (update2) and
// "monitor_cond_since" (update3, always answering found=false and the
// all-zero transaction id, as a standalone server does). Initial and
// inserted rows in update2/3 omit default-valued columns; a "modify" carries
// the new value of columns holding at most one element and, for other sets
// and maps, the elements to toggle. Each commit sends at most one
// notification per monitor, queued before the committing client's reply.
//
// # Concurrency
//
//   - Database.txMu serializes writers: executing a transaction, writing
//     its log record, applying it, notifying subscribers (monitors and
//     watchers) and registering a monitor with its initial contents. While
//     a goroutine holds txMu the committed tables cannot change, so a
//     transaction reads them without further locking.
//   - Database.mu (RWMutex) protects the committed tables against Read:
//     commits hold it for writing only while applying a change; Read holds
//     it for reading during its callback.
//   - The fsync of a commit runs after txMu is released (group commit in
//     logFile.sync: the first waiter fsyncs for everyone who appended
//     before it). A reply is sent only after its own record is durable;
//     other transactions may already see the change (they cannot be
//     acknowledged before it, since their records come later in the log).
//   - Each connection has a serve goroutine (reads, dispatches, owns the
//     monitor map), a writer goroutine (owns the socket's write side) and,
//     on TCP, a prober goroutine. Output is queued under conn.wmu without
//     blocking, so monitors are notified with txMu held; a client whose
//     backlog passes 1 GiB is dropped. Transactions containing a "wait"
//     with a timeout run on their own goroutine so "cancel" can reach them.
//   - Server.lockMu guards the lock table and every connection's lock set.
//   - Each Watch has its own goroutine and queue, so callbacks run in
//     commit order, one at a time, and may call Transact.
//
// # File format
//
// The file is ovsdb-server's standalone format, readable by ovsdb-tool: a
// sequence of records "OVSDB JSON <length> <sha1>\n<json>\n" where length
// and SHA-1 cover the JSON text and its newline. The first record is the
// schema; each later one is a transaction {"<table>": {"<uuid>": row or
// null}, "_date": <ms>, "_comment": "...", "_is_diff": true} where an
// inserted row lists its non-default columns and a modified row its changed
// columns: the new value for columns holding at most one element, the
// elements to toggle for other sets, the changed pairs for maps (removed
// keys with their old values), exactly as ovsdb-server 3.x writes them.
// Records without "_is_diff" (older files) hold whole values. Ephemeral
// columns are never written. Each commit is written and fsynced (fdatasync)
// before its reply unless SetNoSync(true) was called; then it is written
// (so it survives a crash of the process, kill -9 included) but not flushed
// to the disk, like ovsdb-server's default. While open, the file is guarded
// by an advisory lock on ".NAME.~lock~" in the same directory. Open replays the log; a torn or
// corrupt tail is truncated with a slog warning. When the file exceeds
// four times its size after the last snapshot and 8 MiB, it is compacted:
// the schema and one record holding every row are written to a temporary
// file, fsynced, renamed over the original and the directory fsynced.
//
// # Limits
//
// One received message is bounded by Server.MaxMessage (64 MiB): a longer
// one gets a "resources exhausted" error and the connection is closed, as
// for malformed JSON or a message that is not a JSON-RPC object; other
// clients carry on. TCP clients idle for Server.ProbeInterval (5 s) get an
// "echo" request and are dropped after as long again without any message;
// unix socket clients are never probed.
package ovsdb
