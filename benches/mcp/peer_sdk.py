"""The Python MCP SDK (mcp 2.3.0) doing the benchmark's work against server-everything.

Usage: peer_sdk.py stdio SERVER_JS N | peer_sdk.py http URL N

Prints one JSON line: `ready_s` (connect + initialize + list_tools), `first_s` (the same plus one
`echo` answered, the counterpart of aivm's start-up), and `loop_s` (N further sequential `echo`
calls, after that first one), all measured with perf_counter inside this process, so Python's
start-up and imports do not count.
"""
import asyncio
import json
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


async def work(session, t0, n):
    await session.initialize()
    await session.list_tools()
    ready = time.perf_counter() - t0
    first = await session.call_tool("echo", {"message": "first"})
    first_s = time.perf_counter() - t0
    answered = len(first.content[0].text)
    start = time.perf_counter()
    for i in range(n):
        r = await session.call_tool("echo", {"message": f"ping {i}"})
        answered += len(r.content[0].text)
    loop_s = time.perf_counter() - start
    return {"ready_s": ready, "first_s": first_s, "loop_s": loop_s, "n": n, "answered": answered}


async def main(transport, target, n):
    t0 = time.perf_counter()
    if transport == "stdio":
        params = StdioServerParameters(command="node", args=[target, "stdio"])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                out = await work(session, t0, n)
    else:
        async with streamable_http_client(target) as (read, write):
            async with ClientSession(read, write) as session:
                out = await work(session, t0, n)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
