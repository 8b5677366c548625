"""The floor: a bare JSON-RPC client with no SDK (one JSON line per message over the child's
pipes, or http.client with keep-alive), so that the server's own time per `echo` is known and
each client's overhead is what it adds above this.

Usage: peer_raw.py stdio SERVER_JS N | peer_raw.py http URL N. Prints one JSON line with
`loop_s` (N sequential calls after one warm-up call).
"""
import http.client
import json
import subprocess
import sys
import time
import urllib.parse

INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def call(i):
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": f"ping {i}"}}}


def over_stdio(server_js, n):
    p = subprocess.Popen(["node", server_js, "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)

    def ask(msg):
        p.stdin.write(json.dumps(msg) + "\n")
        p.stdin.flush()
        if "id" not in msg:
            return None
        while True:  # skip notifications and the server's own requests
            reply = json.loads(p.stdout.readline())
            if reply.get("id") == msg["id"] and "method" not in reply:
                return reply

    ask(INIT)
    ask(INITIALIZED)
    ask(call(1))
    start = time.perf_counter()
    for i in range(n):
        ask(call(i + 2))
    loop_s = time.perf_counter() - start
    p.kill()
    return loop_s


def over_http(url, n):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

    def post(msg):
        conn.request("POST", u.path, json.dumps(msg), headers)
        r = conn.getresponse()
        body = r.read()
        if r.status >= 300:
            sys.exit(f"HTTP {r.status}: {body[:200]!r}")
        return r

    sid = post(INIT).getheader("mcp-session-id")
    headers["mcp-session-id"] = sid
    headers["mcp-protocol-version"] = "2025-11-25"
    post(INITIALIZED)
    post(call(1))
    start = time.perf_counter()
    for i in range(n):
        post(call(i + 2))
    loop_s = time.perf_counter() - start
    conn.request("DELETE", u.path, headers=headers)
    conn.getresponse().read()
    return loop_s


if __name__ == "__main__":
    transport, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    loop_s = over_stdio(target, n) if transport == "stdio" else over_http(target, n)
    print(json.dumps({"loop_s": loop_s, "n": n}), flush=True)
