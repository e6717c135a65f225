package ovsdb

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestMain doubles as a standalone server when XVS_OVSDB_SERVE names a
// database file: the kill -9 test re-executes the test binary that way.
// XVS_OVSDB_REMOTE is the remote to listen on.
func TestMain(m *testing.M) {
	if path := os.Getenv("XVS_OVSDB_SERVE"); path != "" {
		os.Exit(serveForever(path, os.Getenv("XVS_OVSDB_REMOTE")))
	}
	os.Exit(m.Run())
}

func serveForever(path, remote string) int {
	if v := os.Getenv("XVS_OVSDB_COMPACT_MIN"); v != "" {
		// Compact often, so that kills land during compactions too.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		compactFactor, compactMin = 1, n
	}
	db, err := Open(path, BuiltinSchema())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv("XVS_OVSDB_NOSYNC") != "" {
		db.SetNoSync(true)
	}
	srv := NewServer(db)
	if err := srv.Listen(remote); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	select {}
}
