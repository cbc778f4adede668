package transform_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/walsearch/walsearch/bus"
	"github.com/walsearch/walsearch/transform"
)

// examples loads the shipped example scripts (scripts/examples) as if they
// were a scripts_dir.
func examples() *transform.Scripts {
	cfg := transform.DefaultScriptConfig()
	cfg.Dir, cfg.ReloadInterval = filepath.Join("..", "scripts", "examples"), 0
	s, err := transform.LoadScripts(cfg)
	if err != nil {
		panic(err)
	}
	return s
}

func row(op bus.Op, schema, table string, id int, lsn bus.LSN, jsonRow string) *bus.Change {
	c := &bus.Change{Op: op, Schema: schema, Table: table, LSN: lsn, Key: []bus.Column{{Name: "id", Value: json.Number(fmt.Sprint(id))}}}
	if jsonRow != "" {
		var ch bus.Change
		if err := bus.Decode([]byte(`{"row":`+jsonRow+`}`), &ch); err != nil {
			panic(err)
		}
		c.Row = ch.Row
	}
	return c
}

func print(docs []*bus.Doc, err error) {
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, d := range docs {
		if d.Source == nil {
			fmt.Println(d.Op, d.Index+"/"+d.ID)
		} else {
			fmt.Println(d.Op, d.Index+"/"+d.ID, string(d.Source))
		}
	}
}

// A script gets the row as doc and returns the document to index: here the
// e-mail is masked, the password hash dropped and full_name computed
// (scripts/examples/users/transform.js).
func ExampleScripts_Map() {
	s := examples()
	defer s.Close()
	print(s.Map(row(bus.OpInsert, "public", "users", 1, 100,
		`{"id": 1, "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "password_hash": "x"}`)))
	// Output:
	// index users/1 {"email":"a***@example.com","first_name":"Ann","id":1,"last_name":"Lee","email_domain":"example.com","full_name":"Ann Lee"}
}

// Returning null keeps a row out of the index, and deletes its document if
// it was indexed before (scripts/examples/posts/transform.js).
func ExampleScripts_Map_filter() {
	s := examples()
	defer s.Close()
	print(s.Map(row(bus.OpInsert, "public", "posts", 7, 100, `{"id": 7, "title": "Hello", "deleted_at": null}`)))
	print(s.Map(row(bus.OpUpdate, "public", "posts", 7, 200, `{"id": 7, "title": "Hello", "deleted_at": "2024-05-01T10:00:00Z"}`)))
	// Output:
	// index posts/7 {"id":7,"title":"Hello"}
	// delete posts/7
}

// Nested jsonb values can be flattened into top-level fields
// (scripts/examples/products/transform.js).
func ExampleScripts_Map_flatten() {
	s := examples()
	defer s.Close()
	print(s.Map(row(bus.OpInsert, "public", "products", 3, 100,
		`{"id": 3, "name": "Shoe", "attributes": {"color": "red", "size": {"eu": 42}}}`)))
	// Output:
	// index products/3 {"id":3,"name":"Shoe","attr_color":"red","attr_size_eu":42}
}

// Setting ctx.index routes a row to another index. The row is deleted from
// every other index the script declares, so an order that moves from the eu
// to the us region leaves orders-eu (scripts/examples/shop.orders/transform.js).
func ExampleScripts_Map_routing() {
	s := examples()
	defer s.Close()
	print(s.Map(row(bus.OpInsert, "shop", "orders", 9, 100, `{"id": 9, "region": "eu"}`)))
	print(s.Map(row(bus.OpUpdate, "shop", "orders", 9, 200, `{"id": 9, "region": "us"}`)))
	print(s.Map(row(bus.OpDelete, "shop", "orders", 9, 300, ``)))
	// Output:
	// index orders-eu/9 {"id":9,"region":"eu"}
	// delete shop.orders/9
	// delete orders-us/9
	// delete orders-other/9
	// index orders-us/9 {"id":9,"region":"us"}
	// delete shop.orders/9
	// delete orders-eu/9
	// delete orders-other/9
	// delete shop.orders/9
	// delete orders-eu/9
	// delete orders-us/9
	// delete orders-other/9
}

// A script that throws dead-letters the change; the error carries the stack.
func ExampleScriptError() {
	dir, _ := os.MkdirTemp("", "scripts")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "users"), 0o755)
	os.WriteFile(filepath.Join(dir, "users", "transform.js"), []byte(`function transform(doc) {
  if (!doc.email) throw new Error("email is required");
  return doc;
}`), 0o644)
	cfg := transform.DefaultScriptConfig()
	cfg.Dir, cfg.ReloadInterval = dir, 0
	s, err := transform.LoadScripts(cfg)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	_, err = s.Map(row(bus.OpInsert, "public", "users", 1, 100, `{"id": 1}`))
	se := err.(*transform.ScriptError)
	fmt.Println(se.Table)
	fmt.Print(strings.ReplaceAll(se.Stack, dir, "scripts"))
	// Output:
	// public.users
	// Error: email is required
	// 	at transform (scripts/users/transform.js:2:25(7))
}
