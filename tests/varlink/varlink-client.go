// A Varlink client nobody on this project wrote: the Go library Debian
// packages (golang-github-varlink-go-dev), used as a stock client would use
// it, to show that an aetask worker socket speaks Varlink.
//
//	varlink-client ADDRESS info
//	varlink-client ADDRESS describe INTERFACE
//	varlink-client ADDRESS call METHOD [ARGS-JSON-ARRAY]
//	varlink-client ADDRESS raw VARLINK-METHOD [PARAMETERS-JSON]
//
// "call" calls io.aetask.Call (METHOD "-" for the catch-all); "raw"
// any Varlink method, and prints the reply's parameters.
// "describe" also checks that the description parses as Varlink's interface
// definition language.  Exit status: 0 on success, 1 on an error reply or a
// failed connection, 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/varlink/go/varlink"
	"github.com/varlink/go/varlink/idl"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: varlink-client ADDRESS info | describe INTERFACE | call METHOD [ARGS-JSON-ARRAY] | raw VARLINK-METHOD [PARAMETERS-JSON]")
	os.Exit(2)
}

func fail(err error) {
	if e, ok := err.(*varlink.Error); ok {
		if p, ok := e.Parameters.(*json.RawMessage); ok && p != nil {
			fmt.Fprintf(os.Stderr, "error: %s %s\n", e.Name, string(*p))
			os.Exit(1)
		}
	}
	// The library turns org.varlink.service's errors into types of its own.
	var p interface{}
	switch e := err.(type) {
	case *varlink.InterfaceNotFound, *varlink.MethodNotFound, *varlink.MethodNotImplemented, *varlink.InvalidParameter:
		p = e
	}
	if p != nil {
		if text, jerr := json.Marshal(p); jerr == nil {
			fmt.Fprintf(os.Stderr, "error: %v %s\n", err, text)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn, err := varlink.NewConnection(ctx, os.Args[1])
	if err != nil {
		fail(err)
	}
	defer conn.Close()

	switch os.Args[2] {
	case "info":
		var vendor, product, version, url string
		var interfaces []string
		if err := conn.GetInfo(ctx, &vendor, &product, &version, &url, &interfaces); err != nil {
			fail(err)
		}
		fmt.Printf("vendor: %s\nproduct: %s\nversion: %s\nurl: %s\n", vendor, product, version, url)
		for _, i := range interfaces {
			fmt.Printf("interface: %s\n", i)
		}
	case "describe":
		if len(os.Args) != 4 {
			usage()
		}
		description, err := conn.GetInterfaceDescription(ctx, os.Args[3])
		if err != nil {
			fail(err)
		}
		if _, err := idl.New(description); err != nil {
			fmt.Fprintf(os.Stderr, "the description does not parse: %v\n", err)
			os.Exit(1)
		}
		fmt.Print(description)
		if len(description) > 0 && description[len(description)-1] != '\n' {
			fmt.Println()
		}
	case "call":
		if len(os.Args) < 4 || len(os.Args) > 5 {
			usage()
		}
		params := map[string]interface{}{"method": os.Args[3]}
		if os.Args[3] == "-" {
			params["method"] = nil
		}
		if len(os.Args) == 5 {
			var args []interface{}
			if err := json.Unmarshal([]byte(os.Args[4]), &args); err != nil {
				fmt.Fprintf(os.Stderr, "ARGS is not a JSON array: %v\n", err)
				os.Exit(2)
			}
			params["args"] = args
		}
		var out struct {
			Result json.RawMessage `json:"result"`
		}
		if err := conn.Call(ctx, "io.aetask.Call", params, &out); err != nil {
			fail(err)
		}
		if out.Result == nil {
			fmt.Println("null")
		} else {
			fmt.Println(string(out.Result))
		}
	case "raw":
		if len(os.Args) < 4 || len(os.Args) > 5 {
			usage()
		}
		var params interface{}
		if len(os.Args) == 5 {
			if err := json.Unmarshal([]byte(os.Args[4]), &params); err != nil {
				fmt.Fprintf(os.Stderr, "PARAMETERS is not JSON: %v\n", err)
				os.Exit(2)
			}
		}
		var out json.RawMessage
		if err := conn.Call(ctx, os.Args[3], params, &out); err != nil {
			fail(err)
		}
		fmt.Println(string(out))
	default:
		usage()
	}
}
