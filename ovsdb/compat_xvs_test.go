//go:build !xvsstub

package ovsdb_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"xvs/ovsdb"
)

// startXVS serves a fresh database from our in-process server on a unix
// socket and a loopback TCP port. This file is the only place the suite
// touches the xvs API.
//
// restart cannot kill -9 an in-process server; it closes the server and
// database and opens the same file again, which checks persistence but
// not crash safety (the reference gets a real SIGKILL).
func startXVS(tb testing.TB) *instance {
	tb.Helper()
	dir := shortTempDir(tb)
	path := filepath.Join(dir, "conf.db")
	port := freeTCPPort(tb)
	in := &instance{
		sock: filepath.Join(dir, "db.sock"),
		tcp:  fmt.Sprintf("tcp:127.0.0.1:%d", port),
	}
	var (
		db  *ovsdb.Database
		srv *ovsdb.Server
	)
	start := func(tb testing.TB) {
		var err error
		db, err = ovsdb.Open(path, ovsdb.BuiltinSchema())
		if err != nil {
			tb.Fatalf("ovsdb.Open: %v", err)
		}
		srv = ovsdb.NewServer(db)
		for _, remote := range []string{"punix:" + in.sock, fmt.Sprintf("ptcp:%d:127.0.0.1", port)} {
			if err := srv.Listen(remote); err != nil {
				srv.Close()
				db.Close()
				tb.Fatalf("Listen(%q): %v", remote, err)
			}
		}
	}
	stop := func() {
		srv.Close()
		db.Close()
	}
	start(tb)
	tb.Cleanup(stop)
	in.restart = func(tb testing.TB) {
		stop()
		start(tb)
	}
	return in
}

// xvsParseSchema runs our schema parser.
func xvsParseSchema(tb testing.TB, data []byte) error {
	_, err := ovsdb.ParseSchema(data)
	return err
}

// xvsBuiltinSchemaIsOurs checks only that a schema is embedded; that it
// is this directory's file is checked through get-schema in
// TestClientOvsdbClientInfo.
func xvsBuiltinSchemaIsOurs(tb testing.TB) error {
	if ovsdb.BuiltinSchema() == nil {
		return fmt.Errorf("BuiltinSchema() = nil")
	}
	return nil
}
