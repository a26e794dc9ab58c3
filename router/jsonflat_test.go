package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// flattenJSONRef is the straightforward encoding/json version of
// flattenJSON, kept as the reference for FuzzJSONFlattenDifferential.
// flattenJSONRef parses s, which must hold one JSON object, and calls set for
// every leaf with its flattened dotted key (prefix + path). Objects nested
// deeper than depth levels, and arrays holding objects or arrays or more
// than MaxArrayItems items, are passed as their JSON text; other arrays as
// []any. Integral numbers that fit are int64, other numbers float64.
func flattenJSONRef(s, prefix string, depth int, set func(k string, v any)) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("decode json: %w", err)
	}
	if m == nil {
		return errors.New("decode json: not an object")
	}
	if strings.TrimLeft(s[dec.InputOffset():], " \t\r\n") != "" {
		return errors.New("decode json: data after the object")
	}
	flattenMapRef(m, prefix, 1, depth, set)
	return nil
}

func flattenMapRef(m map[string]any, prefix string, level, depth int, set func(string, any)) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + k
		}
		switch x := v.(type) {
		case map[string]any:
			if level >= depth {
				set(key, jsonString(x))
			} else {
				flattenMapRef(x, key+".", level+1, depth, set)
			}
		case []any:
			set(key, arrayRef(x))
		case json.Number:
			set(key, numberValue(x))
		default:
			set(key, x)
		}
	}
}

// arrayRef is an array as flattenJSONRef passes it.
func arrayRef(x []any) any {
	if len(x) > MaxArrayItems {
		return jsonString(x)
	}
	items := make([]any, len(x))
	for i, it := range x {
		switch v := it.(type) {
		case map[string]any, []any:
			return jsonString(x)
		case json.Number:
			items[i] = numberValue(v)
		default:
			items[i] = v
		}
	}
	return items
}

// FuzzJSONFlattenDifferential checks flattenJSON against encoding/json:
// same inputs accepted, same keys and values (kept-as-text values compared
// as decoded JSON).
func FuzzJSONFlattenDifferential(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":{"c":[1,{"d":"\u00e9"}],"e":{"f":{"g":1}}}}`, `{"s":"\ud83d\ude00\ud800x","n":-0.5e-3,"i":-9223372036854775808,"big":1e400}`, "{\"a\":\"\xff\"}", `{"a":1,"a":2}`, `{"a":01}`, ` {} `, `{"a":[1,]}`, `{"t":["x",1,2.5,null,true],"e":[],"n":[[1]],"o":[{}]}`} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, depth int) {
		depth = 1 + (depth%5+5)%5
		got, want := map[string]any{}, map[string]any{}
		collide := false
		err := flattenJSON(s, "", depth, func(k string, v any) {
			_, dup := got[k]
			collide = collide || dup
			got[k] = v
		})
		errRef := flattenJSONRef(s, "", depth, func(k string, v any) {
			_, dup := want[k]
			collide = collide || dup
			want[k] = v
		})
		if (err == nil) != (errRef == nil) {
			t.Fatalf("flattenJSON(%q) error %v, encoding/json error %v", s, err, errRef)
		}
		// Duplicate keys and flattened-key collisions ("a.b" and a:{b})
		// are resolved differently (document order here, map order or
		// whole-value replacement in encoding/json): not compared.
		if err != nil || collide || hasDuplicateKeys(s) {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("keys %v, want %v", got, want)
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Fatalf("key %q missing: %v, want %v", k, got, want)
			}
			if reflect.DeepEqual(g, w) {
				continue
			}
			gs, ok1 := g.(string)
			ws, ok2 := w.(string)
			var gv, wv any
			if ok1 && ok2 && json.Unmarshal([]byte(gs), &gv) == nil && json.Unmarshal([]byte(ws), &wv) == nil && reflect.DeepEqual(gv, wv) {
				continue
			}
			t.Fatalf("key %q = %#v, want %#v", k, g, w)
		}
	})
}

// hasDuplicateKeys reports whether any object in the JSON text s has a key
// twice.
func hasDuplicateKeys(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, key: true})
			case '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
			if top != nil && top.obj {
				top.key = true
			}
		default:
			if top != nil && top.obj {
				top.key = true
			}
		}
	}
}
