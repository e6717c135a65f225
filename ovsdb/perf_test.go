package ovsdb

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// vsctlAddPort is the shape of "ovs-vsctl add-port": verify, insert a Port
// and an Interface, add the Port to its Bridge, bump next_cfg.
func vsctlAddPort(bridge string, i int) string {
	return fmt.Sprintf(`[{"op":"wait","table":"Bridge","where":[["_uuid","==",["uuid","%s"]]],"columns":["name"],"until":"==","rows":[{"name":"br0"}],"timeout":0},
	{"op":"insert","table":"Port","row":{"name":"p%d","interfaces":["named-uuid","i"]},"uuid-name":"p"},
	{"op":"insert","table":"Interface","row":{"name":"p%d"},"uuid-name":"i"},
	{"op":"mutate","table":"Bridge","where":[["_uuid","==",["uuid","%s"]]],"mutations":[["ports","insert",["named-uuid","p"]]]},
	{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["next_cfg","+=",1]]},
	{"op":"comment","comment":"ovs-vsctl add-port br0 p%d"}]`, bridge, i, i, bridge, i)
}

func setupBridge(tb testing.TB, db *Database) string {
	res := tx(tb, db, `[{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}},
		{"op":"insert","table":"Bridge","row":{"name":"br0"},"uuid-name":"b"}]`)
	if errTag(res) != "" {
		tb.Fatal(res)
	}
	return res[1].(map[string]any)["uuid"].([]any)[1].(string)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkTransactAddPort measures durable in-process commits.
func BenchmarkTransactAddPort(b *testing.B) {
	db, _ := openDB(b, BuiltinSchema())
	br := setupBridge(b, db)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if _, err := db.Transact(json.RawMessage(vsctlAddPort(br, i))); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkWireAddPort measures commits over a unix socket from 4 clients
// at once, each waiting for its reply (group commit shares fsyncs).
func BenchmarkWireAddPort(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("nosync=%v", noSync), func(b *testing.B) { benchWireAddPort(b, noSync) })
	}
}

func benchWireAddPort(b *testing.B, noSync bool) {
	db, _ := openDB(b, BuiltinSchema())
	db.SetNoSync(noSync)
	br := setupBridge(b, db)
	_, sock := serve(b, db)
	const clients = 4
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var wg sync.WaitGroup
	next := make(chan int)
	b.ResetTimer()
	for c := 0; c < clients; c++ {
		rc := dial(b, "unix", sock)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				if !rc.tryTransact(`["Open_vSwitch",` + vsctlAddPort(br, i)[1:]) {
					b.Error("transaction failed")
					return
				}
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkTransactCPU is the engine's cost for an ovs-vsctl "set"
// (external_ids delete+insert, next_cfg bump) without the disk flush.
func BenchmarkTransactCPU(b *testing.B) {
	db, _ := openDB(b, BuiltinSchema())
	db.SetNoSync(true)
	br := setupBridge(b, db)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ops := fmt.Sprintf(`[{"op":"mutate","table":"Bridge","where":[["_uuid","==",["uuid","%s"]]],"mutations":[["external_ids","delete",["set",["k"]]],["external_ids","insert",["map",[["k","%d"]]]]]},
			{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["next_cfg","+=",1]]},
			{"op":"select","table":"Open_vSwitch","where":[],"columns":["next_cfg"]}]`, br, i)
		if _, err := db.Transact(json.RawMessage(ops)); err != nil {
			b.Fatal(err)
		}
	}
}
