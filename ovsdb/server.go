package ovsdb

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the server limits.
const (
	DefaultProbeInterval = 5 * time.Second
	DefaultMaxMessage    = 64 << 20
	maxBacklog           = 1 << 30 // queued output per connection
)

// Server serves databases over JSON-RPC (RFC 7047) plus the built-in
// _Server database.
type Server struct {
	// ProbeInterval is the idle time after which a TCP client gets an echo
	// request; it is dropped after as long again without any message. Set
	// it before Listen.
	ProbeInterval time.Duration
	// MaxMessage bounds one received JSON-RPC message.
	MaxMessage int

	dbs      map[string]*Database
	dbNames  []string
	serverDB *Database

	mu        sync.Mutex // guards listeners, conns, closed
	listeners []net.Listener
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup

	lockMu sync.Mutex // guards locks and every conn's owned/waiting locks
	locks  map[string]*lockState
}

type lockState struct {
	owner   *conn
	waiters []*conn
}

// serverSchemaJSON is the schema of the _Server database.
const serverSchemaJSON = `{"name":"_Server","version":"1.2.0","tables":{"Database":{"columns":{` +
	`"name":{"type":"string"},` +
	`"model":{"type":{"key":{"type":"string","enum":["set",["clustered","relay","standalone"]]}}},` +
	`"connected":{"type":"boolean"},` +
	`"leader":{"type":"boolean"},` +
	`"schema":{"type":{"key":{"type":"string"},"min":0,"max":1}},` +
	`"sid":{"type":{"key":{"type":"uuid"},"min":0,"max":1}},` +
	`"cid":{"type":{"key":{"type":"uuid"},"min":0,"max":1}},` +
	`"index":{"type":{"key":{"type":"integer"},"min":0,"max":1}}},"isRoot":true}}}`

// NewServer returns a server for dbs (plus _Server). Call Listen to accept
// clients.
func NewServer(dbs ...*Database) *Server {
	s := &Server{
		ProbeInterval: DefaultProbeInterval,
		MaxMessage:    DefaultMaxMessage,
		dbs:           map[string]*Database{},
		conns:         map[*conn]struct{}{},
		locks:         map[string]*lockState{},
	}
	schema, err := ParseSchema([]byte(serverSchemaJSON))
	if err != nil {
		panic(err)
	}
	s.serverDB = newDatabase(schema)
	s.serverDB.readOnly = true
	all := append([]*Database{}, dbs...)
	all = append(all, s.serverDB)
	var ops []any
	for _, db := range all {
		if _, dup := s.dbs[db.name]; dup {
			continue
		}
		s.dbs[db.name] = db
		s.dbNames = append(s.dbNames, db.name)
		ops = append(ops, map[string]any{"op": "insert", "table": "Database", "row": map[string]any{
			"name": db.name, "model": "standalone", "connected": true, "leader": true,
			"schema": string(db.schema.text),
		}})
	}
	res := s.serverDB.transact(nil, ops, nil)
	for _, r := range res {
		if m, ok := r.(map[string]any); ok && m["error"] != nil {
			panic(fmt.Sprintf("ovsdb: populating _Server: %v", m))
		}
	}
	return s
}

// Listen starts accepting clients on remote: "punix:PATH" (socket mode
// 0750) or "ptcp:PORT[:IP]" (IP defaults to 127.0.0.1; port 0 picks one).
// It returns once the socket is listening; several listeners may coexist.
func (s *Server) Listen(remote string) error {
	var ln net.Listener
	var err error
	probe := false
	switch {
	case strings.HasPrefix(remote, "punix:"):
		path := strings.TrimPrefix(remote, "punix:")
		if st, serr := os.Lstat(path); serr == nil && st.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		ln, err = net.Listen("unix", path)
		if err == nil {
			if cerr := os.Chmod(path, 0o750); cerr != nil {
				ln.Close()
				return fmt.Errorf("ovsdb: chmod %s: %w", path, cerr)
			}
		}
	case strings.HasPrefix(remote, "ptcp:"):
		rest := strings.TrimPrefix(remote, "ptcp:")
		port, ip, _ := strings.Cut(rest, ":")
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if ip == "" {
			ip = "127.0.0.1"
		}
		ln, err = net.Listen("tcp", net.JoinHostPort(ip, port))
		probe = true
	default:
		return fmt.Errorf("ovsdb: unsupported remote %q (want punix:PATH or ptcp:PORT[:IP])", remote)
	}
	if err != nil {
		return fmt.Errorf("ovsdb: listening on %s: %w", remote, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("ovsdb: server closed")
	}
	s.listeners = append(s.listeners, ln)
	s.wg.Add(1)
	s.mu.Unlock()
	go s.accept(ln, probe)
	return nil
}

// Addrs returns the addresses being listened on.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, ln := range s.listeners {
		out = append(out, ln.Addr())
	}
	return out
}

