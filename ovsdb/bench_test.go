package ovsdb_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSetup creates the root row and one bridge (with its internal
// port) and returns the bridge UUID.
func benchSetup(b *testing.B, c *rpcClient) string {
	b.Helper()
	res, err := c.transact(
		map[string]any{"op": "insert", "table": "Interface", "row": map[string]any{"name": "bench0", "type": "internal"}, "uuid-name": "i"},
		map[string]any{"op": "insert", "table": "Port", "row": map[string]any{"name": "bench0", "interfaces": []any{"named-uuid", "i"}}, "uuid-name": "p"},
		map[string]any{"op": "insert", "table": "Bridge", "row": map[string]any{"name": "bench0", "ports": []any{"named-uuid", "p"}}, "uuid-name": "b"},
		map[string]any{"op": "insert", "table": "Open_vSwitch", "row": map[string]any{"bridges": []any{"named-uuid", "b"}}},
	)
	if err != nil {
		b.Fatalf("setup: %v", err)
	}
	return uuidOf(res[2]["uuid"])
}

func whereUUID(u string) []any { return []any{[]any{"_uuid", "==", []any{"uuid", u}}} }

// txnMutateExternalIDs is what `ovs-vsctl set Bridge X external_ids:K=V`
// sends: delete the key, insert the pair, in one mutate.
func txnMutateExternalIDs(bridge string, client, i int) func(c *rpcClient) error {
	key := fmt.Sprintf("c%d", client)
	return func(c *rpcClient) error {
		_, err := c.transact(map[string]any{
			"op": "mutate", "table": "Bridge", "where": whereUUID(bridge),
			"mutations": []any{
				[]any{"external_ids", "delete", []any{"set", []any{key}}},
				[]any{"external_ids", "insert", []any{"map", []any{[]any{key, fmt.Sprint(i)}}}},
			},
		})
		return err
	}
}

// portInsertDelete alternates between adding a port (with its interface)
// to the bridge and removing it again, which garbage-collects both rows.
type portInsertDelete struct {
	bridge, name string
	port         string // UUID while the port exists
}

func (p *portInsertDelete) step(c *rpcClient) error {
	if p.port == "" {
		res, err := c.transact(
			map[string]any{"op": "insert", "table": "Interface", "row": map[string]any{"name": p.name}, "uuid-name": "i"},
			map[string]any{"op": "insert", "table": "Port", "row": map[string]any{"name": p.name, "interfaces": []any{"named-uuid", "i"}}, "uuid-name": "p"},
			map[string]any{"op": "mutate", "table": "Bridge", "where": whereUUID(p.bridge),
				"mutations": []any{[]any{"ports", "insert", []any{"named-uuid", "p"}}}},
		)
		if err != nil {
			return err
		}
		p.port = uuidOf(res[1]["uuid"])
		return nil
	}
	_, err := c.transact(map[string]any{"op": "mutate", "table": "Bridge", "where": whereUUID(p.bridge),
		"mutations": []any{[]any{"ports", "delete", []any{"uuid", p.port}}}})
	p.port = ""
	return err
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkTxn measures small ovs-vsctl-style transactions issued by N
// concurrent JSON-RPC clients over a unix socket. One op is one
// committed transaction; txn/s is the aggregate rate and p99-ms the 99th
// percentile of the time from sending a transact to its reply.
func BenchmarkTxn(b *testing.B) {
	for _, tg := range targets {
		for _, kind := range []string{"mutate-external-ids", "port-insert-delete"} {
			for _, n := range []int{1, 8, 32} {
				b.Run(fmt.Sprintf("%s/%s/clients=%d", tg.name, kind, n), func(b *testing.B) {
					sock := tg.start(b).sock
					bridge := benchSetup(b, dialRPC(b, sock, nil))
					clients := make([]*rpcClient, n)
					for i := range clients {
						clients[i] = dialRPC(b, sock, nil)
					}
					var next atomic.Int64
					lat := make([][]time.Duration, n)
					errs := make(chan error, n)
					var wg sync.WaitGroup
					b.ResetTimer()
					start := time.Now()
					for ci, c := range clients {
						wg.Add(1)
						go func() {
							defer wg.Done()
							pid := &portInsertDelete{bridge: bridge, name: fmt.Sprintf("bp%d", ci)}
							for {
								i := next.Add(1)
								if i > int64(b.N) {
									return
								}
								t0 := time.Now()
								var err error
								if kind == "mutate-external-ids" {
									err = txnMutateExternalIDs(bridge, ci, int(i))(c)
								} else {
									err = pid.step(c)
								}
								lat[ci] = append(lat[ci], time.Since(t0))
								if err != nil {
									errs <- err
									return
								}
							}
						}()
					}
					wg.Wait()
					elapsed := time.Since(start)
					b.StopTimer()
					select {
					case err := <-errs:
						b.Fatal(err)
					default:
					}
					var all []time.Duration
					for _, l := range lat {
						all = append(all, l...)
					}
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "txn/s")
					b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
				})
			}
		}
	}
}

// BenchmarkMonitorFanout measures, per transaction, the time from
// sending a one-key mutate until all 100 monitoring clients have
// received the resulting update notification.
func BenchmarkMonitorFanout(b *testing.B) {
	const watchers = 100
	for _, tg := range targets {
		b.Run(fmt.Sprintf("%s/clients=%d", tg.name, watchers), func(b *testing.B) {
			sock := tg.start(b).sock
			writer := dialRPC(b, sock, nil)
			bridge := benchSetup(b, writer)

			var got atomic.Int64
			all := make(chan struct{}, 1)
			onUpdate := func(method string, params json.RawMessage) {
				if method == "update" && got.Add(1) == watchers {
					all <- struct{}{}
				}
			}
			for i := 0; i < watchers; i++ {
				c := dialRPC(b, sock, onUpdate)
				if _, err := c.call("monitor", []any{"Open_vSwitch", i, map[string]any{
					"Bridge": map[string]any{"columns": []string{"external_ids"}},
				}}); err != nil {
					b.Fatalf("monitor %d: %v", i, err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got.Store(0)
				t0 := time.Now()
				if err := txnMutateExternalIDs(bridge, 0, i)(writer); err != nil {
					b.Fatal(err)
				}
				select {
				case <-all:
				case <-time.After(10 * time.Second):
					b.Fatalf("only %d of %d watchers got update %d", got.Load(), watchers, i)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}
