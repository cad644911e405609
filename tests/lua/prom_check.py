#!/usr/bin/python3
# prom_check.py FILE: check a /metrics body against the Prometheus text format
# 0.0.4 and print what a real parser made of it, as JSON.
#
# Two checks, because prometheus_client's parser is lenient (it takes "-nan",
# which Prometheus' Go parser rejects, and never sees bytes):
#  1. the bytes are valid UTF-8, and every line matches the format's grammar
#     (HELP escapes only \\ and \n; label values only \\, \" and \n; values
#     are what Go's strconv.ParseFloat reads, written the way the format
#     shows them: NaN, +Inf, -Inf or a decimal)
#  2. prometheus_client.parser.text_string_to_metric_families parses it.
# Output: {"families": {name: {"type":..., "help":..., "samples": [[name, {labels}, "value"]]}}}
# or {"error": "..."}; exit status 0 either way (the Lua test asserts).
import json
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)"
SAMPLE = re.compile(r"^(%s)(\{(?:%s=%s(?:,%s=%s)*)?\})? (%s)(?: -?\d+)?$" % (NAME, LABEL, LVALUE, LABEL, LVALUE, VALUE))
HELP = re.compile(r"^# HELP (%s) ((?:[^\\\n]|\\[\\n])*)$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)


def fmt(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def main():
    raw = open(sys.argv[1], "rb").read()
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        return {"error": "not UTF-8: %s" % e}
    if text and not text.endswith("\n"):
        return {"error": "the last line has no newline"}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            ok = HELP.match(line)
        elif line.startswith("# TYPE "):
            ok = TYPE.match(line)
        elif line.startswith("#"):
            ok = True
        else:
            ok = SAMPLE.match(line)
        if not ok:
            return {"error": "line %d breaks the text format: %r" % (n, line)}
    try:
        fams = {}
        for f in text_string_to_metric_families(text):
            fams[f.name] = {"type": f.type, "help": f.documentation,
                            "samples": [[s.name, s.labels, fmt(s.value)] for s in f.samples]}
        return {"families": fams}
    except Exception as e:  # the parser's own complaint
        return {"error": "prometheus_client: %r" % (e,)}


print(json.dumps(main()))