func (s *Server) accept(ln net.Listener, probe bool) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		c := newConn(s, nc, probe)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Close stops listening, disconnects every client and waits for the
// connection goroutines. The databases stay open.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// conn is one client connection. The serve goroutine owns reading,
// dispatching and the monitors map; the write goroutine owns the socket's
// write side; wmu guards the output queue.
type conn struct {
	s     *Server
	nc    net.Conn
	probe bool

	wmu     sync.Mutex
	wcond   *sync.Cond
	queue   [][]byte
	queued  int
	wclosed bool

	lastRecv atomic.Int64 // unix nanos of the last message received
	done     chan struct{}
	once     sync.Once

	monMu    sync.Mutex // guards monitors (serve goroutine and close)
	monitors map[string]*monitor

	pendMu  sync.Mutex               // guards pending
	pending map[string]chan struct{} // cancellable transacts by id

	owned map[string]bool // locks owned or waited for; guarded by Server.lockMu
}

func newConn(s *Server, nc net.Conn, probe bool) *conn {
	c := &conn{s: s, nc: nc, probe: probe, done: make(chan struct{}),
		monitors: map[string]*monitor{}, pending: map[string]chan struct{}{}, owned: map[string]bool{}}
	c.wcond = sync.NewCond(&c.wmu)
	c.lastRecv.Store(time.Now().UnixNano())
	return c
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
		c.wmu.Lock()
		c.wclosed = true
		c.queue = nil
		c.wcond.Broadcast()
		c.wmu.Unlock()
	})
}

// send queues one encoded message. It never blocks, so it may be called
// with a database's txMu held; a client too slow to drain its backlog is
// disconnected.
func (c *conn) send(msg []byte) {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return
	}
	c.queue = append(c.queue, msg)
	c.queued += len(msg)
	over := c.queued > maxBacklog
	c.wcond.Signal()
	c.wmu.Unlock()
	if over {
		slog.Warn("ovsdb: client backlog too large, disconnecting", "remote", c.nc.RemoteAddr().String())
		c.close()
	}
}

func (c *conn) sendJSON(v any) {
	b, err := marshal(v)
	if err != nil {
		slog.Error("ovsdb: encoding message", "err", err)
		return
	}
	c.send(b)
}

// Wire shapes, in ovsdb-server's member order.
type (
	replyMsg struct {
		ID     any `json:"id"`
		Result any `json:"result"`
		Error  any `json:"error"`
	}
	errorMsg struct {
		ID    any `json:"id"`
		Error any `json:"error"`
	}
	notifyMsg struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
		Params []any  `json:"params"`
	}
)

func (c *conn) reply(id any, result any) {
	c.sendJSON(replyMsg{ID: id, Result: result})
}

func (c *conn) replyError(id any, e any) {
	c.sendJSON(errorMsg{ID: id, Error: e})
}

func (c *conn) notify(method string, params []any) {
	c.sendJSON(notifyMsg{Method: method, Params: params})
}

func (c *conn) writer() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		c.wmu.Lock()
		for len(c.queue) == 0 && !c.wclosed {
			c.wcond.Wait()
		}
		if c.wclosed {
			c.wmu.Unlock()
			return
		}
		q := c.queue
		c.queue = nil
		c.queued = 0
		c.wmu.Unlock()
		for _, m := range q {
			if _, err := w.Write(m); err != nil {
				c.close()
				return
			}
		}
		if err := w.Flush(); err != nil {
			c.close()
			return
		}
	}
}

