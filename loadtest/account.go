package loadtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// Accounting is where every line written ended up.
type Accounting struct {
	Written      int `json:"written"`
	Indexed      int `json:"indexed"`       // found once in Elasticsearch, as expected
	DeadLettered int `json:"dead_lettered"` // found once in a dead-letter topic, as expected
	// Missing lines were found nowhere; Duplicated more than once;
	// Misplaced once, but not where expected (a line that should have been
	// indexed is in a dead-letter topic, or the other way round). Each
	// lists up to maxListed markers.
	Missing           int            `json:"missing"`
	MissingList       []string       `json:"missing_list,omitempty"`
	Duplicated        int            `json:"duplicated"`
	DuplicatedList    []string       `json:"duplicated_list,omitempty"`
	Misplaced         int            `json:"misplaced"`
	MisplacedList     []string       `json:"misplaced_list,omitempty"`
	Unknown           int            `json:"unknown"` // markers found that were never written
	DeadLetterReasons map[string]int `json:"dead_letter_reasons"`
	// DeadLetterRepeats are dead letters of a line already dead-lettered
	// under the same record id (the shipper sent the line again after a
	// crash): at least once, like a document answered 409.
	DeadLetterRepeats int                          `json:"dead_letter_repeats"`
	Documents         int                          `json:"documents"` // documents scanned
	Indices           []string                     `json:"indices"`   // the indices scanned, <prefix>-*
	PerTenant         map[string]*TenantAccounting `json:"per_tenant"`
}

// TenantAccounting is a tenant's part of Accounting.
type TenantAccounting struct {
	Written      int `json:"written"`
	Indexed      int `json:"indexed"`
	DeadLettered int `json:"dead_lettered"`
	Missing      int `json:"missing"`
	Duplicated   int `json:"duplicated"`
	// Misplaced counts, besides lines in the wrong place, lines indexed
	// under another tenant (their document's tenant field).
	Misplaced int `json:"misplaced"`
	// Documents are the documents whose tenant field is the tenant, in
	// its own indices or in the shared ones, whichever its layout.
	Documents int `json:"documents"`
}

// OK reports whether every line is where it should be, exactly once.
func (a *Accounting) OK() bool {
	return a.Missing == 0 && a.Duplicated == 0 && a.Misplaced == 0 && a.Unknown == 0 &&
		a.Indexed+a.DeadLettered == a.Written
}

const maxListed = 100

// tally counts where each line of each node was found.
type tally struct {
	es, dlq [][]uint8 // by node, then seq; saturating at 255
	unknown int
}

func (t *tally) add(counts [][]uint8, node, seq int) {
	if node >= len(counts) || seq >= len(counts[node]) {
		t.unknown++
		return
	}
	if counts[node][seq] < 255 {
		counts[node][seq]++
	}
}

