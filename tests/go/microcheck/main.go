// microcheck: a Go peer for tests/lua/test_micro.lua, built from Debian's
// nats.go 1.22 (golang-github-nats-io-go-nats-dev, which ships the micro
// package) in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o microcheck ./tests/go/microcheck
//
// Two modes:
//
//	microcheck check -server URL [-name calc] [-instances 1] [-calls 5]
//	    finds the jetlua service through $SRV.PING, decodes its PING, INFO and
//	    STATS answers both as the current protocol (io.nats.micro.v1, written
//	    out below, strictly: an unknown or missing field fails) and as
//	    nats.go 1.22's micro types, calls its endpoints and checks that
//	    num_requests and num_errors grow. Prints a JSON summary on stdout;
//	    exit 1 with "FAIL: ..." on stderr otherwise.
//	microcheck serve -server URL
//	    runs a nats.go 1.22 micro service "gosvc" 0.1.0 on go.echo (answers the
//	    request upper-cased; "fail" gets a 418 service error), prints
//	    "ready <id>" and runs until SIGTERM.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// The current protocol (ADR-32, io.nats.micro.v1), field by field.
type identity struct {
	Type     string            `json:"type"`
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Version  string            `json:"version"`
	Metadata map[string]string `json:"metadata"`
}

type infoV1 struct {
	identity
	Description string `json:"description"`
	Endpoints   []struct {
		Name       string            `json:"name"`
		Subject    string            `json:"subject"`
		QueueGroup string            `json:"queue_group"`
		Metadata   map[string]string `json:"metadata"`
	} `json:"endpoints"`
	Subject string `json:"subject"` // nats.go 1.22's single endpoint
}

type endpointStatsV1 struct {
	Name                  string          `json:"name"`
	Subject               string          `json:"subject"`
	QueueGroup            string          `json:"queue_group"`
	NumRequests           int             `json:"num_requests"`
	NumErrors             int             `json:"num_errors"`
	LastError             string          `json:"last_error"`
	ProcessingTime        time.Duration   `json:"processing_time"`
	AverageProcessingTime time.Duration   `json:"average_processing_time"`
	Data                  json.RawMessage `json:"data,omitempty"`
}

type statsV1 struct {
	identity
	Started   time.Time          `json:"started"`
	Endpoints []*endpointStatsV1 `json:"endpoints"`
	// nats.go 1.22's totals
	NumRequests           int           `json:"num_requests"`
	NumErrors             int           `json:"num_errors"`
	LastError             string        `json:"last_error"`
	ProcessingTime        time.Duration `json:"processing_time"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
}

// JSON kinds every answer must carry, by field
var required = map[string]map[string]string{
	"PING":  {"type": "string", "name": "string", "id": "string", "version": "string", "metadata": "object"},
	"INFO":  {"type": "string", "name": "string", "id": "string", "version": "string", "metadata": "object", "description": "string", "endpoints": "array"},
	"STATS": {"type": "string", "name": "string", "id": "string", "version": "string", "metadata": "object", "started": "string", "endpoints": "array"},
}

var endpointRequired = map[string]map[string]string{
	"INFO":  {"name": "string", "subject": "string", "queue_group": "string", "metadata": "object"},
	"STATS": {"name": "string", "subject": "string", "queue_group": "string", "num_requests": "number", "num_errors": "number", "last_error": "string", "processing_time": "number", "average_processing_time": "number"},
}

var types = map[string]string{
	"PING":  "io.nats.micro.v1.ping_response",
	"INFO":  "io.nats.micro.v1.info_response",
	"STATS": "io.nats.micro.v1.stats_response",
}

// the regular expression semver.org suggests
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func kind(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "null":
		return "null"
	case strings.HasPrefix(s, "{"):
		return "object"
	case strings.HasPrefix(s, "["):
		return "array"
	case strings.HasPrefix(s, "\""):
		return "string"
	case s == "true" || s == "false":
		return "bool"
	default:
		// an integer, not 1.2e+14: Go's int and time.Duration only take those
		if strings.ContainsAny(s, ".eE") {
			return "non-integer number " + s
		}
		return "number"
	}
}

// checkShape: every required field is there with its JSON kind
func checkShape(verb string, data []byte) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		fail("%s answer is not a JSON object: %v: %s", verb, err, data)
	}
	for field, want := range required[verb] {
		raw, ok := m[field]
		if !ok {
			fail("%s answer has no %q: %s", verb, field, data)
		}
		if got := kind(raw); got != want {
			fail("%s answer: %q is %s, want %s: %s", verb, field, got, want, data)
		}
	}
	if want, got := types[verb], strings.Trim(string(m["type"]), `"`); got != want {
		fail("%s answer: type %q, want %q", verb, got, want)
	}
	if eps, ok := endpointRequired[verb]; ok {
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(m["endpoints"], &list); err != nil {
			fail("%s answer: endpoints: %v", verb, err)
		}
		for _, e := range list {
			for field, want := range eps {
				raw, ok := e[field]
				if !ok {
					fail("%s answer: an endpoint has no %q: %s", verb, field, data)
				}
				if got := kind(raw); got != want {
					fail("%s answer: endpoint %q is %s, want %s: %s", verb, field, got, want, data)
				}
			}
		}
	}
}

