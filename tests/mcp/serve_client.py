"""Drives `aivm serve --mcp` over stdio with the Python MCP SDK (tests/mcp_serve.rs).

Usage: serve_client.py AIVM PROGRAM. Lists the tools, calls `add` and `greet`, and prints one
JSON document with what came back, for the Rust test to check.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(aivm: str, program: str) -> None:
    params = StdioServerParameters(command=aivm, args=["serve", program, "--mcp"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            add = await session.call_tool("add", {"a": 2, "b": 40})
            greet = await session.call_tool("greet", {"name": "Ada", "excited": True})
            bad = await session.call_tool("add", {"a": "two", "b": 1})
            print(json.dumps({
                "server": init.server_info.name,
                "protocol": init.protocol_version,
                "tools": sorted(t.name for t in tools.tools),
                "add": add.model_dump(mode="json", by_alias=True, exclude_none=True),
                "greet": greet.model_dump(mode="json", by_alias=True, exclude_none=True),
                "bad": bad.model_dump(mode="json", by_alias=True, exclude_none=True),
            }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
