package ovsdb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Compaction thresholds: the log is rewritten as one snapshot when it has
// grown past compactFactor times its size after the last snapshot and past
// compactMin bytes.
var (
	compactFactor int64 = 4
	compactMin    int64 = 8 << 20
)

// Database is one OVSDB database: committed tables in memory, an optional
// durable log, and the subscribers (monitors, watchers) told of commits.
type Database struct {
	schema *Schema
	name   string

	// txMu serializes writers: transactions, commit notifications, monitor
	// registration and compaction. Holding it makes the committed state
	// stable without mu.
	txMu    sync.Mutex
	log     *logFile // nil for in-memory databases (_Server)
	subs    map[subscriber]struct{}
	changed chan struct{} // closed and replaced at each commit
	closed  bool

	// mu guards tables (the committed rows) against concurrent readers:
	// commits take it for writing while applying, Read takes it for
	// reading.
	mu     sync.RWMutex
	tables map[string]*tableData

	weakReferrers map[string][]weakRef
	noSync        atomic.Bool
	readOnly      bool     // rejects writes from clients (_Server)
	lock          *os.File // advisory lock held while open
}

// subscriber is told of each commit, with txMu held, in commit order.
type subscriber interface {
	commit(ci *commitInfo)
}

// commitInfo describes one committed transaction.
type commitInfo struct {
	changes []*change
	// versions holds the new _version of each inserted or modified row.
	versions map[UUID]UUID
}

// Name returns the database (schema) name.
func (db *Database) Name() string { return db.name }

// Schema returns the database schema.
func (db *Database) Schema() *Schema { return db.schema }

func newDatabase(schema *Schema) *Database {
	db := &Database{
		schema:        schema,
		name:          schema.Name,
		subs:          map[subscriber]struct{}{},
		changed:       make(chan struct{}),
		tables:        map[string]*tableData{},
		weakReferrers: weakReferrers(schema),
	}
	for _, tn := range schema.TableNames {
		t := schema.Tables[tn]
		td := &tableData{t: t, rows: map[UUID]*rowData{}}
		for range t.Indexes {
			td.idx = append(td.idx, map[string]UUID{})
		}
		db.tables[tn] = td
	}
	return db
}

// NewMemory returns a database without a file.
func NewMemory(schema *Schema) *Database {
	return newDatabase(schema)
}