// account scans every document of the run's indices and every dead letter,
// and compares them with what was written.
func (r *run) account(ctx context.Context) (*Accounting, error) {
	t := &tally{}
	for _, w := range r.writers {
		t.es = append(t.es, make([]uint8, w.Lines()))
		t.dlq = append(t.dlq, make([]uint8, w.Lines()))
	}
	// A document may hold a marker twice (a JSON line's seq is parsed into
	// an attribute and stays in log): each counts once per document.
	// A tenant's documents are told by their tenant field, which holds in
	// both index layouts (a dedicated index holds one tenant's, a shared
	// one every shared tenant's); a line indexed under another tenant is
	// misplaced.
	seen := map[[2]int]bool{}
	wrongTenant := map[[2]int]bool{}
	docsOf := map[string]int{}
	docs, indices, err := r.scanIndices(ctx, func(source []byte) {
		clear(seen)
		tenant := docTenant(source)
		docsOf[tenant]++
		FindMarkers(source, func(node, seq int) {
			if !seen[[2]int{node, seq}] {
				seen[[2]int{node, seq}] = true
				t.add(t.es, node, seq)
				if node < len(r.writers) && seq < len(t.es[node]) && r.writers[node].Tenant(seq) != tenant {
					wrongTenant[[2]int{node, seq}] = true
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	// Dead letters are at least once: a line the shipper sent again after
	// a crash is dead-lettered again, under the same record id, as
	// Elasticsearch would answer 409 for a document. Such repeats are
	// counted apart; the same line under another record id is a duplicate.
	reasons := map[string]int{}
	dlqID := map[[2]int]string{}
	repeats := 0
	dec := schemas.NewDecoder()
	err = r.readDeadLetters(ctx, func(dl *schemas.DeadLetter, payload []byte) {
		id := fmt.Sprintf("%s/%d/%d", dl.Topic, dl.Partition, dl.Offset)
		if rec, _, err := dec.Decode(ctx, payload); err == nil && rec.ID != "" {
			id = rec.ID
		}
		FindMarkers(payload, func(node, seq int) {
			key := [2]int{node, seq}
			if first, ok := dlqID[key]; ok && first == id {
				repeats++
				return
			}
			dlqID[key] = id
			t.add(t.dlq, node, seq)
			reasons[dl.Stage+": "+dl.Reason]++
		})
	})
	if err != nil {
		return nil, err
	}
	a := &Accounting{Documents: docs, Indices: indices, Unknown: t.unknown, DeadLetterReasons: reasons, DeadLetterRepeats: repeats,
		PerTenant: map[string]*TenantAccounting{}}
	for _, tenant := range r.s.Tenants {
		a.PerTenant[tenant] = &TenantAccounting{Documents: docsOf[tenant]}
	}
	list := func(l *[]string, m string) {
		if len(*l) < maxListed {
			*l = append(*l, m)
		}
	}
	for node, w := range r.writers {
		for seq := range w.Lines() {
			pt := a.PerTenant[w.Tenant(seq)]
			a.Written++
			pt.Written++
			es, dlq := int(t.es[node][seq]), int(t.dlq[node][seq])
			m := Marker(node, seq)
			switch want := w.Expect(seq); {
			case es+dlq == 0:
				a.Missing++
				pt.Missing++
				list(&a.MissingList, m)
			case es+dlq > 1:
				a.Duplicated++
				pt.Duplicated++
				list(&a.DuplicatedList, m)
			case want == Indexed && es == 1 && !wrongTenant[[2]int{node, seq}]:
				a.Indexed++
				pt.Indexed++
			case want == DeadLettered && dlq == 1:
				a.DeadLettered++
				pt.DeadLettered++
			default:
				a.Misplaced++
				pt.Misplaced++
				list(&a.MisplacedList, m)
			}
		}
	}
	return a, nil
}

// docTenant returns the tenant field of an indexer's document: the first
// "tenant" member, which the indexer writes right after @timestamp (an
// attribute of that name is moved aside), or "" for none.
func docTenant(source []byte) string {
	const key = `"tenant":"`
	i := bytes.Index(source, []byte(key))
	if i < 0 {
		return ""
	}
	rest := source[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return ""
	}
	return string(rest[:end])
}

// scanIndices calls fn with the _source of every document in the run's
// indices (<prefix>-*: the dedicated and the shared ones), index by index, paged with search_after. Elasticsearch does not
// sort on _id, so the sort is where the shipper read the line:
// sluice.source.path and offset, which repeat across a file's rotations,
// then @timestamp, which tells the generations apart. Each index's count
// of documents is checked against what the scan saw, so that a tie in the
// sort cannot hide a document.
func (r *run) scanIndices(ctx context.Context, fn func(source []byte)) (docs int, names []string, err error) {
	var indices []struct {
		Index string `json:"index"`
		Docs  string `json:"docs.count"`
	}
	if err := esDo(ctx, r.es, http.MethodGet, "/_cat/indices/"+indexPrefix+"-*?format=json&h=index,docs.count", nil, &indices); err != nil {
		return 0, nil, fmt.Errorf("list indices: %w", err)
	}
	const page = 10000 // index.max_result_window
	for _, ix := range indices {
		names = append(names, ix.Index)
		var after []any
		seen := 0
		for {
			q := map[string]any{
				"size": page,
				"sort": []any{
					map[string]any{"sluice.source.path": "asc"}, map[string]any{"sluice.source.offset": "asc"},
					map[string]any{"@timestamp": "asc"},
				},
				"query": map[string]any{"match_all": map[string]any{}},
			}
			if after != nil {
				q["search_after"] = after
			}
			body, _ := json.Marshal(q)
			hits, err := search(ctx, r.es, "/"+ix.Index+"/_search", body)
			if err != nil {
				return docs, names, err
			}
			for _, h := range hits {
				fn(h.Source)
			}
			seen += len(hits)
			if len(hits) < page {
				break
			}
			after = hits[len(hits)-1].Sort
		}
		docs += seen
		if want, err := strconv.Atoi(ix.Docs); err == nil && want != seen {
			return docs, names, fmt.Errorf("index %s holds %d documents but the scan saw %d (documents with equal sort keys)", ix.Index, want, seen)
		}
	}
	slices.Sort(names)
	return docs, names, nil
}

// readDeadLetters reads every tenant's dead-letter topic from its start to
// its end and calls fn with each dead letter and its original payload.
func (r *run) readDeadLetters(ctx context.Context, fn func(dl *schemas.DeadLetter, payload []byte)) error {
	var topics []string
	for _, t := range r.s.Tenants {
		topics = append(topics, r.topics.DLQ(t))
	}
	// Control records are kept so that the reader sees each partition's
	// end: a transactional partition ends with a commit or abort marker,
	// never a record a read_committed reader would get. (Reading until a
	// fetch finds nothing for a while took a slow first fetch for the end.)
	cl, err := r.client(kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("dead-letter topics: %w", err)
	}
	remaining := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if remaining[o.Topic] == nil {
				remaining[o.Topic] = map[int32]int64{}
			}
			remaining[o.Topic][o.Partition] = o.Offset
		}
	})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("dead-letter topics not read to their ends: %w", err)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			if end, ok := remaining[rec.Topic][rec.Partition]; ok && rec.Offset >= end-1 {
				delete(remaining[rec.Topic], rec.Partition)
				if len(remaining[rec.Topic]) == 0 {
					delete(remaining, rec.Topic)
				}
			}
			if rec.Attrs.IsControl() {
				return
			}
			var dl schemas.DeadLetter
			if err := json.Unmarshal(rec.Value, &dl); err != nil {
				return
			}
			payload := []byte(dl.Payload)
			if dl.PayloadEncoding == "base64" {
				payload, _ = base64.StdEncoding.DecodeString(dl.Payload)
			}
			fn(&dl, payload)
		})
	}
	return nil
}