func (c *conn) prober() {
	iv := c.s.ProbeInterval
	if iv <= 0 {
		return
	}
	t := time.NewTicker(iv / 5)
	defer t.Stop()
	var probedAt int64
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			last := c.lastRecv.Load()
			idle := time.Duration(now.UnixNano() - last)
			if probedAt != 0 && probedAt < last {
				probedAt = 0
			}
			switch {
			case probedAt != 0 && time.Duration(now.UnixNano()-probedAt) >= iv:
				slog.Info("ovsdb: no response to inactivity probe, disconnecting", "remote", c.nc.RemoteAddr().String())
				c.close()
				return
			case probedAt == 0 && idle >= iv:
				probedAt = now.UnixNano()
				c.sendJSON(notifyMsg{ID: "echo", Method: "echo", Params: []any{}})
			}
		}
	}
}

func (c *conn) serve() {
	defer c.s.wg.Done()
	defer c.cleanup()
	go c.writer()
	if c.probe {
		go c.prober()
	}
	max := c.s.MaxMessage
	if max <= 0 {
		max = DefaultMaxMessage
	}
	mr := newMsgReader(c.nc, max)
	for {
		msg, err := mr.next()
		if err != nil {
			if errors.Is(err, errTooLong) {
				c.replyError(nil, errorf(tagResources, "message exceeds %d bytes", max).object())
				c.flushAndClose()
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				slog.Debug("ovsdb: closing connection", "remote", c.nc.RemoteAddr().String(), "err", err)
			}
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		if err := c.handle(msg); err != nil {
			slog.Debug("ovsdb: protocol error, closing connection", "remote", c.nc.RemoteAddr().String(), "err", err)
			return
		}
	}
}

// flushAndClose lets the writer drain briefly before closing.
func (c *conn) flushAndClose() {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		c.wmu.Lock()
		empty := len(c.queue) == 0
		c.wmu.Unlock()
		if empty {
			time.Sleep(10 * time.Millisecond)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *conn) cleanup() {
	c.close()
	c.monMu.Lock()
	mons := c.monitors
	c.monitors = map[string]*monitor{}
	c.monMu.Unlock()
	for _, m := range mons {
		m.db.unsubscribe(m)
	}
	c.pendMu.Lock()
	for _, ch := range c.pending {
		close(ch)
	}
	c.pending = map[string]chan struct{}{}
	c.pendMu.Unlock()
	c.s.releaseLocks(c)
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
}

var errTooLong = errors.New("message too long")

// msgReader splits the incoming byte stream into JSON values. The JSON
// decoder reports a syntax error as soon as the bad byte arrives (it does
// not wait for the value to end); limit bounds the bytes of one message.
type msgReader struct {
	dec *json.Decoder
	lr  *limitReader
}

type limitReader struct {
	r    io.Reader
	n    int64 // bytes read so far
	base int64 // stream offset where the current message starts
	max  int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n-l.base > l.max {
		return 0, errTooLong
	}
	if room := l.max + 1 - (l.n - l.base); int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

func newMsgReader(r io.Reader, max int) *msgReader {
	lr := &limitReader{r: r, max: int64(max)}
	dec := json.NewDecoder(lr)
	dec.UseNumber()
	return &msgReader{dec: dec, lr: lr}
}

// next decodes the next JSON value (numbers as json.Number).
func (m *msgReader) next() (any, error) {
	var v any
	start := m.dec.InputOffset()
	err := m.dec.Decode(&v)
	end := m.dec.InputOffset()
	m.lr.base = end
	if err != nil {
		return nil, err
	}
	if end-start > m.lr.max {
		return nil, errTooLong
	}
	return v, nil
}

// handle dispatches one decoded message; an error closes the connection.
func (c *conn) handle(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return errors.New("message is not a JSON object")
	}
	id, hasID := m["id"]
	method, isReq := m["method"].(string)
	if !isReq {
		if _, ok := m["method"]; ok {
			return errors.New("method is not a string")
		}
		_, hasRes := m["result"]
		_, hasErr := m["error"]
		if hasRes || hasErr {
			return nil // a reply to our echo probe
		}
		return errors.New("message is neither request nor reply")
	}
	pv, ok := m["params"]
	if !ok {
		return errors.New("request lacks params")
	}
	params, ok := pv.([]any)
	if !ok {
		return errors.New("params is not an array")
	}
	if !hasID || id == nil {
		c.notification(method, params)
		return nil
	}
	c.request(id, method, params)
	return nil
}

func (c *conn) notification(method string, params []any) {
	switch method {
	case "cancel":
		if len(params) == 1 {
			key := jsonText(params[0])
			c.pendMu.Lock()
			if ch := c.pending[key]; ch != nil {
				close(ch)
				delete(c.pending, key)
			}
			c.pendMu.Unlock()
		}
	}
}

func (c *conn) db(id any, method string, params []any) *Database {
	if len(params) == 0 {
		c.replyError(id, &Error{Tag: tagSyntax, Details: method + " request params must begin with <db-name>", Syntax: jsonText(params)})
		return nil
	}
	name, _ := params[0].(string)
	db := c.s.dbs[name]
	if db == nil {
		c.replyError(id, (&Error{Tag: tagUnknownDB, Details: fmt.Sprintf("%s request specifies unknown database %s", method, jsonText(params[0])), Syntax: jsonText(params)}).object())
		return nil
	}
	return db
}

func (c *conn) request(id any, method string, params []any) {
	switch method {
	case "echo":
		c.reply(id, params)
	case "list_dbs":
		names := make([]any, len(c.s.dbNames))
		for i, n := range c.s.dbNames {
			names[i] = n
		}
		c.reply(id, names)
	case "get_schema":
		if db := c.db(id, method, params); db != nil {
			c.reply(id, json.RawMessage(db.schema.text))
		}
	case "transact":
		db := c.db(id, method, params)
		if db == nil {
			return
		}
		ops := params[1:]
		if db.readOnly {
			for i, o := range ops {
				if om, ok := o.(map[string]any); ok {
					switch om["op"] {
					case "insert", "update", "mutate", "delete":
						res := make([]any, len(ops))
						res[i] = errorf(tagNotAllowed, "database %s is read-only", db.name).object()
						c.reply(id, res)
						return
					}
				}
			}
		}
		if hasTimedWait(ops) {
			key := jsonText(id)
			ch := make(chan struct{})
			c.pendMu.Lock()
			c.pending[key] = ch
			c.pendMu.Unlock()
			go func() {
				res := db.transact(c, ops, ch)
				c.pendMu.Lock()
				delete(c.pending, key)
				c.pendMu.Unlock()
				c.reply(id, res)
			}()
			return
		}
		c.reply(id, db.transact(c, ops, nil))
	case "monitor", "monitor_cond", "monitor_cond_since":
		c.monitor(id, method, params)
	case "monitor_cancel":
		if len(params) != 1 {
			c.replyError(id, errorf(tagSyntax, "monitor_cancel takes one parameter").object())
			return
		}
		key := jsonText(params[0])
		c.monMu.Lock()
		m := c.monitors[key]
		delete(c.monitors, key)
		c.monMu.Unlock()
		if m == nil {
			c.replyError(id, "unknown monitor")
			return
		}
		m.db.unsubscribe(m)
		c.reply(id, map[string]any{})
	case "monitor_cond_change":
		c.condChange(id, params)
	case "lock", "steal", "unlock":
		if len(params) != 1 {
			c.replyError(id, errorf(tagSyntax, "%s takes one parameter", method).object())
			return
		}
		name, ok := params[0].(string)
		if !ok || !idRE.MatchString(name) {
			c.replyError(id, errorf(tagSyntax, "lock name must be an id").object())
			return
		}
		c.s.lockOp(c, id, method, name)
	case "set_db_change_aware":
		c.reply(id, map[string]any{})
	default:
		c.replyError(id, "unknown method")
	}
}

func hasTimedWait(ops []any) bool {
	for _, o := range ops {
		om, ok := o.(map[string]any)
		if !ok || om["op"] != "wait" {
			continue
		}
		if t, err := jsonInt(om["timeout"]); err == nil && t > 0 {
			return true
		}
		if _, ok := om["timeout"]; !ok {
			return true
		}
	}
	return false
}

func (c *conn) monitor(id any, method string, params []any) {
	version := map[string]int{"monitor": 1, "monitor_cond": 2, "monitor_cond_since": 3}[method]
	db := c.db(id, method, params)
	if db == nil {
		return
	}
	if len(params) < 3 {
		c.replyError(id, errorf(tagSyntax, "%s requires [db, id, requests]", method).object())
		return
	}
	tables, err := parseMonitorRequests(db, params[2], version)
	if err != nil {
		c.replyError(id, asError(err).object())
		return
	}
	m := &monitor{conn: c, db: db, id: params[1], version: version, tables: tables}
	key := jsonText(params[1])
	c.monMu.Lock()
	if _, dup := c.monitors[key]; dup {
		c.monMu.Unlock()
		c.replyError(id, (&Error{Tag: tagSyntax, Details: "duplicate monitor ID", Syntax: jsonText(params[1])}).object())
		return
	}
	c.monitors[key] = m
	c.monMu.Unlock()
	db.subscribe(m, func() {
		init := m.initialJSON()
		if version == 3 {
			c.reply(id, []any{false, zeroTxnID, init})
		} else {
			c.reply(id, init)
		}
	})
}

func (c *conn) condChange(id any, params []any) {
	if len(params) != 3 {
		c.replyError(id, errorf(tagSyntax, "monitor_cond_change requires [old-id, new-id, changes]").object())
		return
	}
	oldKey, newKey := jsonText(params[0]), jsonText(params[1])
	c.monMu.Lock()
	m := c.monitors[oldKey]
	if m != nil && oldKey != newKey {
		if _, dup := c.monitors[newKey]; dup {
			c.monMu.Unlock()
			c.replyError(id, (&Error{Tag: tagSyntax, Details: "duplicate monitor ID", Syntax: jsonText(params[1])}).object())
			return
		}
	}
	c.monMu.Unlock()
	if m == nil || m.version == 1 {
		c.replyError(id, "unknown monitor")
		return
	}
	var cerr error
	m.db.txMu.Lock()
	updates, cerr := m.changeConditions(params[2])
	if cerr == nil {
		m.id = params[1]
		c.reply(id, map[string]any{})
		if len(updates) > 0 {
			c.notify(m.method(), m.params(updates))
		}
	}
	m.db.txMu.Unlock()
	if cerr != nil {
		c.replyError(id, asError(cerr).object())
		return
	}
	if oldKey != newKey {
		c.monMu.Lock()
		delete(c.monitors, oldKey)
		c.monitors[newKey] = m
		c.monMu.Unlock()
	}
}

// ownsLock implements lockOwner for "assert".
func (c *conn) ownsLock(name string) bool {
	c.s.lockMu.Lock()
	defer c.s.lockMu.Unlock()
	l := c.s.locks[name]
	return l != nil && l.owner == c
}

func (s *Server) lockOp(c *conn, id any, method, name string) {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	l := s.locks[name]
	if l == nil {
		l = &lockState{}
		s.locks[name] = l
	}
	switch method {
	case "lock":
		if c.owned[name] {
			c.replyError(id, (&Error{Tag: tagSyntax, Details: `must issue "unlock" before new "lock"`, Syntax: jsonText([]any{name})}).object())
			return
		}
		c.owned[name] = true
		if l.owner == nil {
			l.owner = c
			c.reply(id, map[string]any{"locked": true})
			return
		}
		l.waiters = append(l.waiters, c)
		c.reply(id, map[string]any{"locked": false})
	case "steal":
		prev := l.owner
		l.owner = c
		c.owned[name] = true
		l.removeWaiter(c)
		c.reply(id, map[string]any{"locked": true})
		if prev != nil && prev != c {
			delete(prev.owned, name)
			prev.notify("stolen", []any{name})
		}
	case "unlock":
		if !c.owned[name] {
			c.replyError(id, (&Error{Tag: tagSyntax, Details: `unlock: "unlock" without "lock" or "steal"`, Syntax: jsonText([]any{name})}).object())
			return
		}
		delete(c.owned, name)
		c.reply(id, map[string]any{})
		s.release(l, c, name)
	}
}

func (l *lockState) removeWaiter(c *conn) {
	for i, w := range l.waiters {
		if w == c {
			l.waiters = append(l.waiters[:i:i], l.waiters[i+1:]...)
			return
		}
	}
}

// release drops c from lock l (lockMu held), handing it to the next waiter.
func (s *Server) release(l *lockState, c *conn, name string) {
	if l.owner == c {
		l.owner = nil
		if len(l.waiters) > 0 {
			l.owner = l.waiters[0]
			l.waiters = l.waiters[1:]
			l.owner.notify("locked", []any{name})
		}
	} else {
		l.removeWaiter(c)
	}
	if l.owner == nil && len(l.waiters) == 0 {
		delete(s.locks, name)
	}
}

func (s *Server) releaseLocks(c *conn) {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	for name := range c.owned {
		if l := s.locks[name]; l != nil {
			s.release(l, c, name)
		}
	}
	c.owned = map[string]bool{}
}

// Clients is the number of connected JSON-RPC clients.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
