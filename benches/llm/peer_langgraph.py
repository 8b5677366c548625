"""LangGraph (with langchain-openai) doing the benchmark's work: `calls N`, `tools N`,
`concurrent N`. Calls go through a one-node graph; the tool loop is the prebuilt ReAct agent."""
import asyncio
import sys

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import create_react_agent

BASE = sys.argv[1]
MODE, N = sys.argv[2], int(sys.argv[3])
llm = ChatOpenAI(model="bench", base_url=BASE, api_key="unused", max_retries=0, timeout=600)


@tool
def lookup(query: str) -> str:
    """Looks a query up."""
    return f"found {query}"


def one_call_graph():
    g = StateGraph(MessagesState)
    g.add_node("model", lambda state: {"messages": [llm.invoke(state["messages"])]})
    g.add_edge(START, "model")
    g.add_edge("model", END)
    return g.compile()


if MODE == "calls":
    graph = one_call_graph()
    answered = sum(len(graph.invoke({"messages": [("user", f"ping {i}")]})["messages"][-1].content) for i in range(N))
    print(f"{N} calls, {answered} characters")
elif MODE == "tools":
    agent = create_react_agent(llm, [lookup])
    answered = sum(len(agent.invoke({"messages": [("user", f"question {i}")]})["messages"][-1].content) for i in range(N))
    print(f"{N} loops, {answered} characters")
else:
    graph = one_call_graph()

    async def main():
        out = await asyncio.gather(*(graph.ainvoke({"messages": [("user", f"hello from agent {i}")]}) for i in range(N)))
        print(f"{len(out)} agents")

    asyncio.run(main())