func strict(data []byte, v interface{}) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		fail("decoding %T: %v: %s", v, err, data)
	}
}

// gather: one request; answers until n of them (n > 0), or until the wait
// ends, or (n == 0) until none came for settle after the last one
func gather(nc *nats.Conn, subject string, n int, wait time.Duration) [][]byte {
	const settle = 500 * time.Millisecond
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		fail("subscribe: %v", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		fail("publish: %v", err)
	}
	var out [][]byte
	deadline := time.Now().Add(wait)
	for n <= 0 || len(out) < n {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if n <= 0 && len(out) > 0 && left > settle {
			left = settle
		}
		m, err := sub.NextMsg(left)
		if err != nil {
			break
		}
		out = append(out, m.Data)
	}
	return out
}

func request(nc *nats.Conn, subject string, data []byte) *nats.Msg {
	m, err := nc.Request(subject, data, 5*time.Second)
	if err != nil {
		fail("request %s: %v", subject, err)
	}
	return m
}

// the STATS of every instance, strictly decoded, by id
func allStats(nc *nats.Conn, name string, instances int) map[string]*statsV1 {
	out := map[string]*statsV1{}
	for _, data := range gather(nc, "$SRV.STATS."+name, instances, 5*time.Second) {
		checkShape("STATS", data)
		var s statsV1
		strict(data, &s)
		var old micro.Stats // nats.go 1.22 reads the same answer
		if err := json.Unmarshal(data, &old); err != nil {
			fail("STATS as nats.go 1.22 micro.Stats: %v", err)
		}
		if old.ID != s.ID || old.NumRequests != s.NumRequests || old.ProcessingTime != s.ProcessingTime {
			fail("STATS: nats.go 1.22 reads %+v", old)
		}
		if s.Started.IsZero() || s.Started.After(time.Now().Add(time.Minute)) {
			fail("STATS: started %v", s.Started)
		}
		total := 0
		for _, e := range s.Endpoints {
			if e.NumRequests > 0 && e.AverageProcessingTime != e.ProcessingTime/time.Duration(e.NumRequests) {
				fail("STATS: endpoint %s: average %d != %d / %d", e.Name, e.AverageProcessingTime, e.ProcessingTime, e.NumRequests)
			}
			if e.NumRequests == 0 && (e.ProcessingTime != 0 || e.AverageProcessingTime != 0) {
				fail("STATS: endpoint %s: no request but processing time %d", e.Name, e.ProcessingTime)
			}
			total += e.NumRequests
		}
		if total != s.NumRequests {
			fail("STATS: top-level num_requests %d, endpoints sum to %d", s.NumRequests, total)
		}
		out[s.ID] = &s
	}
	if len(out) != instances {
		fail("STATS: %d instance(s) answered, want %d", len(out), instances)
	}
	return out
}

func endpointSum(all map[string]*statsV1, endpoint string, field func(*endpointStatsV1) int) int {
	n := 0
	for _, s := range all {
		for _, e := range s.Endpoints {
			if e.Name == endpoint {
				n += field(e)
			}
		}
	}
	return n
}

func reqs(e *endpointStatsV1) int { return e.NumRequests }
func errs(e *endpointStatsV1) int { return e.NumErrors }

