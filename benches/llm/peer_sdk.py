"""The Python OpenAI SDK doing the benchmark's work: `calls N`, `tools N`, `concurrent N`."""
import asyncio
import json
import sys

import openai

BASE = sys.argv[1]
MODE, N = sys.argv[2], int(sys.argv[3])
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Looks a query up.",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                         "required": ["query"], "additionalProperties": False}}}]


def lookup(query):
    return f"found {query}"


def calls(client):
    answered = 0
    for i in range(N):
        r = client.chat.completions.create(model="bench", messages=[{"role": "user", "content": f"ping {i}"}])
        answered += len(r.choices[0].message.content or "")
    print(f"{N} calls, {answered} characters")


def tools(client):
    answered = 0
    for i in range(N):
        messages = [{"role": "user", "content": f"question {i}"}]
        while True:
            r = client.chat.completions.create(model="bench", messages=messages, tools=TOOLS)
            msg = r.choices[0].message
            if not msg.tool_calls:
                answered += len(msg.content or "")
                break
            messages.append(msg.model_dump(exclude_none=True))
            for call in msg.tool_calls:
                args = json.loads(call.function.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": lookup(**args)})
    print(f"{N} loops, {answered} characters")


async def concurrent():
    client = openai.AsyncOpenAI(base_url=BASE, api_key="unused", max_retries=0, timeout=600)

    async def agent(i):
        r = await client.chat.completions.create(model="bench", messages=[{"role": "user", "content": f"hello from agent {i}"}])
        return r.choices[0].message.content

    out = await asyncio.gather(*(agent(i) for i in range(N)))
    print(f"{len(out)} agents")


if MODE == "concurrent":
    asyncio.run(concurrent())
else:
    client = openai.OpenAI(base_url=BASE, api_key="unused", max_retries=0)
    {"calls": calls, "tools": tools}[MODE](client)
