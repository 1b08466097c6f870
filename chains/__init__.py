"""LangChain runnables that turn a question into a reply: condense, retrieve,
prompt, generate, route. Chains receive a chat model, a retriever and a memory;
they never build them. May import `retrievers` and `memory` types, never the facade.
"""