func check(nc *nats.Conn, name string, instances, calls int) {
	// PING: every level of the subject tree, the protocol's fields and types
	var ids []string
	for _, data := range gather(nc, "$SRV.PING", 0, 5*time.Second) {
		checkShape("PING", data)
		var p identity
		strict(data, &p)
		var old micro.Ping
		if err := json.Unmarshal(data, &old); err != nil || old.ID != p.ID {
			fail("PING as nats.go 1.22 micro.Ping: %v %+v", err, old)
		}
		if p.Name == name {
			ids = append(ids, p.ID)
			if !semver.MatchString(p.Version) {
				fail("PING: version %q is not semver", p.Version)
			}
		}
	}
	sort.Strings(ids)
	if len(ids) != instances {
		fail("$SRV.PING: %d instance(s) of %q answered, want %d", len(ids), name, instances)
	}
	if n := len(gather(nc, "$SRV.PING."+name, instances, 5*time.Second)); n != instances {
		fail("$SRV.PING.%s: %d answers, want %d", name, n, instances)
	}
	for _, id := range ids {
		got := gather(nc, "$SRV.PING."+name+"."+id, 0, 5*time.Second)
		if len(got) != 1 {
			fail("$SRV.PING.%s.%s: %d answers, want 1", name, id, len(got))
		}
	}

	// INFO, as both protocols read it
	data := request(nc, "$SRV.INFO."+name+"."+ids[0], nil).Data
	checkShape("INFO", data)
	var info infoV1
	strict(data, &info)
	var old micro.Info
	if err := json.Unmarshal(data, &old); err != nil {
		fail("INFO as nats.go 1.22 micro.Info: %v", err)
	}
	if old.ID != ids[0] || old.Name != name || old.Description != info.Description || old.Subject == "" {
		fail("INFO: nats.go 1.22 reads %+v", old)
	}
	if info.ID != ids[0] || len(info.Endpoints) == 0 {
		fail("INFO: %s", data)
	}

	// calls: answers, service errors, and the counters they move
	before := allStats(nc, name, instances)
	for i := 0; i < calls; i++ {
		m := request(nc, name+".add", []byte(fmt.Sprintf(`{"a":%d,"b":2}`, i)))
		var sum struct{ Sum int }
		if err := json.Unmarshal(m.Data, &sum); err != nil || sum.Sum != i+2 {
			fail("%s.add %d+2: %q", name, i, m.Data)
		}
	}
	m := request(nc, name+".fail", nil)
	if m.Header.Get(micro.ErrorCodeHeader) != "400" || m.Header.Get(micro.ErrorHeader) != "bad input" {
		fail("%s.fail: headers %v", name, m.Header)
	}
	m = request(nc, name+".boom", nil)
	if m.Header.Get(micro.ErrorCodeHeader) != "500" || !strings.Contains(m.Header.Get(micro.ErrorHeader), "kaboom") {
		fail("%s.boom: headers %v", name, m.Header)
	}
	after := allStats(nc, name, instances)
	if d := endpointSum(after, "add", reqs) - endpointSum(before, "add", reqs); d != calls {
		fail("num_requests of add grew by %d, want %d", d, calls)
	}
	for _, ep := range []string{"fail", "boom"} {
		if d := endpointSum(after, ep, errs) - endpointSum(before, ep, errs); d != 1 {
			fail("num_errors of %s grew by %d, want 1", ep, d)
		}
	}
	for _, s := range after {
		for _, e := range s.Endpoints {
			if e.Name == "fail" && e.NumErrors > 0 && e.LastError != "400:bad input" {
				fail("last_error of fail: %q", e.LastError)
			}
		}
	}

	// the summary, for the Lua side to look at
	summary := map[string]interface{}{"ok": true, "ids": ids, "info": json.RawMessage(data)}
	per := map[string]int{}
	for id, s := range after {
		for _, e := range s.Endpoints {
			if e.Name == "add" {
				per[id] = e.NumRequests
			}
		}
	}
	summary["add_requests"] = per
	out, _ := json.Marshal(summary)
	fmt.Println(string(out))
}

func serve(nc *nats.Conn) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        "gosvc",
		Version:     "0.1.0",
		Description: "go echo",
		Endpoint: micro.Endpoint{
			Subject: "go.echo",
			Handler: func(req *micro.Request) {
				if string(req.Data()) == "fail" {
					req.Error("418", "teapot", nil)
					return
				}
				req.Respond(bytes.ToUpper(req.Data()))
			},
		},
	})
	if err != nil {
		fail("AddService: %v", err)
	}
	if err := nc.Flush(); err != nil {
		fail("flush: %v", err)
	}
	fmt.Println("ready", svc.Info().ID)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	svc.Stop()
	nc.Drain()
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: microcheck check|serve -server URL ...")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	server := fs.String("server", nats.DefaultURL, "NATS server URL")
	name := fs.String("name", "calc", "service to check")
	instances := fs.Int("instances", 1, "how many instances of it must answer")
	calls := fs.Int("calls", 5, "requests to its add endpoint")
	fs.Parse(os.Args[2:])
	nc, err := nats.Connect(*server, nats.Name("microcheck"))
	if err != nil {
		fail("connect %s: %v", *server, err)
	}
	switch os.Args[1] {
	case "check":
		check(nc, *name, *instances, *calls)
		nc.Close()
	case "serve":
		serve(nc)
	default:
		fail("unknown mode %q (check or serve)", os.Args[1])
	}
}