// Open opens the database file at path, creating it with schema when it
// does not exist, and replays its log. A torn or corrupt tail (from a crash
// during a write) is truncated with a logged warning. If the file holds a
// different schema, its data is converted to schema and the file is
// rewritten.
func Open(path string, schema *Schema) (*Database, error) {
	if schema == nil {
		return nil, errors.New("ovsdb: Open: nil schema")
	}
	db := newDatabase(schema)
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	db.lock = lock
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return nil, fmt.Errorf("ovsdb: creating %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("ovsdb: opening %s: %w", path, err)
	}
	size, rewrite, err := db.replay(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	db.log = newLogFile(path, f, size)
	if size == 0 {
		tok, err := db.log.append(encodeRecord(schema.text))
		if err == nil {
			err = db.log.sync(tok)
		}
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
		if err != nil {
			db.log.close()
			return nil, err
		}
		db.log.base = tok.end
	} else if rewrite {
		if err := db.log.replace(db.snapshot()...); err != nil {
			db.log.close()
			return nil, err
		}
	}
	ok = true
	return db, nil
}

// replay loads the log into memory. It returns the size of the valid
// prefix and whether the file must be rewritten (different schema).
func (db *Database) replay(path string, f *os.File) (int64, bool, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	first := true
	rewrite := false
	for {
		js, n, err := readRecord(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			if first {
				if off == 0 {
					// Crashed while creating the file: start afresh.
					if st, serr := f.Stat(); serr == nil && st.Size() < 4096 {
						slog.Warn("ovsdb: empty or torn database file, recreating", "path", path, "err", err)
						if terr := f.Truncate(0); terr != nil {
							return 0, false, fmt.Errorf("ovsdb: truncating %s: %w", path, terr)
						}
						return 0, false, nil
					}
				}
				return 0, false, fmt.Errorf("ovsdb: %s: bad schema record: %w", path, err)
			}
			slog.Warn("ovsdb: truncating corrupt or torn log tail", "path", path, "offset", off, "err", err)
			if terr := f.Truncate(off); terr != nil {
				return 0, false, fmt.Errorf("ovsdb: truncating %s: %w", path, terr)
			}
			if serr := f.Sync(); serr != nil {
				return 0, false, fmt.Errorf("ovsdb: syncing %s: %w", path, serr)
			}
			break
		}
		if first {
			fs, perr := ParseSchema(js)
			if perr != nil {
				return 0, false, fmt.Errorf("ovsdb: %s: %w", path, perr)
			}
			if fs.Name != db.schema.Name {
				return 0, false, fmt.Errorf("ovsdb: %s holds database %s, not %s", path, fs.Name, db.schema.Name)
			}
			rewrite = !bytes.Equal(fs.text, db.schema.text)
			first = false
		} else if err := db.replayTxn(js); err != nil {
			slog.Warn("ovsdb: truncating unreadable log record", "path", path, "offset", off, "err", err)
			if terr := f.Truncate(off); terr != nil {
				return 0, false, fmt.Errorf("ovsdb: truncating %s: %w", path, terr)
			}
			break
		}
		off += n
	}
	db.rebuild()
	return off, rewrite, nil
}

// replayTxn applies one transaction record.
func (db *Database) replayTxn(js []byte) error {
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		return fmt.Errorf("parsing record: %w", err)
	}
	isDiff, _ := rec["_is_diff"].(bool)
	for tn, tv := range rec {
		if tn == "" || tn[0] == '_' {
			continue
		}
		td := db.tables[tn]
		if td == nil {
			slog.Warn("ovsdb: log names unknown table, ignored", "table", tn)
			continue
		}
		rows, ok := tv.(map[string]any)
		if !ok {
			return fmt.Errorf("table %s: rows must be an object", tn)
		}
		for us, rv := range rows {
			id, err := ParseUUID(us)
			if err != nil {
				return fmt.Errorf("table %s: %w", tn, err)
			}
			if rv == nil {
				delete(td.rows, id)
				continue
			}
			obj, ok := rv.(map[string]any)
			if !ok {
				return fmt.Errorf("table %s row %s: not an object", tn, us)
			}
			old := td.rows[id]
			nr := make(Row, len(td.t.Columns))
			if old != nil {
				for k, v := range old.cols {
					nr[k] = v
				}
			} else {
				for _, cn := range td.t.ColumnNames {
					nr[cn] = defaultValue(&td.t.Columns[cn].Type)
				}
			}
			for cn, cv := range obj {
				c := td.t.Columns[cn]
				if c == nil {
					continue
				}
				ct := &c.Type
				// Diffs apply to columns that may hold several elements;
				// others are written whole.
				diff := isDiff && old != nil && (ct.Max > 1 || ct.IsMap())
				if diff {
					ct = relaxed(ct)
				}
				v, err := parseDatum(ct, cv, nil)
				if err != nil {
					slog.Warn("ovsdb: log value does not fit the schema, ignored", "table", tn, "column", cn, "err", err)
					continue
				}
				if diff {
					v = applyDiff(nr[cn], v)
				}
				nr[cn] = v
			}
			td.rows[id] = &rowData{cols: nr, version: NewUUID()}
		}
	}
	return nil
}

