//go:build !xvsstub

package ovsdb_test

import (
	"path/filepath"
	"testing"

	"xvs/ovsdb"
)

// startXVS serves a fresh database from our in-process server. This is
// the only place the suite touches the xvs API.
func startXVS(tb testing.TB) string {
	tb.Helper()
	dir := shortTempDir(tb)
	db, err := ovsdb.Open(filepath.Join(dir, "conf.db"), ovsdb.BuiltinSchema())
	if err != nil {
		tb.Fatalf("ovsdb.Open: %v", err)
	}
	srv := ovsdb.NewServer(db)
	sock := filepath.Join(dir, "db.sock")
	if err := srv.Listen("punix:" + sock); err != nil {
		db.Close()
		tb.Fatalf("Listen: %v", err)
	}
	tb.Cleanup(func() {
		srv.Close()
		db.Close()
	})
	return sock
}
