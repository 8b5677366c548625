"""Pydantic AI doing the benchmark's work: `calls N`, `tools N`, `concurrent N`."""
import asyncio
import sys

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

BASE = sys.argv[1]
MODE, N = sys.argv[2], int(sys.argv[3])
model = OpenAIChatModel("bench", provider=OpenAIProvider(base_url=BASE, api_key="unused"))
plain = Agent(model)
with_tools = Agent(model)


@with_tools.tool_plain
def lookup(query: str) -> str:
    """Looks a query up."""
    return f"found {query}"


if MODE == "calls":
    answered = sum(len(plain.run_sync(f"ping {i}").output) for i in range(N))
    print(f"{N} calls, {answered} characters")
elif MODE == "tools":
    answered = sum(len(with_tools.run_sync(f"question {i}").output) for i in range(N))
    print(f"{N} loops, {answered} characters")
else:
    async def main():
        out = await asyncio.gather(*(plain.run(f"hello from agent {i}") for i in range(N)))
        print(f"{len(out)} agents")

    asyncio.run(main())