// applyDiff applies an update2-style difference to a set or map value.
func applyDiff(cur, diff any) any {
	switch x := cur.(type) {
	case Set:
		d, _ := diff.(Set)
		var out []any
		for _, a := range x {
			if !d.Contains(a) {
				out = append(out, a)
			}
		}
		for _, a := range d {
			if !x.Contains(a) {
				out = append(out, a)
			}
		}
		s, _ := newSet(out)
		if s == nil {
			s = Set{}
		}
		return s
	case Map:
		d, _ := diff.(Map)
		m := make(Map, len(x))
		for k, v := range x {
			m[k] = v
		}
		for k, v := range d {
			if w, ok := m[k]; ok && compareAtoms(v, w) == 0 {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	return diff
}

// rebuild recomputes reference counts and indexes from the rows.
func (db *Database) rebuild() {
	for _, td := range db.tables {
		for _, r := range td.rows {
			r.refs = 0
		}
	}
	for _, td := range db.tables {
		for i := range td.idx {
			td.idx[i] = map[string]UUID{}
		}
		for id, r := range td.rows {
			forEachRef(td.t, r.cols, false, func(c *Column, rt string, ref UUID) {
				if tr := db.tables[rt].rows[ref]; tr != nil {
					tr.refs++
				}
			})
			for i, cols := range td.t.Indexes {
				td.idx[i][indexKey(r.cols, cols)] = id
			}
		}
	}
}

// snapshot returns the records of a compacted file.
func (db *Database) snapshot() [][]byte {
	rec := map[string]any{}
	for _, tn := range db.schema.TableNames {
		td := db.tables[tn]
		if len(td.rows) == 0 {
			continue
		}
		rows := make(map[string]any, len(td.rows))
		for id, r := range td.rows {
			rows[id.String()] = durableRow(td.t, r.cols, nil)
		}
		rec[tn] = rows
	}
	rec["_date"] = time.Now().UnixMilli()
	rec["_comment"] = "compacted by xvs"
	js, _ := marshal(rec)
	return [][]byte{encodeRecord(db.schema.text), encodeRecord(js)}
}

// durableRow returns the JSON of the non-ephemeral columns of r: all of
// those holding a non-default value, or only cols when given.
func durableRow(t *Table, r Row, cols []string) map[string]any {
	out := map[string]any{}
	if cols == nil {
		for _, cn := range t.ColumnNames {
			c := t.Columns[cn]
			if c.Ephemeral || isDefault(&c.Type, r[cn]) {
				continue
			}
			out[cn] = datumJSON(r[cn])
		}
		return out
	}
	for _, cn := range cols {
		if t.Columns[cn].Ephemeral {
			continue
		}
		out[cn] = datumJSON(r[cn])
	}
	return out
}

// Close flushes and closes the database file. Transactions after Close fail.
func (db *Database) Close() error {
	db.txMu.Lock()
	defer db.txMu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	for sub := range db.subs {
		if w, ok := sub.(*watcher); ok {
			w.stop()
		}
	}
	var err error
	if db.log != nil {
		err = db.log.close()
	}
	if db.lock != nil {
		db.lock.Close()
	}
	return err
}

// transact executes a transaction (the ops array of an RFC 7047 transact
// request) and returns its results array. It returns once the commit is
// durable. cancel, if not nil, abandons a transaction blocked in a wait.
func (db *Database) transact(owner lockOwner, ops []any, cancel <-chan struct{}) []any {
	noRetry := false
	for {
		db.txMu.Lock()
		if db.closed {
			db.txMu.Unlock()
			return []any{errorf(tagIOError, "database closed").object()}
		}
		tx := &txn{db: db, owner: owner, changes: map[*tableData]map[UUID]*change{},
			syms: map[string]UUID{}, created: map[string]bool{}, noRetry: noRetry}
		results, ok, err := tx.execute(ops)
		if err != nil {
			// A wait with a timeout is not satisfied: retry after the
			// next commit, or fail at the deadline.
			var wr *waitRetry
			errors.As(err, &wr)
			ch := db.changed
			db.txMu.Unlock()
			timer := time.NewTimer(time.Until(wr.deadline))
			select {
			case <-ch:
			case <-timer.C:
				noRetry = true
			case <-cancel:
				timer.Stop()
				return []any{errorf(tagCanceled, "canceled").object()}
			}
			timer.Stop()
			continue
		}
		if !ok {
			db.txMu.Unlock()
			return results
		}
		tok, cerr := db.commit(tx)
		db.txMu.Unlock()
		if cerr == nil && db.log != nil && tok.end > 0 && !db.noSync.Load() {
			cerr = db.log.sync(tok)
		}
		if cerr != nil {
			return append(results, errorf(tagIOError, "%v", cerr).object())
		}
		return results
	}
}

// commit writes tx to the log, applies it and notifies subscribers. Called
// with txMu held.
func (db *Database) commit(tx *txn) (syncToken, error) {
	if len(tx.order) == 0 {
		return syncToken{}, nil
	}
	var tok syncToken
	if db.log != nil {
		rec := map[string]any{}
		for _, ch := range tx.order {
			t := ch.td.t
			var rv any
			switch {
			case ch.new == nil:
				rv = nil
			case ch.old == nil:
				rv = durableRow(t, ch.new, nil)
			default:
				// Like ovsdb-server, modified set and map columns are
				// written as differences ("_is_diff"), so a record's
				// size follows the change, not the column.
				m := map[string]any{}
				for _, cn := range ch.cols {
					c := t.Columns[cn]
					if c.Ephemeral {
						continue
					}
					m[cn] = diffJSON(&c.Type, ch.old.cols[cn], ch.new[cn])
				}
				if len(m) == 0 {
					continue
				}
				rv = m
			}
			tm, _ := rec[t.Name].(map[string]any)
			if tm == nil {
				tm = map[string]any{}
				rec[t.Name] = tm
			}
			tm[ch.uuid.String()] = rv
		}
		if len(rec) > 0 {
			rec["_date"] = time.Now().UnixMilli()
			rec["_is_diff"] = true
			if len(tx.comments) > 0 {
				c := tx.comments[0]
				for _, s := range tx.comments[1:] {
					c += "\n" + s
				}
				rec["_comment"] = c
			}
			js, err := marshal(rec)
			if err != nil {
				return syncToken{}, fmt.Errorf("ovsdb: encoding log record: %w", err)
			}
			if tok, err = db.log.append(encodeRecord(js)); err != nil {
				return syncToken{}, err
			}
		}
	}
	ci := &commitInfo{changes: tx.order, versions: make(map[UUID]UUID, len(tx.order))}
	db.mu.Lock()
	for _, ch := range tx.order {
		td := ch.td
		if ch.old != nil {
			for i, cols := range td.t.Indexes {
				k := indexKey(ch.old.cols, cols)
				if td.idx[i][k] == ch.uuid {
					delete(td.idx[i], k)
				}
			}
		}
		if ch.new == nil {
			delete(td.rows, ch.uuid)
			continue
		}
		rd := &rowData{cols: ch.new, version: NewUUID()}
		if ch.old != nil {
			rd.refs = ch.old.refs
		}
		td.rows[ch.uuid] = rd
		ci.versions[ch.uuid] = rd.version
	}
	for _, ch := range tx.order {
		if ch.new == nil {
			continue
		}
		for i, cols := range ch.td.t.Indexes {
			ch.td.idx[i][indexKey(ch.new, cols)] = ch.uuid
		}
	}
	for id, d := range tx.delta {
		if d == 0 {
			continue
		}
		if td := tx.deltaTbl[id]; td != nil {
			if r := td.rows[id]; r != nil {
				r.refs += d
			}
		}
	}
	db.mu.Unlock()
	for s := range db.subs {
		s.commit(ci)
	}
	close(db.changed)
	db.changed = make(chan struct{})
	if db.log != nil {
		if w, base := db.log.size(); w > compactFactor*base && w > compactMin {
			// The snapshot includes this transaction; compaction errors
			// leave the old file in use.
			if err := db.log.replace(db.snapshot()...); err != nil {
				slog.Warn("ovsdb: compaction failed", "path", db.log.path, "err", err)
			} else {
				_, base := db.log.size()
				slog.Info("ovsdb: compacted database file", "path", db.log.path, "before", w, "after", base)
			}
		}
	}
	return tok, nil
}

// SetNoSync turns off (or back on) the flush to disk that every commit
// waits for. Without it an acknowledged transaction still survives the
// death of the process (its record is written before the reply) but not a
// crash of the machine, as with ovsdb-server, which never fsyncs commits.
func (db *Database) SetNoSync(noSync bool) { db.noSync.Store(noSync) }

// Compact rewrites the database file as a single snapshot.
func (db *Database) Compact() error {
	db.txMu.Lock()
	defer db.txMu.Unlock()
	if db.closed || db.log == nil {
		return errors.New("ovsdb: Compact: database has no open file")
	}
	return db.log.replace(db.snapshot()...)
}

// subscribe registers s; initial runs first, with the state s starts from
// stable (txMu held).
func (db *Database) subscribe(s subscriber, initial func()) {
	db.txMu.Lock()
	defer db.txMu.Unlock()
	if initial != nil {
		initial()
	}
	db.subs[s] = struct{}{}
}

func (db *Database) unsubscribe(s subscriber) {
	db.txMu.Lock()
	defer db.txMu.Unlock()
	delete(db.subs, s)
}

// Transact executes ops, the params of an RFC 7047 "transact" request
// without the leading database name, and returns the results array exactly
// as the wire would. It returns after the commit is durable; monitors see
// the change like any other commit. err is nil when the transaction
// committed; otherwise it is the first *Error found in the results (which
// are returned too), or a decoding error when ops is not a JSON array.
func (db *Database) Transact(ops json.RawMessage) (json.RawMessage, error) {
	var arr []any
	dec := json.NewDecoder(bytes.NewReader(ops))
	dec.UseNumber()
	if err := dec.Decode(&arr); err != nil {
		return nil, fmt.Errorf("ovsdb: Transact: ops must be a JSON array: %w", err)
	}
	res := db.transact(nil, arr, nil)
	out, err := marshal(res)
	if err != nil {
		return nil, fmt.Errorf("ovsdb: Transact: encoding results: %w", err)
	}
	for _, r := range res {
		if m, ok := r.(map[string]any); ok {
			if tag, ok := m["error"].(string); ok {
				d, _ := m["details"].(string)
				return out, &Error{Tag: tag, Details: d}
			}
		}
	}
	return out, nil
}

// ReadTx is a consistent read-only view of a database, valid only inside
// the Read callback.
type ReadTx struct {
	db *Database
}

// Rows returns the rows of table (nil for an unknown table) keyed by UUID.
// The map is new; the rows are shared and must not be modified.
func (tx *ReadTx) Rows(table string) map[UUID]Row {
	td := tx.db.tables[table]
	if td == nil {
		return nil
	}
	out := make(map[UUID]Row, len(td.rows))
	for id, r := range td.rows {
		out[id] = r.cols
	}
	return out
}

// Get returns one row.
func (tx *ReadTx) Get(table string, id UUID) (Row, bool) {
	td := tx.db.tables[table]
	if td == nil {
		return nil, false
	}
	r := td.rows[id]
	if r == nil {
		return nil, false
	}
	return r.cols, true
}

// Version returns the _version of a row.
func (tx *ReadTx) Version(table string, id UUID) (UUID, bool) {
	td := tx.db.tables[table]
	if td == nil {
		return UUID{}, false
	}
	r := td.rows[id]
	if r == nil {
		return UUID{}, false
	}
	return r.version, true
}

// Read calls fn with a consistent snapshot of the committed state. Commits
// wait while fn runs, so fn should be quick and must not call Transact.
func (db *Database) Read(fn func(tx *ReadTx)) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	fn(&ReadTx{db: db})
}

// RowChange is one row of an Update: Old is nil for an inserted row, New
// is nil for a deleted one.
type RowChange struct {
	Old, New Row
}

// Update describes one committed transaction: table name -> row UUID ->
// change. Only rows that really changed appear.
type Update struct {
	Tables map[string]map[UUID]RowChange
}

type watcher struct {
	fn     func(*Update)
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*Update
	closed bool
}

func (w *watcher) commit(ci *commitInfo) {
	u := &Update{Tables: map[string]map[UUID]RowChange{}}
	for _, ch := range ci.changes {
		m := u.Tables[ch.td.t.Name]
		if m == nil {
			m = map[UUID]RowChange{}
			u.Tables[ch.td.t.Name] = m
		}
		var old Row
		if ch.old != nil {
			old = ch.old.cols
		}
		m[ch.uuid] = RowChange{Old: old, New: ch.new}
	}
	w.mu.Lock()
	w.queue = append(w.queue, u)
	w.cond.Signal()
	w.mu.Unlock()
}

func (w *watcher) stop() {
	w.mu.Lock()
	w.closed = true
	w.queue = nil
	w.cond.Signal()
	w.mu.Unlock()
}

func (w *watcher) run() {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed {
			w.cond.Wait()
		}
		if w.closed {
			w.mu.Unlock()
			return
		}
		u := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.mu.Unlock()
		w.fn(u)
	}
}

// Watch calls fn after each commit with the rows it changed. Calls come in
// commit order from one goroutine owned by this watch (so fn may call
// Transact or Read); a slow fn delays only its own later calls. cancel stops
// further calls (a call in progress completes).
func (db *Database) Watch(fn func(u *Update)) (cancel func()) {
	w := &watcher{fn: fn}
	w.cond = sync.NewCond(&w.mu)
	db.subscribe(w, nil)
	go w.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			db.unsubscribe(w)
			w.stop()
		})
	}
}
