package ovsdb_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rpcClient is a minimal JSON-RPC 1.0 client for OVSDB (RFC 7047 §4),
// independent of the server under test, for the fake daemon and the
// benchmarks. One goroutine reads; calls may come from any goroutine.
type rpcClient struct {
	conn net.Conn

	wmu sync.Mutex // serialises writes to conn
	enc *json.Encoder

	mu      sync.Mutex // protects next, pending, err
	next    int
	pending map[int]chan rpcMsg
	err     error

	// notify, if set before the first call, receives every
	// server-originated notification ("update", "update2", "update3", ...)
	// on the reading goroutine.
	notify func(method string, params json.RawMessage)

	done chan struct{}
}

type rpcMsg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// rpcError is a JSON-RPC level error reply (not a per-operation error).
type rpcError struct{ raw string }

func (e *rpcError) Error() string { return "rpc error: " + e.raw }

func dialRPC(tb testing.TB, sock string, notify func(string, json.RawMessage)) *rpcClient {
	tb.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		tb.Fatalf("dial %s: %v", sock, err)
	}
	c := &rpcClient{
		conn:    conn,
		enc:     json.NewEncoder(conn),
		pending: map[int]chan rpcMsg{},
		notify:  notify,
		done:    make(chan struct{}),
	}
	go c.read()
	tb.Cleanup(c.Close)
	return c
}

func (c *rpcClient) Close() {
	c.conn.Close()
	<-c.done
}

func (c *rpcClient) read() {
	defer close(c.done)
	dec := json.NewDecoder(c.conn)
	var err error
	for {
		var m rpcMsg
		if err = dec.Decode(&m); err != nil {
			break
		}
		switch {
		case m.Method == "echo":
			c.send(rpcMsg{ID: m.ID, Result: m.Params, Error: json.RawMessage("null")})
		case m.Method != "":
			if c.notify != nil {
				c.notify(m.Method, m.Params)
			}
		default:
			id, perr := strconv.Atoi(string(m.ID))
			c.mu.Lock()
			ch, ok := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if perr == nil && ok {
				ch <- m
			}
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("connection closed: %w", err)
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

func (c *rpcClient) send(m rpcMsg) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.enc.Encode(m)
}

// call sends one request and waits for its reply. params is marshalled
// as given (it must be a JSON array).
func (c *rpcClient) call(method string, params any) (json.RawMessage, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	ch := make(chan rpcMsg, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.send(rpcMsg{Method: method, Params: p, ID: json.RawMessage(strconv.Itoa(id))}); err != nil {
		return nil, err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, c.err
		}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			return m.Result, &rpcError{string(m.Error)}
		}
		return m.Result, nil
	case <-time.After(10 * time.Second):
		return nil, errors.New(method + ": no reply in 10s")
	}
}

// transact runs one transaction and returns its per-operation results.
// An operation error is returned as an error naming it.
func (c *rpcClient) transact(ops ...any) ([]map[string]any, error) {
	res, err := c.call("transact", append([]any{"Open_vSwitch"}, ops...))
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	if err := json.Unmarshal(res, &out); err != nil {
		return nil, fmt.Errorf("transact result %s: %w", res, err)
	}
	for i, r := range out {
		if e, ok := r["error"]; ok && e != nil {
			return out, fmt.Errorf("op %d: %v: %v", i, e, r["details"])
		}
	}
	return out, nil
}

// uuidOf extracts the UUID string from a ["uuid", "..."] result value.
func uuidOf(v any) string {
	if a, ok := v.([]any); ok && len(a) == 2 {
		if s, ok := a[1].(string); ok {
			return s
		}
	}
	return ""
}

// fakeDaemon plays the one part of ovs-vswitchd that ovs-vsctl waits
// for: whenever Open_vSwitch.next_cfg changes it copies it to cur_cfg.
// It uses the plain "monitor" method and "update" notifications.
func fakeDaemon(tb testing.TB, sock string) {
	tb.Helper()
	type row struct {
		NextCfg *int `json:"next_cfg"`
		CurCfg  *int `json:"cur_cfg"`
	}
	work := make(chan [2]any, 16)
	c := dialRPC(tb, sock, func(method string, params json.RawMessage) {
		if method != "update" {
			return
		}
		var p []json.RawMessage
		if json.Unmarshal(params, &p) != nil || len(p) != 2 {
			return
		}
		var upd map[string]map[string]struct {
			New *row `json:"new"`
		}
		if json.Unmarshal(p[1], &upd) != nil {
			return
		}
		for uuid, ch := range upd["Open_vSwitch"] {
			if ch.New != nil && ch.New.NextCfg != nil && (ch.New.CurCfg == nil || *ch.New.CurCfg != *ch.New.NextCfg) {
				work <- [2]any{uuid, *ch.New.NextCfg}
			}
		}
	})
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case w := <-work:
				// Errors here show up as ovs-vsctl timing out.
				c.transact(map[string]any{
					"op":    "update",
					"table": "Open_vSwitch",
					"where": []any{[]any{"_uuid", "==", []any{"uuid", w[0]}}},
					"row":   map[string]any{"cur_cfg": w[1]},
				})
			case <-stop:
				return
			}
		}
	}()
	tb.Cleanup(func() {
		close(stop)
		<-finished
	})
	_, err := c.call("monitor", []any{"Open_vSwitch", "fake-vswitchd", map[string]any{
		"Open_vSwitch": map[string]any{"columns": []string{"next_cfg", "cur_cfg"}},
	}})
	if err != nil {
		tb.Fatalf("fake daemon monitor: %v", err)
	}
}
