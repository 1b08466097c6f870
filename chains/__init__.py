"""One conversational turn, step by step. Chains receive a chat model, a retriever and a
memory (the factory in `assistant.factory` wires them); they never build them. May import
`retrievers` and `memory` types and `assistant.settings` groups, never the facade.

    pipeline    the turn: recall → condense → retrieve → route → draft → verify → escalate → cite → remember → learn
    history     what a turn recalls: recent messages, the rolling summary (summarize), the user's facts
    condense    a follow-up rewritten as a standalone question
    evidence    the sentences of the passages that answer the question best
    prompt      the local model's messages within its token budgets, the caller's instructions included
    untrusted   document text is data: instructions in it are set aside
    verify      each drafted sentence checked against the passages
    route       local, large or decline, from one calibrated confidence (confidence, confidence.json)
    escalate    the large model: what it is sent, budgets, retries, its streamed answer, the audit row
    citing      the decline message, the quoted evidence, the sources
    facts       facts and preferences users state about themselves
    reply       what a turn returns, and the chunks (text, stage) it streams
"""
